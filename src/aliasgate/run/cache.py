"""A persistent response cache: one sqlite file, safe across threads and processes.

A cached response is keyed by everything that determines it — the candidate's fingerprint, the
messages sent and the generation parameters — so a rerun makes model calls only for what changed,
and a killed run resumes with everything that had finished (each response is committed as soon as
it is stored). Failed calls are never stored.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aliasgate.candidates.base import Generation, GenerationParams, Message
from aliasgate.defaults import DEFAULT_CACHE_DIR

CACHE_FILENAME = "responses.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
_KEYS_PER_QUERY = 500  # bound parameters per lookup query (SQLite's limit is 999 or more)
#: The canonical JSON of cache keys: sorted keys, no spaces, non-ASCII kept.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

_COLUMNS = (
    "key",
    "text",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "finish_reason",
    "extra",
    "meta",
    "created_at",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s REAL NOT NULL,
    finish_reason TEXT,
    extra TEXT NOT NULL,
    meta TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class CacheError(RuntimeError):
    """The cache file cannot be opened, read or written. The message names the file."""


def default_cache_path() -> Path:
    """``DEFAULT_CACHE_DIR/responses.sqlite`` (relative to the working directory)."""
    return Path(DEFAULT_CACHE_DIR) / CACHE_FILENAME


class ResponseCache:
    """Model responses stored in a sqlite file (WAL mode).

    One connection guarded by a lock serves every thread of the process; other processes may use
    the same file at the same time (writers wait up to ``BUSY_TIMEOUT_S`` for each other).

    Args:
        path: The cache file, or a directory to hold ``responses.sqlite``; ``None`` means
            ``DEFAULT_CACHE_DIR/responses.sqlite``. Missing parent directories are created.

    Raises:
        CacheError: if the file exists but is not a readable aliasgate response cache
            (never silently replaced by an empty one).
    """

    def __init__(self, path: str | Path | None = None):
        p = default_cache_path() if path is None else Path(path)
        if p.is_dir():
            p = p / CACHE_FILENAME
        self.path = p
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"response cache {p}: cannot create its directory ({exc})") from exc
        try:
            self._conn = sqlite3.connect(
                str(p), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._init_schema_retrying()
        except sqlite3.Error as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if _is_busy(exc):
                raise CacheError(
                    f"response cache {p} stayed locked by another process for "
                    f"{BUSY_TIMEOUT_S:.0f} s ({exc})"
                ) from exc
            raise CacheError(
                f"response cache {p} is unreadable ({type(exc).__name__}: {exc}); "
                "delete it or choose another cache path"
            ) from exc

    def _init_schema_retrying(self) -> None:
        # Switching to WAL (and creating the table) while another process is doing the same
        # returns SQLITE_BUSY at once, without going through the busy handler: retry.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._init_schema()
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01 + random.random() * 0.04)

    def _init_schema(self) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this aliasgate understands ({SCHEMA_VERSION})"
            )
        conn.execute(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
        missing = [c for c in _COLUMNS if c not in columns]
        if missing:
            raise sqlite3.DatabaseError(
                f"not an aliasgate response cache (table 'responses' lacks {', '.join(missing)})"
            )
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @staticmethod
    def key(
        fingerprint: str,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        repeat: int | None = None,
    ) -> str:
        """The cache key of one request: sha256 hex of canonical JSON (sorted keys).

        Args:
            fingerprint: The candidate's :meth:`~aliasgate.candidates.Candidate.fingerprint`.
            messages: The messages sent (the suite's, without the candidate's system prompt).
            params: The effective generation parameters.
            repeat: Index of the sample when each case is asked several times (``--repeats``);
                ``None`` (a single sample) leaves the key as it always was.
        """
        payload: dict[str, object] = {
            "fingerprint": fingerprint,
            "messages": [dict(m) for m in messages],
            "params": params.as_dict(),
        }
        if repeat is not None:
            payload["repeat"] = repeat
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    @staticmethod
    def key_function(
        fingerprint: str, params: GenerationParams
    ) -> Callable[[Sequence[Message], int | None], str]:
        """A faster :meth:`key` for many requests of one candidate with the same parameters.

        Returns ``f(messages, repeat)`` equal to ``key(fingerprint, messages, params,
        repeat=repeat)`` for every input (the same canonical JSON, byte for byte), with the
        fingerprint and the parameters serialised once instead of once per request.
        """
        encode = _CANONICAL.encode
        head = '{"fingerprint":' + encode(fingerprint) + ',"messages":'
        tail = ',"params":' + encode(params.as_dict())

        def key(messages: Sequence[Message], repeat: int | None = None) -> str:
            blob = head + encode([m if type(m) is dict else dict(m) for m in messages]) + tail
            if repeat is not None:
                blob += ',"repeat":' + encode(repeat)
            return hashlib.sha256((blob + "}").encode("utf-8")).hexdigest()

        return key

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CacheError(f"response cache {self.path} is closed")
        return self._conn

    def get(self, key: str) -> Generation | None:
        """The stored generation for ``key`` (with ``cached=True``, original latency and tokens),
        or ``None``. Counts a hit or a miss."""
        with self._lock:
            conn = self._connection()
            try:
                row = conn.execute(
                    "SELECT text, prompt_tokens, completion_tokens, latency_s, finish_reason, extra "
                    "FROM responses WHERE key = ?",
                    (key,),
                ).fetchone()
            except sqlite3.Error as exc:
                raise CacheError(
                    f"response cache {self.path}: read failed ({type(exc).__name__}: {exc})"
                ) from exc
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return self._generation(key, row)

    def _generation(self, key: str, row: Sequence[Any]) -> Generation:
        """A stored row ``(text, prompt_tokens, completion_tokens, latency_s, finish_reason,
        extra)`` as a cached :class:`Generation`; a corrupt entry is a :class:`CacheError`."""
        text, prompt_tokens, completion_tokens, latency_s, finish_reason, extra = row
        try:
            extra_d = json.loads(extra)
        except ValueError as exc:
            raise CacheError(f"response cache {self.path}: entry {key} is corrupt ({exc})") from exc
        return Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=latency_s,
            finish_reason=finish_reason,
            cached=True,
            extra=extra_d,
        )

    def get_many(self, keys: Sequence[str]) -> dict[str, Generation]:
        """The stored generations of those ``keys`` that have one (each as :meth:`get` returns
        it), read in a few queries instead of one per key. Counts one hit or miss per distinct key.

        Raises:
            CacheError: the read failed or an entry is corrupt.
        """
        wanted = list(dict.fromkeys(keys))
        rows: list[tuple[Any, ...]] = []
        with self._lock:
            conn = self._connection()
            try:
                for start in range(0, len(wanted), _KEYS_PER_QUERY):
                    chunk = wanted[start : start + _KEYS_PER_QUERY]
                    rows.extend(conn.execute(
                        "SELECT key, text, prompt_tokens, completion_tokens, latency_s, "
                        "finish_reason, extra FROM responses "
                        f"WHERE key IN ({', '.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall())
            except sqlite3.Error as exc:
                raise CacheError(
                    f"response cache {self.path}: read failed ({type(exc).__name__}: {exc})"
                ) from exc
            self.hits += len(rows)
            self.misses += len(wanted) - len(rows)
        return {row[0]: self._generation(row[0], row[1:]) for row in rows}

    def put(self, key: str, generation: Generation, *, meta: dict[str, Any] | None = None) -> None:
        """Store a successful generation under ``key`` and commit at once.

        Args:
            key: From :meth:`key`.
            generation: The response; its ``text`` must be a ``str`` (failures are never cached).
            meta: Free JSON-able context kept beside the entry (candidate URI, case id...).

        Raises:
            TypeError: if ``generation`` is not a :class:`Generation` with ``str`` text.
            CacheError: if the write fails.
        """
        if not isinstance(generation, Generation) or not isinstance(generation.text, str):
            raise TypeError("only successful generations (Generation with str text) can be cached")
        row = (
            key,
            generation.text,
            generation.prompt_tokens,
            generation.completion_tokens,
            float(generation.latency_s or 0.0),
            generation.finish_reason,
            json.dumps(generation.extra or {}, sort_keys=True, default=str),
            json.dumps(meta or {}, sort_keys=True, default=str),
            time.time(),
        )
        with self._lock:
            conn = self._connection()
            try:
                conn.execute(
                    f"INSERT OR REPLACE INTO responses ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                    row,
                )
            except sqlite3.Error as exc:
                raise CacheError(
                    f"response cache {self.path}: write failed ({type(exc).__name__}: {exc})"
                ) from exc
            self.writes += 1

    def clear(self) -> None:
        """Delete every stored response (the counters are kept)."""
        with self._lock:
            try:
                self._connection().execute("DELETE FROM responses")
            except sqlite3.Error as exc:
                raise CacheError(f"response cache {self.path}: clear failed ({exc})") from exc

    def __len__(self) -> int:
        with self._lock:
            try:
                return int(self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0])
            except sqlite3.Error as exc:
                raise CacheError(f"response cache {self.path}: read failed ({exc})") from exc

    def __bool__(self) -> bool:
        """Always true: an empty cache is still a cache (``if cache:`` must not depend on size)."""
        return True

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"ResponseCache({str(self.path)!r}, hits={self.hits}, misses={self.misses}, "
            f"writes={self.writes})"
        )
