"""Archive layout: (tier root, source, asset class, symbol, type, period, codec, part) <-> path.

Pure functions, no I/O. Every naming convention x date partition maps a partition key to one
relative POSIX path and parses it back to *all* of its fields; see ``docs/layout.md`` for the
full scheme and a table of example paths.

File-name scheme (``{x}`` = encoded component, see :func:`encode_component`)::

    {root}/{convention dirs}/{prefix}{stem}{tags}{part}{ext}

- ``stem``: the design's file name (``{date}``, ``{type}``, ``{symbol}_{type}_{date}``), or with
  ``file_name_metadata`` ``{symbol}_{type}_{date}_{source}[_{checksum6}]``;
- ``tags``: ``~{source}`` then ``~{asset_class}``, each only when the directories and stem lack it;
- ``part``: ``.p{n}`` for n >= 2, nothing for part 1;
- ``ext``: ``.jsonl`` / ``.jsonl.gz`` / ``.jsonl.zst`` / ``.parquet`` (the cold tiers).

Files of the warm and cold tiers keep their hot path under a tier directory: ``warm/live/...``,
``cold/live/....parquet`` (:data:`TIER_DIRS`); the archive tier has a scheme of its own
(``mdcsql.lifecycle.tiers``).

With DatePartition ``None`` date directories are dropped and a date inside a file name becomes
the literal ``all``. Encoded components contain only ``[A-Za-z0-9%-]``, so ``/``, ``_``, ``.`` and
``~`` can delimit fields unambiguously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote_to_bytes

__all__ = [
    "NAMING_CONVENTIONS", "DATE_PARTITIONS", "EVENT_TYPES", "TIER_ROOTS", "CODEC_EXT", "TIER_DIRS",
    "JSONL_CODECS",
    "ARCHIVE_ROOT", "CATALOG_DIR", "QUARANTINE_DIR", "WAL_DIR", "SESSIONS_DIR",
    "MAX_NAME_BYTES", "NO_DATE", "HOUR_NS", "DAY_NS", "NameTooLongError",
    "encode_component", "decode_component",
    "period_start", "period_end", "period_label", "parse_period_label",
    "PartitionKey", "FileMeta", "Layout",
]

NAMING_CONVENTIONS = ("Flat", "BySymbol", "ByDate", "ByType", "BySource", "ByAssetClass",
                      "Hierarchical", "Canonical")
DATE_PARTITIONS = ("None", "Daily", "Hourly", "Monthly")
EVENT_TYPES = ("Trade", "BboQuote", "L2Snapshot", "OrderFlow", "HistoricalBar", "Heartbeat")
TIER_ROOTS = ("live", "historical")
ARCHIVE_ROOT = "_archive"
CATALOG_DIR = "_catalog"
QUARANTINE_DIR = "_quarantine"
WAL_DIR = "_wal"
SESSIONS_DIR = "sessions"
#: file "codec" -> extension; "parquet" stands for the Parquet format (its compression is inside)
CODEC_EXT = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst", "parquet": ".parquet"}
JSONL_CODECS = ("none", "gzip", "zstd")
#: tier -> the directory its files live under (hot files live at the top of the tree)
TIER_DIRS = {"hot": "", "warm": "warm", "cold": "cold"}

MAX_NAME_BYTES = 255  # longest file or directory name on common filesystems (ext4, xfs, apfs, ntfs)
NO_DATE = "all"       # stands for the date inside a file name when DatePartition is None

HOUR_NS = 3_600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS


class NameTooLongError(ValueError):
    """An encoded path component would exceed MAX_NAME_BYTES."""


# --------------------------------------------------------------------------- component encoding

_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_ENCODE_TABLE = tuple(chr(b) if b in _SAFE_BYTES else f"%{b:02X}" for b in range(256))
_COMPONENT_RE = r"(?:[A-Za-z0-9-]|%[0-9A-F]{2})+"
_COMPONENT = re.compile(_COMPONENT_RE)


@lru_cache(maxsize=65_536)
def encode_component(value: str) -> str:
    """Encode a symbol, source or asset class into one filesystem-safe path component.

    ``[A-Za-z0-9-]`` stays as is; every other byte of the UTF-8 form becomes ``%XX`` (uppercase
    hex), so the result never contains ``/``, ``.``, ``_`` or ``~`` and is never dot-only.

    :param value: the raw, non-empty string.
    :raises ValueError: empty, not a string, or not encodable as UTF-8 (lone surrogates).

    Example: ``encode_component("BRK/B") == "BRK%2FB"``; ``encode_component("^GSPC") == "%5EGSPC"``.
    """
    if not isinstance(value, str):
        raise ValueError(f"path component must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError("path component must not be empty")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"path component {value!r} is not valid Unicode text: {exc}") from None
    return "".join(map(_ENCODE_TABLE.__getitem__, data))


def decode_component(text: str) -> str:
    """Inverse of :func:`encode_component`; accepts only its exact (canonical) output.

    :raises ValueError: a character outside ``[A-Za-z0-9%-]``, a bad or lowercase escape, an
        escape of a plain character (``%41``), or bytes that are not UTF-8.
    """
    if not isinstance(text, str) or not _COMPONENT.fullmatch(text):
        raise ValueError(f"{text!r} is not an encoded path component "
                         "(only [A-Za-z0-9-] and %XX escapes with uppercase hex)")
    try:
        value = unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{text!r} does not decode to UTF-8 text") from None
    if encode_component(value) != text:
        raise ValueError(f"{text!r} is not canonical: expected {encode_component(value)!r}")
    return value


# --------------------------------------------------------------------------- periods (UTC, ns)

def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01."""
    z += 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


