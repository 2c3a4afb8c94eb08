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


def cpu_flags(cpuinfo: str) -> set[str]:
    """The flags of the first CPU in the text of /proc/cpuinfo ("flags" on x86, "Features" on Arm)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> str:
    """The text of /proc/cpuinfo, or "" where it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def describe_cpu(cpuinfo: str, machine: str) -> str:
    """One line from the text of /proc/cpuinfo: the CPU's (or board's) name, the machine, the int8 flags.

    x86 names the CPU in "model name"; a Raspberry Pi names the board in "Model" and its cores have no
    "model name", only "CPU part"; flags are "flags" on x86 and "Features" on Arm.
    """
    name, board, part = "", "", ""
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
    label = board or name or (f"CPU part {part}" if part else "") or "unknown CPU"
    if board and name:
        label = f"{board} ({name})"
    flags = cpu_flags(cpuinfo)
    found = [f for f in INT8_FLAGS if f in flags]
    return f"{label}, {machine}; int8 flags: {', '.join(found) if found else 'none'}"


def cpu_description() -> str:
    """:func:`describe_cpu` for this machine (the machine alone where /proc/cpuinfo cannot be read)."""
    return describe_cpu(read_cpuinfo(), platform.machine())
