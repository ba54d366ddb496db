"""The archive's write lock: one writing process per archive root."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mdcsql.errors import ArchiveLockedError
from mdcsql.layout import WAL_DIR

LOCK_FILE = "LOCK"


class WriteLock:
    """Exclusive advisory lock on `_wal/LOCK`: one writing process per archive."""

    def __init__(self, root: Path) -> None:
        wal_dir = root / WAL_DIR
        wal_dir.mkdir(parents=True, exist_ok=True)
        self.path = wal_dir / LOCK_FILE
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            raise ArchiveLockedError(f"{root} is being written by pid {holder}; "
                                     "stop that collector first (or wait for it to finish)") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