@lru_cache(maxsize=4_096)
def _month_start_day(day: int) -> int:
    y, m, _ = _civil_from_days(day)
    return _days_from_civil(y, m, 1)


def _check_partition(partition: str) -> None:
    if partition not in DATE_PARTITIONS:
        raise ValueError(f"unknown date partition {partition!r}; expected one of {DATE_PARTITIONS}")


def period_start(ts_ns: int, partition: str) -> int | None:
    """UTC start (ns since the epoch) of the period holding ``ts_ns``; None for partition "None".

    Integer arithmetic only (called per event); floor semantics, so times before 1970 work.
    """
    if partition == "Daily":
        return ts_ns - ts_ns % DAY_NS
    if partition == "Hourly":
        return ts_ns - ts_ns % HOUR_NS
    if partition == "Monthly":
        return _month_start_day(ts_ns // DAY_NS) * DAY_NS
    _check_partition(partition)
    return None


def period_end(start_ns: int, partition: str) -> int | None:
    """Exclusive UTC end of the period beginning at ``start_ns``; None for partition "None".

    :raises ValueError: ``start_ns`` is not the start of a period of this partition.
    """
    if partition == "None":
        return None
    if period_start(start_ns, partition) != start_ns:
        raise ValueError(f"{start_ns} is not the start of a {partition} period")
    if partition == "Daily":
        return start_ns + DAY_NS
    if partition == "Hourly":
        return start_ns + HOUR_NS
    y, m, _ = _civil_from_days(start_ns // DAY_NS)
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return _days_from_civil(y, m, 1) * DAY_NS


_LABEL_RE = {
    "Daily": re.compile(r"(\d{4})-(\d{2})-(\d{2})"),
    "Hourly": re.compile(r"(\d{4})-(\d{2})-(\d{2})_(\d{2})"),
    "Monthly": re.compile(r"(\d{4})-(\d{2})"),
}
_LABEL_GLOB = {"None": "", "Daily": "????-??-??", "Hourly": "????-??-??_??", "Monthly": "????-??"}


def period_label(start_ns: int | None, partition: str) -> str:
    """Label of the period holding ``start_ns``: Daily ``2024-01-15``, Hourly ``2024-01-15_14``,
    Monthly ``2024-01``; ``""`` for partition "None".

    :raises ValueError: unknown partition, a missing time, or a year outside 0001..9999.
    """
    _check_partition(partition)
    if partition == "None":
        return ""
    if start_ns is None:
        raise ValueError(f"a {partition} period needs a time, got None")
    day, rest = divmod(start_ns, DAY_NS)
    y, m, d = _civil_from_days(day)
    if not 1 <= y <= 9999:
        raise ValueError(f"time {start_ns} ns is outside years 0001..9999")
    if partition == "Monthly":
        return f"{y:04d}-{m:02d}"
    if partition == "Daily":
        return f"{y:04d}-{m:02d}-{d:02d}"
    return f"{y:04d}-{m:02d}-{d:02d}_{rest // HOUR_NS:02d}"


def parse_period_label(label: str, partition: str) -> int | None:
    """Inverse of :func:`period_label`: the period's UTC start in ns (None for partition "None").

    :raises ValueError: the label is not exactly in the partition's format or not a real date.
    """
    _check_partition(partition)
    if partition == "None":
        if label != "":
            raise ValueError(f"partition None has no period label, got {label!r}")
        return None
    match = _LABEL_RE[partition].fullmatch(label) if isinstance(label, str) else None
    if match is None:
        raise ValueError(f"{label!r} is not a {partition} period label "
                         f"(expected {period_label(0, partition)!r} style)")
    parts = [int(g) for g in match.groups()]
    y, m = parts[0], parts[1]
    d = parts[2] if len(parts) > 2 else 1
    hour = parts[3] if len(parts) > 3 else 0
    day = _days_from_civil(y, m, d) if 1 <= m <= 12 else None
    if y < 1 or day is None or _civil_from_days(day) != (y, m, d) or hour > 23:
        raise ValueError(f"{label!r} is not a valid {partition} period (no such date or hour)")
    return day * DAY_NS + hour * HOUR_NS


# --------------------------------------------------------------------------- keys and metadata

@dataclass(frozen=True, slots=True)
class PartitionKey:
    """Everything that decides which file an event belongs to. Strings are raw (not encoded)."""

    root: str          # one of TIER_ROOTS
    source: str
    asset_class: str
    symbol: str
    type: str          # one of EVENT_TYPES
    period: str        # period_label(...) or "" when DatePartition is None


@dataclass(frozen=True, slots=True)
class FileMeta:
    """Everything a data file's relative path says about it."""

    key: PartitionKey
    codec: str         # none | gzip | zstd | parquet
    part: int          # 1 for the first file of a partition; 2, 3 ... for later files
    checksum6: str | None  # only with file_name_metadata (None while the file is open)
    relpath: str
    tier: str = "hot"  # hot | warm | cold (see TIER_DIRS)


# --------------------------------------------------------------------------- layouts

_DIRS = {
    "Flat": "",
    "BySymbol": "{symbol}/{type}/",
    "ByDate": "{date}/{symbol}/",
    "ByType": "{type}/{symbol}/",
    "BySource": "{source}/{symbol}/{type}/",
    "ByAssetClass": "{asset_class}/{symbol}/{type}/",
    "Hierarchical": "{source}/{asset_class}/{symbol}/{type}/",
    "Canonical": "{civil}{source}/{symbol}/",
}
_STEM = {"Flat": "{symbol}_{type}_{date}", "ByDate": "{type}", "Canonical": "{type}"}
_DEFAULT_STEM = "{date}"
_METADATA_STEM = "{symbol}_{type}_{date}_{source}{checksum}"
_CIVIL_DIRS = {"None": "", "Daily": "{year}/{month}/{day}/", "Hourly": "{year}/{month}/{day}/{hour}/",
               "Monthly": "{year}/{month}/"}
_CODEC_OF_EXT = {ext: codec for codec, ext in CODEC_EXT.items()}
_TIER_OF_DIR = {d: t for t, d in TIER_DIRS.items() if d}
_PREFIX_RE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,63})?")
_CHECKSUM_RE = re.compile(r"[0-9a-f]{6}")
_TOKEN = re.compile(r"(\{[a-z_0-9]+\})")
_ENCODED_FIELDS = ("source", "asset_class", "symbol")


