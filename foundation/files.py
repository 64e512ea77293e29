"""Crash-safe writes: every artifact appears whole under its final name or not at all.

A process killed mid-write (kill -9 included) leaves at most a temporary sibling, which the next
attempt removes; readers never see half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_TMP_MARK = ".tmp-"


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f"{_TMP_MARK}{path.name}.{uuid.uuid4().hex[:8]}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clear_stale_temps(directory: Path, name: str) -> None:
    for stale in directory.glob(f"{_TMP_MARK}{name}.*"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_temps(path.parent, path.name)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk gets its space back at once
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_temps(path.parent, path.name)
    tmp = _tmp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_dir(tmp, path)


def staging_dir(path: Path) -> Path:
    """A temporary sibling of ``path`` with a fixed name, for writers in several processes.

    Processes of one distributed job must agree on where they write; the name still marks it as
    a temporary, so ``clear_stale_temps`` (and every ``atomic_dir`` on ``path``) removes it.
    """
    return path.with_name(f"{_TMP_MARK}{path.name}.staging")


def publish_dir(tmp: Path, path: Path) -> None:
    """Put a fully written temporary directory in place of ``path``."""
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
