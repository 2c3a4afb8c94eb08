"""The CPU line recorded beside every speed figure (edge/host.py), from /proc/cpuinfo texts of real machines."""

from __future__ import annotations

import platform

from edge.amx import cpu_has_amx
from edge.host import cpu_description, cpu_flags, describe_cpu

# Trimmed from real /proc/cpuinfo files: an x86 server (two cores shown), a Raspberry Pi 4 and a Pi 5.
X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx_vnni avx512_bf16

processor\t: 1
model name\t: AMD EPYC 9R14
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx_vnni avx512_bf16
"""
PI4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd08

Hardware\t: BCM2835
Revision\t: c03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
PI5 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU part\t: 0xd0b

Model\t\t: Raspberry Pi 5 Model B Rev 1.0
"""


def test_x86_names_the_cpu_and_its_int8_flags_once():
    assert describe_cpu(X86, "x86_64") == "AMD EPYC 9R14, x86_64; int8 flags: avx2, avx512f, avx512_vnni, avx_vnni"


def test_a_pi_names_the_board_and_whether_it_has_the_dot_product():
    # The Pi 4's Cortex-A72 has no int8 dot product, the Pi 5's Cortex-A76 has: the reason for their gap.
    assert describe_cpu(PI4, "aarch64") == "Raspberry Pi 4 Model B Rev 1.4, aarch64; int8 flags: none"
    assert describe_cpu(PI5, "aarch64") == "Raspberry Pi 5 Model B Rev 1.0, aarch64; int8 flags: asimddp"


def test_an_unreadable_cpuinfo_still_gives_a_line():
    assert describe_cpu("", "riscv64") == "unknown CPU, riscv64; int8 flags: none"
    assert describe_cpu("CPU part\t: 0xd03\n", "aarch64") == "CPU part 0xd03, aarch64; int8 flags: none"


def test_this_machine():
    line = cpu_description()
    assert platform.machine() in line and "int8 flags:" in line


def test_amx_is_told_from_the_flags_line_alone(tmp_path):
    # edge.amx logs whether the rule it installs matters here; "amx_int8" in a model name must not count.
    with_amx = tmp_path / "amx"
    with_amx.write_text(X86.replace("avx512_bf16", "avx512_bf16 amx_bf16 amx_tile amx_int8"))
    named = tmp_path / "named"
    named.write_text(X86.replace("AMD EPYC 9R14", "amx_int8 lookalike"))
    assert cpu_has_amx(with_amx)
    assert not cpu_has_amx(named)
    assert not cpu_has_amx(tmp_path / "missing")
    assert cpu_flags(PI5) >= {"asimddp", "fp"} and cpu_flags("") == set()
