"""The C heap during a tangent replay: freed blocks kept for the next step, handed back to the system after.

Every step of the general engine allocates and frees tens of MB of activation-sized tensors. By default glibc
gives such blocks straight back to the system (mmap above its threshold, trimming the heap's top), so the next
step faults every page in again: measured on the cnn preset, 8,000 page faults (32 MB zeroed) per 128-tangent
step, a quarter of its time. Inside kept(), blocks up to 256 MB come from the heap and stay there; when the
last replay leaves, malloc_trim hands the free memory back, so a server shrinks again. Not glibc: no change."""
from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_DEFAULT = 128 << 10

try:
    _LIBC = ctypes.CDLL("libc.so.6")
    _LIBC.mallopt, _LIBC.malloc_trim
except (OSError, AttributeError):
    _LIBC = None
_lock = threading.Lock()
_inside = 0


@contextmanager
def kept():
    """Keep freed heap blocks for reuse while the block runs (nested and threaded use are counted)."""
    global _inside
    with _lock:
        if _LIBC is not None and _inside == 0:
            _LIBC.mallopt(M_MMAP_THRESHOLD, 256 << 20)
            _LIBC.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _LIBC is not None and _inside == 0:
                _LIBC.mallopt(M_TRIM_THRESHOLD, TRIM_DEFAULT)
                _LIBC.malloc_trim(0)