def _template(convention: str, partition: str, metadata: bool, prefix: str) -> str:
    dirs = _DIRS[convention].replace("{civil}", _CIVIL_DIRS[partition])
    stem = _METADATA_STEM if metadata else _STEM.get(convention, _DEFAULT_STEM)
    if partition == "None":
        dirs = dirs.replace("{date}/", "")
        stem = stem.replace("{date}", NO_DATE)
    tags = "".join(f"~{{{f}}}" for f in ("source", "asset_class") if f"{{{f}}}" not in dirs + stem)
    # A literal prefix may not contain braces (validated), so it cannot inject a placeholder.
    return "{root}/" + dirs + prefix + stem + tags + "{part}{ext}"


class Layout:
    """One naming convention x date partition: key -> relative path, path -> FileMeta, globs.

    :param convention: one of NAMING_CONVENTIONS.
    :param partition: one of DATE_PARTITIONS.
    :param file_name_metadata: name files ``{symbol}_{type}_{date}_{source}_{checksum6}{ext}``.
    :param file_prefix: literal prepended to every file name (``[A-Za-z0-9][A-Za-z0-9_.-]*``,
        at most 64 characters, or empty).

    Example: ``Layout("BySymbol", "Daily").relpath(PartitionKey("live", "sim", "equity", "AAPL",
    "Trade", "2024-01-15"))`` is ``"live/AAPL/Trade/2024-01-15~sim~equity.jsonl"``.
    """

    __slots__ = ("convention", "partition", "file_name_metadata", "file_prefix", "template",
                 "_tokens", "_regex")

    def __init__(self, convention: str, partition: str, *, file_name_metadata: bool = False,
                 file_prefix: str = "") -> None:
        if convention not in NAMING_CONVENTIONS:
            raise ValueError(f"unknown naming convention {convention!r}; "
                             f"expected one of {NAMING_CONVENTIONS}")
        _check_partition(partition)
        if not isinstance(file_prefix, str) or not _PREFIX_RE.fullmatch(file_prefix):
            raise ValueError(f"file prefix {file_prefix!r} must be empty or match "
                             "[A-Za-z0-9][A-Za-z0-9_.-]* (at most 64 characters)")
        self.convention = convention
        self.partition = partition
        self.file_name_metadata = bool(file_name_metadata)
        self.file_prefix = file_prefix
        #: human-readable template, e.g. "{root}/{symbol}/{type}/{date}~{source}~{asset_class}{part}{ext}"
        self.template = _template(convention, partition, self.file_name_metadata, file_prefix)
        self._tokens = [t for t in _TOKEN.split(self.template) if t]
        self._regex = re.compile(self._build_regex())

    def _ident(self) -> tuple[str, str, bool, str]:
        return (self.convention, self.partition, self.file_name_metadata, self.file_prefix)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self._ident() == other._ident()

    def __hash__(self) -> int:
        return hash(self._ident())

    def __repr__(self) -> str:
        return (f"Layout({self.convention!r}, {self.partition!r}, "
                f"file_name_metadata={self.file_name_metadata}, file_prefix={self.file_prefix!r})")

    # ---- key -> path

    def relpath(self, key: PartitionKey, *, codec: str = "none", part: int = 1,
                checksum6: str | None = None, tier: str = "hot") -> str:
        """Relative POSIX path of the file holding ``key`` (``{root}/...``; ``{tier}/{root}/...``
        for the warm and cold tiers).

        ``checksum6`` (6 lowercase hex digits) is written only with ``file_name_metadata``; without
        it the argument is ignored, so callers may pass it unconditionally.

        :raises ValueError: an unknown root, type or codec, an empty symbol/source/asset class, a
            period label that does not fit the partition, ``part < 1``, a malformed checksum.
        :raises NameTooLongError: a directory or file name would exceed MAX_NAME_BYTES.
        """
        if not isinstance(key, PartitionKey):
            raise ValueError(f"expected a PartitionKey, got {type(key).__name__}")
        if key.root not in TIER_ROOTS:
            raise ValueError(f"unknown tier root {key.root!r}; expected one of {TIER_ROOTS}")
        if key.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {key.type!r}; expected one of {EVENT_TYPES}")
        ext = CODEC_EXT.get(codec)
        if ext is None:
            raise ValueError(f"unknown codec {codec!r}; expected one of {tuple(CODEC_EXT)}")
        if type(part) is not int or part < 1:
            raise ValueError(f"part must be an integer >= 1, got {part!r}")
        if checksum6 is not None and not (isinstance(checksum6, str)
                                          and _CHECKSUM_RE.fullmatch(checksum6)):
            raise ValueError(f"checksum6 must be 6 lowercase hex digits, got {checksum6!r}")
        parse_period_label(key.period, self.partition)  # validates the label
        values = {f: _encode_field(f, getattr(key, f)) for f in _ENCODED_FIELDS}
        values.update(root=key.root, type=key.type, date=key.period, ext=ext,
                      part="" if part == 1 else f".p{part}",
                      checksum=f"_{checksum6}" if checksum6 and self.file_name_metadata else "")
        if self.partition != "None":
            label = key.period
            values.update(year=label[0:4], month=label[5:7], day=label[8:10], hour=label[11:13])
        if tier not in TIER_DIRS:
            raise ValueError(f"unknown tier {tier!r}; expected one of {tuple(TIER_DIRS)}")
        path = "".join(values[t[1:-1]] if t[0] == "{" else t for t in self._tokens)
        if TIER_DIRS[tier]:
            path = f"{TIER_DIRS[tier]}/{path}"
        for name in path.split("/"):
            if len(name) > MAX_NAME_BYTES:  # all ASCII after encoding: characters == bytes
                raise NameTooLongError(f"path component of {len(name)} bytes exceeds "
                                       f"{MAX_NAME_BYTES}: {name[:60]}...")
        return path

    # ---- path -> metadata

    def parse(self, relpath: str) -> FileMeta:
        """Every field of a data file's relative path (inverse of :meth:`relpath`).

        :raises ValueError: naming why, for anything that is not a data file of this layout
            (sidecars, other tier roots, other conventions, non-canonical encodings).
        """
        if not isinstance(relpath, str):
            raise ValueError(f"expected a relative path string, got {type(relpath).__name__}")
        full, tier = relpath, "hot"
        head, _, rest = relpath.partition("/")
        if head and head in _TIER_OF_DIR:
            tier, relpath = _TIER_OF_DIR[head], rest
            head = relpath.split("/", 1)[0]
        if head not in TIER_ROOTS:
            raise ValueError(f"{relpath!r} is not under a tier root {TIER_ROOTS}")
        if not relpath.endswith(tuple(_CODEC_OF_EXT)):
            raise ValueError(f"{relpath!r} is not a data file (extension not one of "
                             f"{tuple(_CODEC_OF_EXT)})")
        match = self._regex.fullmatch(relpath)
        if match is None:
            raise ValueError(f"{relpath!r} does not match {self!r}: expected {self.template}")
        g = match.groupdict()
        if self.partition == "None":
            period = ""
        elif g.get("date") is not None:
            period = g["date"]
        else:
            period = f"{g['year']}-{g['month']}"
            if self.partition != "Monthly":
                period += f"-{g['day']}"
            if self.partition == "Hourly":
                period += f"_{g['hour']}"
        try:
            parse_period_label(period, self.partition)
            key = PartitionKey(root=g["root"], source=decode_component(g["source"]),
                               asset_class=decode_component(g["asset_class"]),
                               symbol=decode_component(g["symbol"]), type=g["type"], period=period)
        except ValueError as exc:
            raise ValueError(f"{relpath!r}: {exc}") from None
        codec = _CODEC_OF_EXT[g["ext"]]
        part = int(g["part"]) if g["part"] else 1
        checksum6 = g.get("checksum")
        canonical = self.relpath(key, codec=codec, part=part, checksum6=checksum6, tier=tier)
        if canonical != full:
            raise ValueError(f"{full!r} is not canonical for {self!r} (expected {canonical!r})")
        return FileMeta(key=key, codec=codec, part=part, checksum6=checksum6, relpath=full, tier=tier)

    # ---- globs

    def globs(self, root: str, type: str, codec: str, tier: str = "hot") -> list[str]:
        """Relative glob patterns (``*``, ``?``; ``*`` never crosses ``/``) matching exactly the
        data files of tier ``root``, event ``type`` and ``codec`` of this layout, all parts and
        open/sealed forms included, and no sidecar, other type or other codec.

        Example: ``Layout("BySymbol", "Daily").globs("live", "Trade", "gzip")`` is
        ``["live/*/Trade/????-??-??~*~*.jsonl.gz"]``.
        """
        if root not in TIER_ROOTS:
            raise ValueError(f"unknown tier root {root!r}; expected one of {TIER_ROOTS}")
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; expected one of {EVENT_TYPES}")
        if codec not in CODEC_EXT:
            raise ValueError(f"unknown codec {codec!r}; expected one of {tuple(CODEC_EXT)}")
        fixed = {"root": root, "type": type, "ext": CODEC_EXT[codec],
                 "date": _LABEL_GLOB[self.partition], "year": "????", "month": "??", "day": "??",
                 "hour": "??"}
        if tier not in TIER_DIRS:
            raise ValueError(f"unknown tier {tier!r}; expected one of {tuple(TIER_DIRS)}")
        pattern = "".join(fixed.get(t[1:-1], "*") if t[0] == "{" else t for t in self._tokens)
        if TIER_DIRS[tier]:
            pattern = f"{TIER_DIRS[tier]}/{pattern}"
        return [re.sub(r"\*+", "*", pattern)]

    # ---- internals

    def _build_regex(self) -> str:
        field_re = {
            "root": "|".join(TIER_ROOTS), "type": "|".join(EVENT_TYPES),
            "source": _COMPONENT_RE, "asset_class": _COMPONENT_RE, "symbol": _COMPONENT_RE,
            "date": _LABEL_RE[self.partition].pattern.replace("(", "(?:")
            if self.partition != "None" else "",
            "year": r"\d{4}", "month": r"\d{2}", "day": r"\d{2}", "hour": r"\d{2}",
            "ext": "|".join(re.escape(e) for e in CODEC_EXT.values()),
        }
        seen: set[str] = set()
        out = []
        for tok in self._tokens:
            if tok[0] != "{":
                out.append(re.escape(tok))
                continue
            name = tok[1:-1]
            if name == "part":
                out.append(r"(?:\.p(?P<part>[1-9][0-9]*))?")
            elif name == "checksum":
                out.append(r"(?:_(?P<checksum>[0-9a-f]{6}))?")
            elif name in seen:
                out.append(f"(?P={name})")
            else:
                seen.add(name)
                out.append(f"(?P<{name}>{field_re[name]})")
        return "".join(out)


def _encode_field(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    return encode_component(value)
