"""Keep XNNPACK's int8 kernels off Intel AMX (``model.amx: false``, the default).

On an x86-64 CPU with AMX (Xeon 4th generation and later) XNNPACK runs every int8 convolution of the digit
network through its AMX tile kernel (``qs8_qc8w_igemm ... 16x64c4__avx512amx``: 93% of the time in `perf`).
For 28x28 digits in batches of 32 that kernel took 101-106 µs per digit on such a Xeon (a VM), the AVX-512
VNNI kernels XNNPACK falls back to 51-56 µs, with the same outputs to the bit (``python tools/bench_amx.py``).
XNNPACK offers no switch for it. It asks Linux for the AMX register state
(``arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)``) when it starts and leaves AMX alone when that fails, so a
seccomp rule makes exactly that request fail with EPERM, before the first interpreter.

The rule is process-wide and cannot be taken back (a seccomp filter lives as long as the process, and it
sets ``no_new_privs``, which the systemd unit sets anyway); turning AMX on again takes a restart. It is
installed on Linux x86-64 only, where it changes nothing on a CPU without AMX; on ARM (a Raspberry Pi) and
other systems nothing asks for AMX and nothing is installed.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import struct
import sys
from pathlib import Path

from edge.host import cpu_flags, read_cpuinfo

log = logging.getLogger(__name__)

# <linux/prctl.h>, <linux/seccomp.h>, <linux/filter.h>, <linux/audit.h>, <asm/prctl.h>, x86-64 numbers
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
AUDIT_ARCH_X86_64 = 0xC000003E
NR_ARCH_PRCTL = 158
ARCH_REQ_XCOMP_PERM = 0x1023
# offsets in struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
_NR, _ARCH, _ARG0 = 0, 4, 16
_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06

_refused = False


def _filter() -> bytes:
    """The BPF program: EPERM for ``arch_prctl(ARCH_REQ_XCOMP_PERM, ...)`` on x86-64, every other call allowed.
    ``arch_prctl``'s option is an ``int``, so the low half of the first argument is what the kernel reads."""
    program = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ_K, 0, 5, AUDIT_ARCH_X86_64),  # another ABI (i386 via int 0x80): its numbers differ, allow
        (_LD_W_ABS, 0, 0, _NR),
        (_JEQ_K, 0, 3, NR_ARCH_PRCTL),
        (_LD_W_ABS, 0, 0, _ARG0),
        (_JEQ_K, 0, 1, ARCH_REQ_XCOMP_PERM),
        (_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        (_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    return b"".join(struct.pack("=HBBI", *ins) for ins in program)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def applies_here(system: str | None = None, machine: str | None = None) -> bool:
    """AMX is an x86-64 feature and the rule a Linux one."""
    system = sys.platform if system is None else system
    machine = platform.machine() if machine is None else machine
    return system.startswith("linux") and machine.lower() in ("x86_64", "amd64")


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the kernel lists the ``amx_int8`` flag (for the log line: the rule does not depend on it)."""
    return "amx_int8" in cpu_flags(read_cpuinfo(cpuinfo))


def refuse_amx() -> bool:
    """Install the rule once per process; True when it is in place. Where it cannot be installed (no seccomp
    in the kernel or the container) the process runs on as before: this is a matter of speed only."""
    global _refused
    if _refused:
        return True
    if not applies_here():
        return False
    code = _filter()
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        log.warning("could not keep Intel AMX off for int8 inference (seccomp: errno %d); it may be slower on "
                    "an AMX CPU", err)
        return False
    _refused = True
    if cpu_has_amx():
        log.info("Intel AMX kept off for int8 inference (model.amx: false): AVX-512 VNNI reads digits faster")
    return True


def amx_refused() -> bool:
    """Whether this process installed the rule (it cannot be undone)."""
    return _refused
