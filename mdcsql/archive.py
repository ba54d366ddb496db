"""An archive root: its settings, layout, single write path and catalog, in one handle.

Everything the CLI and the HTTP API do starts here: `Archive.init` creates a root,
`Archive.open` finds one, and the methods below are the library functions the commands call.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from mdcsql.config import Settings, load_config, settings_from_dict
from mdcsql.durable import atomic_write_json
from mdcsql.errors import ArchiveLockedError, ConfigError, NotFoundError
from mdcsql.ingest.recovery import RecoveryReport
from mdcsql.ingest.writer import Ack, Ingestor, WriteLock
from mdcsql.layout import (ARCHIVE_ROOT, CATALOG_DIR, QUARANTINE_DIR, SESSIONS_DIR, TIER_ROOTS, WAL_DIR,
                           Layout)

CONFIG_FILE = "config.json"


class Archive:
    """Handle on one archive root. Cheap to open; the write path is started on first use."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = Path(root).resolve()
        self.settings = settings
        st = settings.storage
        self.layout = Layout(st.naming_convention, st.date_partition,
                             file_name_metadata=st.file_name_metadata, file_prefix=st.file_prefix)
        self._ingestor: Ingestor | None = None
        self._syncer: CatalogSyncer | None = None
        self._gate = None            # mdcsql.registry.WriteGate, built with the write path
        self._reloader = None        # mdcsql.lifecycle.policy_reload.PolicyReloader, with the write path

    # ---- creating and opening ---------------------------------------------------------------
    @classmethod
    def init(cls, root, *, profile: str | None = None, config: str | Path | None = None) -> "Archive":
        """Create (or re-initialise with the same settings) an archive root."""
        root = Path(root).resolve()
        config_path = root / CATALOG_DIR / CONFIG_FILE
        settings = load_config(config, profile=profile)
        if config_path.exists():
            existing = cls.open(root)
            if existing.settings.to_dict() != settings.to_dict() and (config or profile):
                raise ConfigError(f"{root} is already an archive with other settings "
                                  f"(see {config_path}); choose another root")
            settings = existing.settings
        for sub in (CATALOG_DIR, WAL_DIR, QUARANTINE_DIR, SESSIONS_DIR, ARCHIVE_ROOT, *TIER_ROOTS):
            (root / sub).mkdir(parents=True, exist_ok=True)
        doc = settings.explicit_dict()
        if settings.profile:
            doc.setdefault("Storage", {})["Profile"] = settings.profile
        atomic_write_json(config_path, doc)
        archive = cls(root, settings)
        archive.sync_catalog()
        return archive

    @classmethod
    def open(cls, root) -> "Archive":
        root = Path(root).resolve()
        return cls(root, read_settings(root))

    def reload_settings(self) -> bool:
        """Re-read ``_catalog/config.json`` (a long-lived process); True when the settings changed.
        Layout settings take effect only in a new process. A running collector's write path
        reloads its policies by itself (mdcsql.lifecycle.policy_reload).

        :raises ConfigError: the file is not valid JSON or a setting is bad (nothing changes).
        """
        settings = read_settings(self.root)
        if settings.to_dict() == self.settings.to_dict():
            return False
        self.settings = settings
        return True

    # ---- the write path ---------------------------------------------------------------------
    def ingestor(self) -> Ingestor:
        """The archive's write path (takes the write lock and runs recovery on first use)."""
        if self._ingestor is None:
            from mdcsql.lifecycle.quota_usage import build_write_limits
            from mdcsql.registry import WriteGate
            st = self.settings.storage
            limits = build_write_limits(self)     # quotas + integrity policy; None: nothing to check
            # the registries, as exported to _catalog/*.json: aliases rewritten at ingest, disabled
            # sources refused, unknown symbols routed by the policy; new ones registered by the syncer
            gate = self._gate = WriteGate(self.root,
                                          on_new_symbol=lambda symbol, asset_class: self._syncer.register_symbol(
                                              symbol, asset_class),
                                          on_new_source=lambda source, kind: self._syncer.register_source(source, kind))
            self._ingestor = Ingestor(
                self.root, self.layout, codec=st.codec, level=st.compression_level,
                sync_mode=st.sync.mode, interval_ms=st.sync.interval_ms, max_events=st.sync.max_events,
                seal_grace_ns=st.seal_grace_seconds * 1_000_000_000,
                on_seal=lambda manifests: self._syncer.poke(m["path"] for m in manifests),
                on_new_file=lambda relpath: self._syncer.poke([relpath]),
                resolve_symbol=gate.resolve_symbol, admit=gate.admit, limits=limits,
                codec_of_type=_hot_codecs(self.settings))
            self._syncer = CatalogSyncer(self)
            self._syncer.start()
            from mdcsql.lifecycle.policy_reload import PolicyReloader
            self._reloader = PolicyReloader(self, self._ingestor)   # config changes, within a second
            self._reloader.start()
        return self._ingestor

    def writer(self, source: str, *, root: str = "live", asset_class: str = "equity") -> "Writer":
        """A source's handle on the write path; the source is registered in the catalog if new.

        :raises SourceDisabledError: the source is registered and disabled (``mdcsql sources enable``).
        """
        from mdcsql.registry import SourceRegistry
        if self._gate is not None:
            self._gate.refresh_sources().check_source(source)
        else:
            SourceRegistry.load_exported(self.root).check_writable(source, self.root)
        ingestor = self.ingestor()
        self._syncer.register_source(source, "live" if root == "live" else "historical")
        return Writer(ingestor, source=source, root=root, asset_class=asset_class)

    def recover(self) -> RecoveryReport:
        """Run crash recovery now (it also runs by itself when the write path starts)."""
        if self._ingestor is not None:
            return self._ingestor.recovery
        report = self.ingestor().recovery
        self.close(seal=False)
        return report

    def seal(self) -> list[dict]:
        """Seal every hot file (those a crashed collector left behind included)."""
        manifests = self.ingestor().seal(orphans=True)
        self.sync_catalog()
        return manifests

    def close(self, *, seal: bool = True) -> None:
        if self._ingestor is not None:
            self._reloader.stop()
            try:
                self._ingestor.close(seal=seal)
            finally:
                self._syncer.stop()
                self._ingestor = None
                self._gate = None
            self.sync_catalog(timeout=30, sources=self._syncer.pending_sources(),
                              symbols=self._syncer.pending_symbols())

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(seal=exc_type is None)

    # ---- the catalog ------------------------------------------------------------------------
    def catalog(self, *, read_only: bool = False, timeout: float = 10.0):
        from mdcsql.catalog import Catalog
        return Catalog.open(self.root, read_only=read_only, timeout=timeout)

    def sync_catalog(self, *, timeout: float = 10.0, paths=None, sources: dict | None = None,
                     symbols: dict | None = None):
        """Bring the catalog up to date with the tree (or just `paths`); best effort when `timeout` is short.

        `sources` (id -> live|historical) and `symbols` (symbol -> asset class) are registered first
        unless the catalog knows them already.
        """
        try:
            with self.catalog(timeout=timeout) as cat:
                if symbols:
                    from mdcsql.catalog.registries import register_new_symbols
                    with cat.write_lock("register symbols"):
                        register_new_symbols(cat, symbols)
                if sources:
                    known = {s["id"] for s in cat.sources()}
                    for source_id, kind in sources.items():
                        if source_id not in known:
                            cat.register_source(source_id, name=source_id, type=kind)
                return cat.sync(self.layout, paths=paths)
        except ArchiveLockedError:
            if timeout >= 10:
                raise
            return None      # a reader holds the catalog: the next sync catches up

    def rebuild_catalog(self):
        with self.catalog() as cat:
            return cat.rebuild(self.layout)

    def is_writing(self) -> bool:
        """True while another process holds the write lock."""
        try:
            lock = WriteLock(self.root)
        except ArchiveLockedError:
            return True
        lock.release()
        return False


