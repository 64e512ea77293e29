"""The teacher's response cache: identical requests get the stored reply, so reruns cost nothing.

The key is a hash of everything that shapes a reply (model, messages, sampling settings and the
sample index that tells independent samples of one prompt apart), never the endpoint's address or
key, so a cache can be shared between servers of one model. It lives in the run directory by
default (a resumed run re-asks exactly the questions it asked before the crash and pays for none
of them) or at a shared path. SQLite in WAL mode lets several runs use one file at once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
);
"""


class CachedReply(BaseModel):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def request_key(request: dict[str, Any]) -> str:
    """A content hash of a request (canonical JSON, keys sorted)."""
    blob = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process; no fsync per reply
        self._db.executescript(_SCHEMA)

    def get(self, key: str) -> CachedReply | None:
        with self._lock:
            row = self._db.execute(
                "SELECT text, prompt_tokens, completion_tokens FROM replies WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return CachedReply(text=row[0], prompt_tokens=row[1], completion_tokens=row[2])

    def put(self, key: str, model: str, reply: CachedReply) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?, ?)",
                (key, model, reply.text, reply.prompt_tokens, reply.completion_tokens, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        self._db.close()
