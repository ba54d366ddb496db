"""Checkpoints: the WAL position up to which every partition file is durable on its own.

After a checkpoint at LSN *L* listing open files with their sizes, recovery truncates each of
those files to its listed size, empties files created after the checkpoint, and replays the
WAL from *L*.  WAL segments wholly before *L* are no longer needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mdcsql.durable import atomic_write_json, read_json

CHECKPOINT_FILE = "checkpoint.json"


@dataclass(slots=True)
class Checkpoint:
    lsn: int = 0
    events: int = 0                                   # events durable up to `lsn` since the archive began
    files: dict[str, int] = field(default_factory=dict)   # open hot file relpath -> durable size

    @classmethod
    def load(cls, wal_dir: Path) -> "Checkpoint":
        path = wal_dir / CHECKPOINT_FILE
        if not path.exists():
            return cls()
        doc = read_json(path)
        return cls(lsn=int(doc["lsn"]), events=int(doc.get("events", 0)),
                   files={k: int(v) for k, v in doc.get("files", {}).items()})

    def save(self, wal_dir: Path) -> None:
        atomic_write_json(wal_dir / CHECKPOINT_FILE,
                          {"lsn": self.lsn, "events": self.events, "files": self.files})
