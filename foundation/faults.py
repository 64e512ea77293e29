"""Recognising the machine faults a long run survives: out of memory and a full disk.

Both surface from deep inside libraries in several disguises (``torch.OutOfMemoryError``, a
``RuntimeError`` from the CUDA or CPU allocator, ``OSError`` with ``ENOSPC``, a safetensors or
SQLite error quoting the OS error), often re-raised with the original as the cause. These
predicates look through the whole chain so the node or the runner can turn any of them into one
``ResourceError`` line that says what to change before ``teachloop resume``.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

_OOM_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory")
_DISK_FULL_TEXT = (
    "no space left on device",
    "disk quota exceeded",
    "database or disk is full",
    "os error 28",  # Rust's io::Error text (safetensors) for ENOSPC
    "os error 122",  # ... and for EDQUOT
)


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_out_of_memory(err: BaseException) -> bool:
    """An allocator that could not satisfy a request: GPU (CUDA, MPS) or CPU."""
    for e in _chain(err):
        if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
            return True
        if isinstance(e, RuntimeError) and any(t in str(e).lower() for t in _OOM_TEXT):
            return True
    return False


def is_disk_full(err: BaseException) -> bool:
    """A write that failed for lack of space or quota."""
    for e in _chain(err):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(t in str(e).lower() for t in _DISK_FULL_TEXT):
            return True
    return False