def read_settings(root: Path) -> Settings:
    """The settings in ``<root>/_catalog/config.json``.

    :raises NotFoundError: not an archive. :raises ConfigError: not JSON, or a bad setting.
    """
    config_path = Path(root) / CATALOG_DIR / CONFIG_FILE
    if not config_path.exists():
        raise NotFoundError(f"{root} is not an mdcsql archive (no {CATALOG_DIR}/{CONFIG_FILE}); "
                            f"create it with: mdcsql init {root}")
    try:
        doc = json.loads(config_path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{config_path}: not valid JSON ({exc})") from None
    return settings_from_dict(doc)


class CatalogSyncer(threading.Thread):
    """Keeps the catalog in step with the tree while a collector runs, off the ingest path.

    The write path only pokes it (a new hot file, a batch of seals); it then opens the catalog
    for a moment, at most once per `min_interval`, and gives up quickly if a reader holds it —
    the tree is the truth, so the next poke catches up.
    """

    def __init__(self, archive: "Archive", min_interval: float = 1.0) -> None:
        super().__init__(name="mdcsql-catalog-sync", daemon=True)
        self.archive = archive
        self.min_interval = min_interval
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._paths: set[str] = set()
        self._sources: dict[str, str] = {}
        self._symbols: dict[str, str] = {}
        self.syncs = 0
        self.last_error: BaseException | None = None

    def poke(self, paths) -> None:
        """Ask for a sync of these files (targeted: no walk over the whole tree)."""
        with self._guard:
            self._paths.update(paths)
        self._dirty.set()

    def register_source(self, source: str, kind: str) -> None:
        with self._guard:
            self._sources.setdefault(source, kind)
        self._dirty.set()

    def register_symbol(self, symbol: str, asset_class: str) -> None:
        """A symbol first seen at ingest (unknown-symbol policy accept): registered with the next sync."""
        with self._guard:
            self._symbols.setdefault(symbol, asset_class)
        self._dirty.set()

    def run(self) -> None:
        while True:
            self._dirty.wait()
            if self._stopping.is_set():
                return
            self._dirty.clear()
            with self._guard:
                paths, self._paths = self._paths, set()
                sources, self._sources = self._sources, {}
                symbols, self._symbols = self._symbols, {}
            try:
                if self.archive.sync_catalog(timeout=0.5, paths=sorted(paths), sources=sources,
                                             symbols=symbols) is None:
                    with self._guard:          # the catalog was busy: try again next round
                        self._paths |= paths
                        self._sources = {**sources, **self._sources}
                        self._symbols = {**symbols, **self._symbols}
                    self._dirty.set()
                else:
                    self.syncs += 1
            except Exception as exc:           # never take the collector down; reported on close
                self.last_error = exc
            self._stopping.wait(self.min_interval)

    def pending_sources(self) -> dict[str, str]:
        with self._guard:
            return dict(self._sources)

    def pending_symbols(self) -> dict[str, str]:
        with self._guard:
            return dict(self._symbols)

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        self.join(timeout=30)


@dataclass
class Writer:
    """A source's handle on the write path: append events, get acknowledgements."""

    ingestor: Ingestor
    source: str
    root: str = "live"
    asset_class: str = "equity"

    def __post_init__(self) -> None:
        # bound once: append() is the per-event hot path
        self.append = functools.partial(self.ingestor.append, root=self.root, asset_class=self.asset_class,
                                        source=self.source)

    def append(self, event: dict) -> None:
        """Append one event (replaced per instance by a pre-bound call; see __post_init__)."""
        self.ingestor.append(event, root=self.root, asset_class=self.asset_class, source=self.source)

    def append_many(self, events, *, normalized: bool = False) -> int:
        """Append a list of events; `normalized=True` skips validation for sources that build canonical dicts."""
        return self.ingestor.append_many(events, root=self.root, asset_class=self.asset_class,
                                         source=self.source, normalized=normalized)

    def append_table(self, table, *, type: str | None = None, on_refused=None) -> int:
        return self.ingestor.append_table(table, root=self.root, asset_class=self.asset_class,
                                          type=type, source=self.source, on_refused=on_refused)

    def flush(self) -> Ack:
        return self.ingestor.flush()

    def seal(self) -> list[dict]:
        return self.ingestor.seal()

    @property
    def durable(self) -> Ack:
        return self.ingestor.durable


def _hot_codecs(settings) -> dict:
    """Event type -> (codec, level) of ``Storage.Policies.<Type>.Compression.Hot``, where set."""
    from mdcsql.lifecycle.codecs import parse_codec
    out = {}
    for type_, pol in (settings.storage.policies or {}).items():
        spec = pol.compression.hot if pol.compression is not None else None
        if spec:
            c = parse_codec(spec, tier="hot", for_format="jsonl")
            out[type_] = (c.codec, c.level if c.level is not None else 0)
    return out
