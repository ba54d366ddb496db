"""Storage tiers: where each tier's files live, in which format, and the archive tier's paths.

The design's tiers are hot, warm, cold, archive (and glacier, a label for the coldest target).
Files keep one logical path, relative to the archive root, in every tier:

- hot:     ``live/...``, ``historical/...``          JSONL as collected (none / gzip / zstd)
- warm:    ``warm/live/...jsonl.gz``                  JSONL re-compressed with the tier's codec
- cold:    ``cold/live/....parquet``                  typed Parquet (``mdcsql.lifecycle.parquet``)
- archive: ``_archive/{reason}/{root}/{Type}/{symbol}/{label}~{source}~{asset_class}.parquet``

Warm and cold keep the naming convention of the hot path (``Layout.relpath(..., tier=)``); the
archive has a scheme of its own because consolidation (daily -> weekly -> monthly -> yearly)
produces periods no date partition has. ``label`` is ``YYYY-MM-DD``, ``YYYY-Www`` (ISO week),
``YYYY-MM``, ``YYYY`` or ``all``.

A tier with its own ``Path`` (another directory or disk) is *mounted* into the tree: its tier
directory (``warm``, ``cold``, ``_archive``) becomes a symbolic link to that path, so DuckDB's
globs, the catalog views, backups and a user's shell all see one tree (decision D12).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from mdcsql.errors import ConfigError
from mdcsql.layout import (DAY_NS, EVENT_TYPES, TIER_ROOTS, FileMeta, PartitionKey,
                           decode_component, encode_component)

__all__ = ["TIER_ORDER", "ARCHIVE_DIR", "GRANULARITIES", "TierSpec", "tier_specs", "mount_tiers",
           "archive_relpath", "parse_archive", "parse_any", "label_of", "label_range",
           "granularity_of", "archive_globs", "parse_codec_spec", "label_start_ns"]

TIER_ORDER = ("hot", "warm", "cold", "archive")
ARCHIVE_DIR = "_archive"
#: archive consolidation levels, finest first
GRANULARITIES = ("Daily", "Weekly", "Monthly", "Yearly")

_DEFAULTS = {
    # name: (directory, format, codec spec, max_age_days)
    "hot": ("", "jsonl", None, 7),
    "warm": ("warm", "jsonl.gz", "gzip-6", 90),
    "cold": ("cold", "parquet", "zstd-12", 365),
    "archive": (ARCHIVE_DIR, "parquet", "zstd-19", None),
}
_JSONL_LEVEL = {"gzip": 6, "zstd": 12}


def parse_codec_spec(spec: str | None, *, default: str = "none") -> tuple[str, int | None]:
    """``"gzip-6"`` -> ``("gzip", 6)``, ``"zstd-max"`` -> ``("zstd", 19)`` (``codecs.parse_codec``)."""
    from mdcsql.lifecycle.codecs import parse_codec
    c = parse_codec(spec or default)
    return c.codec, c.level


@dataclass(frozen=True)
class TierSpec:
    """One tier as configured (``Storage.Tiering.Tiers``) over the design's defaults."""

    name: str
    directory: str            # tier directory under the archive root ("" for hot)
    path: str | None          # configured own location (mounted at `directory`), or None
    max_age_days: int | None
    max_size_gb: float | None
    format: str               # jsonl | jsonl.gz | jsonl.zst | parquet
    codec: str                # none | gzip | zstd (JSONL); zstd | snappy | gzip | brotli | lz4 (Parquet)
    level: int | None
    storage_class: str | None = None

    @property
    def is_parquet(self) -> bool:
        return self.format == "parquet"


def _default_spec(name: str) -> TierSpec:
    directory, fmt, codec, age = _DEFAULTS[name]
    c, level = parse_codec_spec(codec, default="none")
    return TierSpec(name, directory, None, age, None, fmt, c, level)


