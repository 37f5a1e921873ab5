"""The audit log: one JSON line per attempt, to a rotating file or to any ``logging`` handler.

The file writer is safe with several processes appending to the same file: every line is one
``write()`` to a file opened with ``O_APPEND``, made under an exclusive ``flock`` on a lock
file beside it, and the size check and rotation happen under the same lock, so no line is torn
and none is written to a file another process has just rotated away. On a platform without
``fcntl`` (Windows) only the threads of one process are serialised.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._exceptions import ConfigurationError
from ._observe import Attempt

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["AuditLog", "read_audit"]

log = logging.getLogger("coinguard.audit")

_MB = 1024 * 1024


class _RotatingFile:
    """Appends whole lines; rotates ``path`` to ``path.1`` ... ``path.N`` past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock_path = f"{path}.lock"
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._inode: int | None = None
        self._lock_fd: int | None = None
        self._pid = 0

    def write(self, data: bytes) -> None:
        with self._thread_lock:
            if self._pid != os.getpid():  # a forked child must not share the parent's lock
                self._reset()
            lock_fd = self._lock_fd
            if lock_fd is None:
                lock_fd = self._lock_fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
            if fcntl is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                fd = self._current()
                size = os.fstat(fd).st_size
                if self.max_bytes and size and size + len(data) > self.max_bytes:
                    self._rotate()
                    fd = self._current()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                if fcntl is not None:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def _current(self) -> int:
        """The descriptor of the file now at ``path`` (another process may have rotated it)."""
        try:
            inode: int | None = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if self._fd is None or inode != self._inode:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._inode = os.fstat(self._fd).st_ino
        return self._fd

    def _rotate(self) -> None:
        if self.backups <= 0:
            os.truncate(self.path, 0)
            return
        for i in range(self.backups - 1, 0, -1):
            older = Path(f"{self.path}.{i}")
            if older.exists():
                os.replace(older, f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")

    def _reset(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = self._inode = None
        self._pid = os.getpid()

    def close(self) -> None:
        with self._thread_lock:
            self._reset()


class AuditLog:
    """Journal every attempt as one JSON line (schema: docs/observability.md, field ``v``).

    To a file (``path``), rotated past ``max_bytes`` into ``backups`` numbered files and safe
    with several processes appending; or to any ``logging`` handler (``handler``), one
    ``INFO`` record per attempt on ``coinguard.audit`` whose message is the JSON line.

    >>> client = Client(provider="tokenmetrics", audit=AuditLog("calls.jsonl"))  # doctest: +SKIP
    """

    blocking = True

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        handler: logging.Handler | None = None,
        max_bytes: int = 50 * _MB,
        backups: int = 5,
    ) -> None:
        if (path is None) == (handler is None):
            raise ConfigurationError("AuditLog takes a path or a handler= (exactly one)")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ConfigurationError(f"AuditLog max_bytes must be an int >= 0, got {max_bytes!r}")
        if isinstance(backups, bool) or not isinstance(backups, int) or backups < 0:
            raise ConfigurationError(f"AuditLog backups must be an int >= 0, got {backups!r}")
        self.path = Path(path) if path is not None else None
        self.handler = handler
        self._file = _RotatingFile(self.path, max_bytes, backups) if self.path else None
        self.blocking = self._file is not None

    def attempt(self, record: Attempt) -> None:
        """Write one attempt's line."""
        line = json.dumps(record.as_dict(), separators=(",", ":"), ensure_ascii=False)
        if self._file is not None:
            self._file.write(line.encode("utf-8") + b"\n")
        elif self.handler is not None:
            entry = logging.LogRecord(
                "coinguard.audit", logging.INFO, __file__, 0, line, None, None
            )
            self.handler.handle(entry)

    def close(self) -> None:
        """Close the file (it is reopened by the next write)."""
        if self._file is not None:
            self._file.close()

    def __repr__(self) -> str:
        target = str(self.path) if self.path else type(self.handler).__name__
        return f"AuditLog({target})"


def read_audit(path: str | os.PathLike[str], *, rotated: bool = True) -> Iterator[Attempt]:
    """The attempts of an audit log, oldest first (with its rotated files unless told not to).

    A line that is not a record of this schema is skipped and counted in a warning log line.
    """
    base = Path(path)
    files = []
    if rotated:
        i = 1
        while Path(f"{base}.{i}").exists():
            files.append(Path(f"{base}.{i}"))
            i += 1
        files.reverse()
    files.append(base)
    bad = 0
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                record = _parse(line)
                if record is None:
                    bad += 1 if line.strip() else 0
                    continue
                yield record
    if bad:
        log.warning("%s: %d lines were not audit records and were skipped", base, bad)


def _parse(line: str) -> Attempt | None:
    try:
        data: Any = json.loads(line)
        if not isinstance(data, dict) or "time" not in data:
            return None
        return Attempt.from_dict(data)
    except (ValueError, TypeError, KeyError):
        return None
