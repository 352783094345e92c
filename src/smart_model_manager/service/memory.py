"""Give freed memory back to the OS after large requests (glibc only; a no-op elsewhere).

glibc's malloc raises its mmap threshold dynamically: after the first large block is freed, blocks up
to 32 MB come from the heap and stay in the process after ``free``. For a service that is the
difference between memory that comes back after a long request and memory that does not. Two measures:

* a fixed mmap threshold of 4 MiB: blocks of 4 MiB or more (a long text's attention and feed-forward
  buffers) are mapped and unmapped on free; smaller ones (a batch of headlines) are reused from the heap.
  A lower threshold makes every headline batch pay fresh page faults; a higher one lets the worst
  request's medium buffers fragment the heap;
* ``malloc_trim(0)`` after any model call on :data:`TRIM_AFTER_CHARS` characters or more, so what a long
  request left in the heap goes back at once (a few ms, only after such calls).

The thresholds tried and what each measured (bench/bench_service_memory.py) are in docs/benchmarks.md,
"Service memory under the worst allowed request". The library itself never calls this; the service owns
its process, so it does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
DEFAULT_THRESHOLD = 4 << 20  # 4 MiB: why, in the module docstring; 1, 8 and 16 MiB measured in docs/benchmarks.md
#: a model call on this many characters or more is followed by :func:`trim` (32 headlines are ~3,000;
#: the worst allowed request, 64 x 2,000)
TRIM_AFTER_CHARS = 16_000
_glibc: Any = None  # the loaded C library, False where there is no glibc (macOS, musl)


def _libc() -> Any:
    global _glibc
    if _glibc is None:
        _glibc = False
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):  # musl has neither
                    _glibc = lib
            except OSError:
                pass
    return _glibc


def trim() -> bool:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim(0)``): True when memory was
    released, False when there was none or where there is no glibc."""
    lib = _libc()
    return bool(lib and lib.malloc_trim(0) == 1)


def return_freed_memory(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds; True when applied, False where there is no glibc."""
    lib = _libc()
    if not lib:
        return False
    ok = lib.mallopt(M_MMAP_THRESHOLD, threshold) == 1 and lib.mallopt(M_TRIM_THRESHOLD, 2 * threshold) == 1
    log.debug("malloc thresholds fixed at %d bytes: %s", threshold, ok)
    return bool(ok)
