"""CPU memory-allocator settings for training runs (glibc ``malloc``).

A training step allocates and frees the same large tensors every step (layer outputs,
gradients, the batch's gathered rows: megabytes each). glibc serves blocks above its mmap
threshold (dynamic, 128 KiB to 32 MiB) with fresh ``mmap`` pages and gives freed heap back
to the kernel when the heap top exceeds its trim threshold, so every step pays page
faults and page zeroing again: on ml-100k an NGCF epoch took 90,000-130,000 minor page
faults (0.17-0.31 s of system time in a 1.5-1.8 s epoch on one thread), and fewer than
1,200 with the settings below (a few seconds of warm-up aside).

:func:`tune_malloc` raises both thresholds (``mallopt(M_MMAP_THRESHOLD)`` and
``mallopt(M_TRIM_THRESHOLD)``) so that freed blocks stay in the process and are reused —
the same effect PyTorch's CPU performance guides get from preloading jemalloc/tcmalloc,
without an ``LD_PRELOAD``. The cost is that up to ``trim_mb`` of freed memory stays
mapped (it does not raise the peak). The runner applies it for runs with
``cpu_malloc: tuned`` (the default); ``cpu_malloc: system`` leaves glibc's defaults. Not
glibc (macOS, musl, Windows): nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["tune_malloc"]

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_THRESHOLD = -3


def tune_malloc(mmap_mb: int = 256, trim_mb: int = 1024) -> bool:
    """Keep blocks below ``mmap_mb`` MiB on the heap and up to ``trim_mb`` MiB of freed
    heap mapped (glibc only; process-wide, idempotent).

    Returns:
        Whether the settings were applied (False when the C library is not glibc or
        rejects them).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # glibc before 2.35 caps the threshold at 32 MiB (HEAP_MAX_SIZE / 2 on 64-bit)
    ok = mallopt(_M_MMAP_THRESHOLD, mmap_mb << 20) == 1 or mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    return ok and mallopt(_M_TRIM_THRESHOLD, trim_mb << 20) == 1
