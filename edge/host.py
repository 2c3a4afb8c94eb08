"""What CPU a speed figure was measured on.

The same int8 model ran at 25 µs per digit on one "AMD EPYC" host and 52 µs on another: XNNPACK's int8
kernels use the CPU's dot-product instructions where they exist (AVX-512 VNNI / AVX-VNNI on x86, the dot
product and i8mm extensions on Arm), so a latency figure means little without them. Every benchmark
records this line beside its numbers.
"""

from __future__ import annotations

import platform
from pathlib import Path

#: /proc/cpuinfo flags that change int8 inference speed, in the order they are reported.
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sve")


def describe_cpu(cpuinfo: str, machine: str) -> str:
    """One line from the text of /proc/cpuinfo: the CPU's (or board's) name, the machine, the int8 flags.

    x86 names the CPU in "model name"; a Raspberry Pi names the board in "Model" and its cores have no
    "model name", only "CPU part"; flags are "flags" on x86 and "Features" on Arm.
    """
    name, board, part = "", "", ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "model name" and not name:
            name = value
        elif key == "model" and not value.isdigit() and not board:
            board = value  # the Pi's board name; x86's "model" is a number
        elif key == "cpu part" and not part:
            part = value
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    label = board or name or (f"CPU part {part}" if part else "") or "unknown CPU"
    if board and name:
        label = f"{board} ({name})"
    found = [f for f in INT8_FLAGS if f in flags]
    return f"{label}, {machine}; int8 flags: {', '.join(found) if found else 'none'}"


def cpu_description() -> str:
    """:func:`describe_cpu` for this machine (the machine alone where /proc/cpuinfo cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    return describe_cpu(text, platform.machine())