def tier_specs(settings) -> dict[str, TierSpec]:
    """Every tier's spec: the design defaults, overridden by ``Storage.Tiering.Tiers`` entries.

    A tier object without ``Compression`` keeps its format's default codec; ``Format`` jsonl.gz /
    jsonl.zst implies gzip / zstd. Glacier, when listed, is a label on the archive tier
    (``storage_class``), not another directory.
    """
    specs = {name: _default_spec(name) for name in TIER_ORDER}
    tiering = getattr(settings.storage, "tiering", None) if settings is not None else None
    for entry in (tiering.tiers or ()) if tiering is not None else ():
        if isinstance(entry, str):
            continue
        name = "archive" if entry.name == "glacier" else entry.name
        spec = specs[name]
        fmt = entry.format or spec.format
        if name == "hot" and fmt == "parquet":
            raise ConfigError("Storage.Tiering.Tiers: the hot tier is written as JSONL; "
                              "Format parquet is for warm, cold and archive")
        if name == "archive" and fmt != "parquet":
            raise ConfigError("Storage.Tiering.Tiers: the archive tier is Parquet")
        if entry.compression:
            codec, level = parse_codec_spec(entry.compression)
        elif fmt != spec.format:
            codec, level = {"jsonl": ("none", None), "jsonl.gz": ("gzip", 6),
                            "jsonl.zst": ("zstd", 12), "parquet": ("zstd", 12)}[fmt]
        else:
            codec, level = spec.codec, spec.level
        if fmt.startswith("jsonl"):
            implied = {"jsonl.gz": "gzip", "jsonl.zst": "zstd"}.get(fmt)
            if implied and entry.compression and codec != implied:
                raise ConfigError(f"Storage.Tiering.Tiers: tier {entry.name} has Format {fmt} but "
                                  f"Compression {entry.compression}")
            codec = implied or codec
            if codec not in ("none", "gzip", "zstd"):
                raise ConfigError(f"Storage.Tiering.Tiers: tier {entry.name} stores JSONL, which the "
                                  f"catalog views read as none, gzip or zstd — not {codec}")
            level = level if level is not None else _JSONL_LEVEL.get(codec)
        specs[name] = replace(
            spec, path=entry.path if entry.path is not None else spec.path,
            max_age_days=entry.max_age_days if "max_age_days" in entry.model_fields_set else spec.max_age_days,
            max_size_gb=entry.max_size_gb, format=fmt, codec=codec, level=level,
            storage_class=entry.storage_class or (entry.name if entry.name == "glacier" else None))
    return specs


def mount_tiers(root: Path, settings) -> list[str]:
    """Link every tier with its own local ``Path`` into the tree (idempotent). Returns notes for
    tiers whose path is object storage (kept in the local tier directory until the scale-out
    issue brings object storage).

    :raises ConfigError: the tier directory already holds files, or links somewhere else.
    """
    root = Path(root)
    notes = []
    for spec in tier_specs(settings).values():
        if not spec.path or not spec.directory:
            continue
        if "://" in spec.path:
            notes.append(f"tier {spec.name}: {spec.path} is object storage, not supported yet; "
                         f"its files stay under {spec.directory}/")
            continue
        target = Path(spec.path)
        target = (root / target) if not target.is_absolute() else target
        target.mkdir(parents=True, exist_ok=True)
        link = root / spec.directory
        if link.is_symlink():
            if Path(os.readlink(link)).resolve() != target.resolve():
                raise ConfigError(f"{link} links to {os.readlink(link)}, but the {spec.name} tier's "
                                  f"Path is {spec.path}; move its files and remove the link")
            continue
        if link.exists():
            if any(link.iterdir()):
                raise ConfigError(f"{link} holds files, but the {spec.name} tier's Path is "
                                  f"{spec.path}; move them there, remove the directory, and rerun")
            link.rmdir()
        os.symlink(target.resolve(), link, target_is_directory=True)
    return notes


# --------------------------------------------------------------------------- archive paths

_LABEL = re.compile(r"(?P<y>\d{4})(?:-W(?P<w>\d{2})|-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?|all")
_ARCHIVE = re.compile(
    r"_archive/(?P<reason>[a-z]+)/(?P<root>" + "|".join(TIER_ROOTS) + r")/(?P<type>"
    + "|".join(EVENT_TYPES) + r")/(?P<symbol>(?:[A-Za-z0-9-]|%[0-9A-F]{2})+)/(?P<label>[0-9W-]+|all)"
    r"~(?P<source>(?:[A-Za-z0-9-]|%[0-9A-F]{2})+)~(?P<asset_class>(?:[A-Za-z0-9-]|%[0-9A-F]{2})+)"
    r"(?:\.p(?P<part>[1-9][0-9]*))?\.parquet")
