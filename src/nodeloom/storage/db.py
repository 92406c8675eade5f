"""Engine and session factory. SQLite runs in WAL mode; write transactions take the lock up front."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads queue on the lock, processes on SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

#: SQLite's `synchronous` levels we allow: NORMAL (WAL: a commit survives any process crash) and FULL (WAL: it also
#: survives power loss — the WAL is fsync'd at every commit)
SYNCHRONOUS = ("NORMAL", "FULL")


#: SQLite's page cache per connection (KiB). Each pooled connection keeps its own (SQLite's default is 2,000 KiB); with
#: up to 40 pooled connections a server's memory crept up by that much as the database outgrew what they had cached
#: (`bench/soak_rss.py`). The operating system's page cache is shared by all of them and holds the rest.
SQLITE_CACHE_KIB = 256


def make_engine(url: str, *, synchronous: str = "NORMAL", cache_kib: int = SQLITE_CACHE_KIB, **kwargs: Any) -> Engine:
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=20, max_overflow=20, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's own is broken)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA cache_size=-{int(cache_kib)}")  # KiB (negative: a size, not pages)
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock at BEGIN, so a transaction never fails half-way
            # upgrading a read lock; read-only sessions ask for a deferred BEGIN.
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20, **kwargs)


class Database:
    """Owns the engine; hands out sessions. `write()` commits on success; `read()` never writes."""

    def __init__(self, url: str, *, synchronous: str = "NORMAL", cache_kib: int = SQLITE_CACHE_KIB):
        self.url = url
        self.synchronous = synchronous
        self.engine = make_engine(url, synchronous=synchronous, cache_kib=cache_kib)
        self.is_sqlite = url.startswith("sqlite")
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        read_engine = self.engine.execution_options(sqlite_begin="DEFERRED") if self.is_sqlite else self.engine
        self._read_factory = sessionmaker(read_engine, expire_on_commit=False)
        #: SQLite has one writer at a time. Threads of this process queue on a lock that wakes the next one
        #: the moment the writer commits, instead of polling the database lock through SQLite's busy
        #: handler (which sleeps 1, 2, 5, 10 … ms between tries); processes sharing the file queue the same way
        #: on an flock of a file beside it (the kernel wakes the next one; a process that dies releases it).
        self._write_lock: threading.RLock | None = threading.RLock() if self.is_sqlite else None
        database = self.engine.url.database if self.is_sqlite else None
        self._lock_path = f"{database}.write-lock" if database and database != ":memory:" else None
        self._lock_fd: tuple[int, int] | None = None  # (pid, fd): a forked child opens its own
        self._depth = 0  # nested write() calls of the thread that holds the lock

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The write lock: this process's threads, then (outermost only) the processes sharing the file."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            self._depth += 1
            fd = self._process_lock() if self._depth == 1 else None
            try:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # waits without the GIL
                try:
                    yield
                finally:
                    if fd is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                self._depth -= 1

    def _process_lock(self) -> int | None:
        if self._lock_path is None or fcntl is None:
            return None
        pid = os.getpid()
        if self._lock_fd is None or self._lock_fd[0] != pid:
            try:
                self._lock_fd = (pid, os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600))
            except OSError:  # a read-only directory: SQLite's own busy handling still applies
                self._lock_path = None
                return None
        return self._lock_fd[1]

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success. Callbacks in `session.info["after_commit"]` run
        once it has committed (e.g. publishing a broker message for a row that now exists)."""
        with self._factory() as session:
            with self._locked(), session.begin():
                yield session
            for callback in session.info.pop("after_commit", []):
                callback()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read_factory() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self._lock_fd is not None and self._lock_fd[0] == os.getpid():
            os.close(self._lock_fd[1])
        self._lock_fd = None
