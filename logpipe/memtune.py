"""Keep freed memory for reuse instead of handing it back to the kernel after every batch.

Why: the pipeline allocates and frees the same large buffers (read chunks, joined batches,
rendered segments, ~0.5-4 MB) every few milliseconds. glibc returns freed memory at the top
of the heap (above 128 KB) and unmaps large blocks at once, so the next batch page-faults it
back in; on a virtual machine a fault costs microseconds, and the tail benchmark measured
30-60k faults per 300k lines (~5% of the run). Raising the thresholds bounds the cost to
one fault per page of the working set. Peak memory is unchanged (the window bounds what is
in flight); only release to the kernel is lazier, up to `TRIM_BYTES`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

TRIM_BYTES = 128 * 1024 * 1024
TOP_PAD_BYTES = 16 * 1024 * 1024
MMAP_BYTES = 32 * 1024 * 1024

#: The same settings for a child process (glibc reads them at start-up).
CHILD_ENV = {
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_BYTES),
    "MALLOC_TOP_PAD_": str(TOP_PAD_BYTES),
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_BYTES),
}


def tune_malloc() -> bool:
    """Apply the thresholds to this process (glibc only; a no-op elsewhere). True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = True
    for param, value in ((M_TRIM_THRESHOLD, TRIM_BYTES), (M_TOP_PAD, TOP_PAD_BYTES),
                         (M_MMAP_THRESHOLD, MMAP_BYTES)):
        ok = bool(mallopt(param, value)) and ok
    return ok


def child_env() -> dict[str, str]:
    """os.environ plus the thresholds, for helper processes (explicit user settings win)."""
    env = dict(os.environ)
    for key, value in CHILD_ENV.items():
        env.setdefault(key, value)
    return env


def quiet_gc() -> None:
    """The pipeline allocates millions of short-lived, acyclic dicts: with the default
    thresholds the cyclic collector runs every 700 of them and rescans every record still
    in flight (~10% of a tail's CPU). Collect rarely instead, and never rescan what exists
    after start-up. Cycles are rare here, so memory stays bounded. For the CLI commands
    only: a library caller keeps its own GC settings."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
