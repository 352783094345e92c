"""Give freed memory back to the OS after large requests (glibc only; a no-op elsewhere).

glibc's malloc raises its mmap threshold dynamically: after the first large block is freed, blocks up
to 32 MB come from the heap and stay in the process after ``free``. For a service that is the
difference between memory that comes back after a long request and memory that does not (issue 9,
B1: with ONNX Runtime's arena off, ~50-80 MB of a worst-case request's buffers stayed in the process).
A fixed threshold turns that adjustment off: blocks of ``threshold`` bytes or more are mapped and
unmapped on free. The library itself never calls this; the service owns its process, so it does.
Measured by bench/bench_service_memory.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
DEFAULT_THRESHOLD = 1 << 20  # 1 MiB: activation buffers are larger, small objects are not affected


def return_freed_memory(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds; True when applied, False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt  # musl has none: AttributeError
    except (OSError, AttributeError):
        return False
    ok = mallopt(M_MMAP_THRESHOLD, threshold) == 1 and mallopt(M_TRIM_THRESHOLD, 2 * threshold) == 1
    log.debug("malloc thresholds fixed at %d bytes: %s", threshold, ok)
    return bool(ok)