_REASONS = ("regulatory", "compliance", "research", "legal", "historical")


def granularity_of(label: str) -> str:
    """``2024-01-15`` Daily, ``2024-W03`` Weekly, ``2024-01`` Monthly, ``2024`` Yearly, ``all``."""
    m = _LABEL.fullmatch(label)
    if m is None:
        raise ValueError(f"{label!r} is not an archive period label")
    if label == "all":
        return "All"
    return "Daily" if m["d"] else "Weekly" if m["w"] else "Monthly" if m["m"] else "Yearly"


def label_of(day: date, granularity: str) -> str:
    """The label of the archive period of ``granularity`` holding ``day``."""
    if granularity == "Daily":
        return day.isoformat()
    if granularity == "Weekly":
        y, w, _ = day.isocalendar()
        return f"{y}-W{w:02d}"
    if granularity == "Monthly":
        return f"{day.year}-{day.month:02d}"
    if granularity == "Yearly":
        return f"{day.year}"
    raise ValueError(f"unknown granularity {granularity!r}; expected one of {GRANULARITIES}")


def label_range(label: str) -> tuple[date, date] | None:
    """First day and the day after the last day of a period label (None for ``all``)."""
    g = granularity_of(label)
    m = _LABEL.fullmatch(label)
    y = int(m["y"])
    if g == "All":
        return None
    if g == "Daily":
        d = date(y, int(m["m"]), int(m["d"]))
        return d, d + timedelta(days=1)
    if g == "Weekly":
        d = date.fromisocalendar(y, int(m["w"]), 1)
        return d, d + timedelta(days=7)
    if g == "Monthly":
        d = date(y, int(m["m"]), 1)
        return d, date(y + (d.month == 12), d.month % 12 + 1, 1)
    return date(y, 1, 1), date(y + 1, 1, 1)


def label_start_ns(label: str) -> int | None:
    r = label_range(label)
    return None if r is None else (r[0] - date(1970, 1, 1)).days * DAY_NS


def archive_relpath(reason: str, key: PartitionKey, label: str, *, part: int = 1) -> str:
    """Logical path of an archive-tier file (``key.period`` is ignored: ``label`` names the period)."""
    reason = reason.lower()
    if reason not in _REASONS:
        raise ValueError(f"unknown archive reason {reason!r}; expected one of {_REASONS}")
    granularity_of(label)
    return (f"{ARCHIVE_DIR}/{reason}/{key.root}/{key.type}/{encode_component(key.symbol)}/{label}"
            f"~{encode_component(key.source)}~{encode_component(key.asset_class)}"
            f"{'' if part == 1 else f'.p{part}'}.parquet")


def parse_archive(relpath: str) -> FileMeta:
    """FileMeta of an archive-tier path (``key.period`` holds the label, ``tier`` is "archive").

    :raises ValueError: not an archive data file.
    """
    m = _ARCHIVE.fullmatch(relpath)
    if m is None or m["reason"] not in _REASONS:
        raise ValueError(f"{relpath!r} is not an archive-tier data file "
                         "(_archive/{reason}/{root}/{Type}/{symbol}/{label}~{source}~{asset_class}.parquet)")
    granularity_of(m["label"])
    key = PartitionKey(root=m["root"], source=decode_component(m["source"]),
                       asset_class=decode_component(m["asset_class"]),
                       symbol=decode_component(m["symbol"]), type=m["type"], period=m["label"])
    part = int(m["part"]) if m["part"] else 1
    if archive_relpath(m["reason"], key, m["label"], part=part) != relpath:
        raise ValueError(f"{relpath!r} is not canonical")
    return FileMeta(key=key, codec="parquet", part=part, checksum6=None, relpath=relpath, tier="archive")


def parse_any(relpath: str, layout) -> FileMeta:
    """FileMeta of a data file of any tier. :raises ValueError: not a data file."""
    if relpath.startswith(ARCHIVE_DIR + "/"):
        return parse_archive(relpath)
    return layout.parse(relpath)


def archive_globs(root: str, type_: str) -> list[str]:
    """Glob patterns matching the archive-tier files of one tier root and event type."""
    return [f"{ARCHIVE_DIR}/*/{root}/{type_}/*/*.parquet"]
