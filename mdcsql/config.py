"""Settings: load, validate and resolve the `Storage` configuration (JSON or TOML).

The document has one top-level object, `Storage`, with PascalCase keys exactly as in the design's
"Configuration Examples". Resolution order for every key: what the user set (file, then
`overrides`) wins; else the profile's value (Research / LowLatency / Archival); else the default.

    settings = load_config("mdcsql.toml", profile="Archival")
    settings.storage.codec            # 'zstd'
    settings.storage.sync.interval_ms # 5
    settings.inactive_keys()          # ['Storage.Quotas']: accepted, not yet active
    settings.explain()                # where each effective value came from

Every problem is a `ConfigError` naming the file, the dotted key, the value given and what is
allowed; several problems are joined with "; ". Enum values match case-insensitively and are
stored canonically as plain strings ("BySymbol", "Daily", "gzip", "batched").
"""

import copy
import datetime as dt
import difflib
import json
import re
import tomllib
import types
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, Field, Strict, StringConstraints, ValidationError

from mdcsql.config_sections import (PENDING_FEATURES, UNION_TAGS, Archive, Backup, Bool, Catalog, Compaction,
                                    Choice, Doc, FreeForm, Int, Integrity, Maintenance, Partitioning,
                                    Policy, Quality, Quotas, Reconciliation, Search, Section,
                                    Source, Tiering, Worm, describe)
from mdcsql.errors import ConfigError

__all__ = [
    "NAMING_CONVENTIONS", "DATE_PARTITIONS", "CODECS", "SYNC_MODES", "PROFILES",
    "COMPRESSION_LEVELS", "PROFILE_PRESETS", "PENDING_FEATURES", "SyncSettings",
    "StorageSettings", "Settings", "Explained", "load_config", "settings_from_dict",
]

NAMING_CONVENTIONS = ("Flat", "BySymbol", "ByDate", "ByType", "BySource", "ByAssetClass",
                      "Hierarchical", "Canonical")
DATE_PARTITIONS = ("None", "Daily", "Hourly", "Monthly")
CODECS = ("gzip", "zstd", "none")
SYNC_MODES = ("none", "batched", "always")
PROFILES = ("Research", "LowLatency", "Archival")
#: codec -> (lowest level, highest level, default level)
COMPRESSION_LEVELS = MappingProxyType({"gzip": (1, 9, 6), "zstd": (1, 22, 3)})


# Also what mdcsql.layout accepts: starts with a letter or digit, at most 64 characters.
_FilePrefix = Annotated[str, Strict(),
                       StringConstraints(pattern=r"^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,63})?$"),
                       Doc("empty, or up to 64 letters, digits, '_' and '-' starting with a "
                           "letter or digit")]


class SyncSettings(Section):
    """Group commit of the write-ahead log: fsync every `interval_ms` or `max_events`."""

    mode: Choice(SYNC_MODES) = "batched"
    interval_ms: Int(ge=1, le=10000, unit="milliseconds") = 5
    max_events: Int(ge=1, unit="events") = 10000


class StorageSettings(Section):
    """The effective `Storage` section. Later-issue sections are None unless configured."""

    naming_convention: Choice(NAMING_CONVENTIONS) = "BySymbol"
    date_partition: Choice(DATE_PARTITIONS) = "Daily"
    retention_days: Int(ge=0, unit="days") | None = None
    max_total_megabytes: Int(gt=0, unit="megabytes") | None = None
    compress: Bool = True
    compression_codec: Choice(CODECS) = "gzip"
    compression_level: Int(unit="gzip 1-9, zstd 1-22") | None = None
    file_prefix: _FilePrefix = ""
    file_name_metadata: Bool = False
    profile: Choice(PROFILES) | None = None
    sync: SyncSettings = Field(default_factory=SyncSettings)
    seal_grace_seconds: Int(ge=0, unit="seconds") = 0
    # Later issues: accepted and validated, reported by Settings.inactive_keys().
    quotas: Quotas | None = None
    policies: dict[str, Policy] | None = None
    tiering: Tiering | None = None
    archive: Archive | None = None
    worm: Worm | None = None
    catalog: Catalog | None = None
    reconciliation: Reconciliation | None = None
    partitioning: Partitioning | None = None
    integrity: Integrity | None = None
    backup: Backup | None = None
    compaction: Compaction | None = None
    sources: dict[str, Source] | None = None
    export: FreeForm | None = None
    scheduling: FreeForm | None = None
    maintenance: Maintenance | None = None
    quality: Quality | None = None
    search: Search | None = None
    sessions: FreeForm | None = None

    @property
    def codec(self) -> str:
        """The codec in effect: 'none' when not compressing."""
        return self.compression_codec if self.compress else "none"


#: active sections that stay absent from the resolved document unless configured (their
#: features apply defaults of their own, documented in docs/configuration.md)
OPTIONAL_SECTIONS = frozenset({"Quotas", "Policies", "Tiering", "Archive", "Worm", "Catalog",
                               "Integrity", "Backup", "Compaction"})


class _Document(Section):
    storage: StorageSettings = Field(default_factory=StorageSettings)


PROFILE_PRESETS: MappingProxyType = MappingProxyType({
    "Research": {"Compress": True, "CompressionCodec": "gzip", "CompressionLevel": 6,
                 "DatePartition": "Daily",
                 "Sync": {"Mode": "batched", "IntervalMs": 5, "MaxEvents": 10000}},
    "LowLatency": {"Compress": False, "CompressionCodec": "none", "DatePartition": "Hourly",
                   "Sync": {"Mode": "batched", "IntervalMs": 10, "MaxEvents": 50000}},
    "Archival": {"Compress": True, "CompressionCodec": "zstd", "CompressionLevel": 19,
                 "DatePartition": "Daily",
                 "Sync": {"Mode": "batched", "IntervalMs": 5, "MaxEvents": 10000},
                 "Tiering": {"Enabled": True, "Tiers": ["hot", "warm", "cold", "archive"]}},
})
_COMPRESSION_KEYS = ("Compress", "CompressionCodec", "CompressionLevel")


class Explained(NamedTuple):
    """One effective setting: dotted key, value, where it came from, whether its feature runs."""

    key: str
    value: Any
    source: str  # "user" | "profile" | "default"
    active: bool


# -- loading --------------------------------------------------------------------------------------

def load_config(path: str | Path | None = None, *, profile: str | None = None,
                overrides: dict | None = None) -> "Settings":
    """Load settings from a `.json` or `.toml` file (or defaults when `path` is None).

    :param profile: Research, LowLatency or Archival; beats `Storage.Profile` in the file.
    :param overrides: user settings applied over the file, nested (`{"Storage": {...}}`) or
        dotted (`{"Sync.IntervalMs": 10}`; the leading `Storage.` may be left out).
    :raises ConfigError: unreadable/malformed file or any bad setting; starts with the file path.
    """
    if path is None:
        return _build({}, profile=profile, overrides=overrides, where=None)
    path = Path(path)
    return _build(_read(path), profile=profile, overrides=overrides, where=str(path), path=path)


def settings_from_dict(doc: dict, *, profile: str | None = None,
                       overrides: dict | None = None) -> "Settings":
    """Settings from an already-parsed document such as `Settings.explicit_dict()`."""
    if not isinstance(doc, dict):
        raise ConfigError(f"config document must be an object with key Storage, "
                          f"got {type(doc).__name__}")
    return _build(copy.deepcopy(doc), profile=profile, overrides=overrides, where=None)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid number here")


def _read(path: Path) -> dict:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConfigError(f"{path}: unsupported config file type {suffix or '(none)'!r}; "
                          f"allowed: .json, .toml")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    if suffix == ".json":
        try:
            doc = json.loads(text, object_pairs_hook=_no_duplicates,
                             parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg}") from None
        except _DuplicateKey as exc:
            raise ConfigError(f"{path}: duplicate key {str(exc)!r} in a JSON object; "
                              f"each key may appear once") from None
        except ValueError as exc:
            raise ConfigError(f"{path}: malformed JSON: {exc}") from None
    else:
        try:
            doc = _iso_dates(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: malformed TOML {_toml_position(exc, text)}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be an object with key Storage, "
                          f"got {type(doc).__name__}")
    return doc


def _toml_position(exc: tomllib.TOMLDecodeError, source: str) -> str:
    text = str(exc)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
    if m:
        return f"at line {m[1]}, column {m[2]}: {text[:m.start()]}"
    m = re.search(r"\s*\(at end of document\)$", text)
    if m:
        lines = source.split("\n")
        return (f"at line {len(lines)}, column {len(lines[-1]) + 1} (end of file): "
                f"{text[:m.start()]}")
    return f": {text}"


def _iso_dates(value: Any) -> Any:
    """TOML dates/times become ISO text, so every document is JSON-serialisable."""
    if isinstance(value, dict):
        return {k: _iso_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso_dates(v) for v in value]
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


def _nest_overrides(overrides: dict) -> dict:
    nested: dict = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        if parts[0] != "Storage":
            parts = ["Storage", *parts]
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"overrides: {key!r} conflicts with another override")
        node[parts[-1]] = _merge(node.get(parts[-1]), copy.deepcopy(value))
    return nested


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            out[key] = _merge(base.get(key), value)
        return out
    return extra


# -- building and resolving -----------------------------------------------------------------------

def _build(doc: dict, *, profile: str | None, overrides: dict | None, where: str | None,
           path: Path | None = None) -> "Settings":
    nested_overrides = _nest_overrides(overrides) if overrides else {}
    doc = _merge(doc, nested_overrides)
    try:
        user = _Document.model_validate(doc)
    except ValidationError as exc:
        _fail([_describe_error(e, nested_overrides) for e in exc.errors(include_url=False)], where)
    explicit = user.model_dump(by_alias=True, mode="json", exclude_unset=True)
    storage_explicit = explicit.setdefault("Storage", {})
    if profile is not None:
        canonical = {p.lower(): p for p in PROFILES}.get(str(profile).lower())
        if canonical is None:
            _fail([_problem("profile (argument)", "unknown profile", profile,
                            ", ".join(PROFILES), _did_you_mean(str(profile), PROFILES))], where)
        storage_explicit["Profile"] = canonical
    effective, sources = _resolve(storage_explicit, where)
    return Settings(StorageSettings.model_validate(effective), explicit=explicit,
                    sources=sources, path=path)


def _resolve(explicit: dict, where: str | None) -> tuple[dict, dict[str, str]]:
    """Effective Storage dict (explicit > profile > default) and each leaf's source."""
    profile = explicit.get("Profile")
    preset = copy.deepcopy(PROFILE_PRESETS.get(profile, {}))
    comp = {k: preset.pop(k) for k in _COMPRESSION_KEYS if k in preset}
    sources = {key: "user" for key in _leaves(explicit, "Storage")}
    effective = copy.deepcopy(explicit)
    _fill(effective, preset, "Storage", sources)

    user_compress = explicit.get("Compress")
    user_codec = explicit.get("CompressionCodec")
    user_level = explicit.get("CompressionLevel")
    problems = []
    if user_compress is False and user_codec not in (None, "none"):
        problems.append(_problem("Storage.CompressionCodec", "contradicts Compress = false",
                                 user_codec, "none, or remove one of the two keys"))
    if user_compress is True and user_codec == "none":
        problems.append(_problem("Storage.CompressionCodec", "contradicts Compress = true",
                                 user_codec, "gzip or zstd, or remove one of the two keys"))
    if user_codec is not None:
        codec, codec_source = user_codec, "user"
    elif user_compress is False:
        codec, codec_source = "none", "user"
    elif comp and not (user_compress and comp["CompressionCodec"] == "none"):
        codec, codec_source = comp["CompressionCodec"], "profile"
    else:
        codec, codec_source = "gzip", "default"
    if codec == "none":
        level, level_source = None, codec_source
        if user_level is not None:
            problems.append(_problem("Storage.CompressionLevel", "has no effect without "
                                     f"compression (codec none, from the {codec_source})",
                                     user_level, "null, or also set CompressionCodec gzip/zstd"))
    elif user_level is not None:
        level, level_source = user_level, "user"
        low, high, _ = COMPRESSION_LEVELS[codec]
        if not low <= user_level <= high:
            why = {"user": "", "default": ", the default codec",
                   "profile": f" from profile {profile}"}[codec_source]
            problems.append(_problem("Storage.CompressionLevel",
                                     f"out of range for codec {codec}{why}", user_level,
                                     f"an integer from {low} to {high}"))
    elif comp.get("CompressionCodec") == codec and "CompressionLevel" in comp:
        level, level_source = comp["CompressionLevel"], "profile"
    else:
        level, level_source = COMPRESSION_LEVELS[codec][2], "default"
    if problems:
        _fail(problems, where)
    effective.update(Compress=codec != "none", CompressionCodec=codec, CompressionLevel=level)
    sources.setdefault("Storage.Compress", codec_source)
    sources["Storage.CompressionCodec"] = codec_source
    sources["Storage.CompressionLevel"] = level_source
    return effective, sources


def _fill(target: dict, preset: dict, prefix: str, sources: dict[str, str]) -> None:
    """Copy preset leaves the user did not set into target, recording them as 'profile'."""
    for key, value in preset.items():
        if key not in target:
            target[key] = copy.deepcopy(value)
            for leaf in _leaves({key: value}, prefix):
                sources[leaf] = "profile"
        elif isinstance(value, dict) and isinstance(target[key], dict):
            _fill(target[key], value, f"{prefix}.{key}", sources)


def _leaves(doc: dict, prefix: str) -> list[str]:
    out = []
    for key, value in doc.items():
        path = f"{prefix}.{key}"
        out.extend(_leaves(value, path) if isinstance(value, dict) and value else [path])
    return out


def _leaf_items(doc: dict, prefix: str) -> list[tuple[str, Any]]:
    out = []
    for key, value in doc.items():
        path = f"{prefix}.{key}"
        out.extend(_leaf_items(value, path) if isinstance(value, dict) and value
                   else [(path, value)])
    return out


# -- error messages -------------------------------------------------------------------------------

def _fail(problems: list[str], where: str | None) -> None:
    message = "; ".join(problems)
    error = ConfigError(f"{where}: {message}" if where else message)
    error.problems, error.file = problems, where
    raise error


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(key: str, problem: str, value: Any, allowed: str, hint: str = "") -> str:
    return f"{key}: {problem} (got {_show(value)}). Allowed: {allowed}.{hint}"


def _did_you_mean(given: str, choices: tuple[str, ...] | list[str]) -> str:
    norm = {re.sub(r"[_\-\s]", "", c.lower()): c for c in choices}
    match = difflib.get_close_matches(re.sub(r"[_\-\s]", "", str(given).lower()), list(norm),
                                      n=1, cutoff=0.6)
    return f" Did you mean {norm[match[0]]!r}?" if match else ""


def _dotted(loc: tuple) -> str:
    """('Storage', 'Tiering', 'Tiers', 1) -> 'Storage.Tiering.Tiers[1]'; odd names JSON-quoted."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = part if re.fullmatch(r"[\w-]+", str(part), re.ASCII) else json.dumps(part)
        text += f".{name}" if text else name
    return text


def _navigable(tp: Any) -> Any:
    """Strip Annotated/Optional; of a union of a value and an object, keep the object."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(_navigable(a), type)
                      and issubclass(_navigable(a), BaseModel)]
            tp = (models or args)[0] if len(args) > 1 else args[0]
        else:
            return tp


def _annotation_at(loc: tuple) -> Any:
    """The annotation of the value at `loc`, walking models, dicts and lists from the top."""
    tp: Any = _Document
    for part in loc:
        nav = _navigable(tp)
        if isinstance(nav, type) and issubclass(nav, BaseModel):
            fields = {f.alias or n: f for n, f in nav.model_fields.items()}
            if part not in fields:
                return None
            field = fields[part]  # pydantic moves a field's top-level Annotated extras to metadata
            tp = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        elif get_origin(nav) in (list, dict):
            tp = get_args(nav)[-1]
        else:
            return None
    return tp


def _describe_error(err: dict, overrides: dict) -> str:
    loc = tuple(p for p in err["loc"] if p not in UNION_TAGS)
    key, kind, value = _dotted(loc), err["type"], err.get("input")
    from_overrides = " (set by overrides)" if _contains(overrides, loc) else ""
    if kind == "extra_forbidden":
        parent = _navigable(_annotation_at(loc[:-1]))
        valid = ([f.alias or n for n, f in parent.model_fields.items()]
                 if isinstance(parent, type) and issubclass(parent, BaseModel) else [])
        where = _dotted(loc[:-1]) or "the top level"
        hint = _did_you_mean(loc[-1], valid)
        if not loc[:-1] and loc[-1] in valid + [f.alias for f in
                                                StorageSettings.model_fields.values()]:
            hint = f" Did you mean 'Storage.{loc[-1]}'? Every setting goes inside Storage."
        return _problem(key, "unknown key", value, f"keys of {where}: {', '.join(valid)}",
                        hint) + from_overrides
    if loc[-1:] == ("[key]",):
        return _problem(_dotted(loc[:-1]), "key is not a string", value, "text keys")
    if kind == "choice":
        allowed = err["ctx"]["allowed"]
        hint = _did_you_mean(value, allowed) if isinstance(value, str) else ""
        return _problem(key, "unknown value", value, ", ".join(allowed), hint) + from_overrides
    if kind == "rule":
        return f"{key}: {err['msg']}.{from_overrides}"
    annotation = _annotation_at(loc)
    allowed = describe(annotation) if annotation is not None else err["msg"]
    if kind == "missing":
        return f"{key}: required key missing. Allowed: {allowed}.{from_overrides}"
    if kind.endswith(("_type", "_parsing")) or kind in ("tier", "union_tag_invalid"):
        problem = "wrong type"
    elif kind.startswith(("greater_than", "less_than")):
        problem = "out of range"
    elif kind in ("format", "string_pattern_mismatch"):
        problem = "invalid format"
    else:
        problem = "invalid value"
    return _problem(key, problem, value, allowed) + from_overrides


def _contains(doc: Any, loc: tuple) -> bool:
    for part in loc:
        if not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return bool(loc)


# -- the result -----------------------------------------------------------------------------------

class Settings:
    """Resolved settings: typed access via `.storage`, plus where every value came from."""

    def __init__(self, storage: StorageSettings, *, explicit: dict, sources: dict[str, str],
                 path: Path | None = None) -> None:
        self.storage = storage
        self.path = path
        self._explicit = explicit
        self._sources = sources

    @property
    def profile(self) -> str | None:
        """The profile in effect (argument beats file), or None."""
        return self.storage.profile

    def to_dict(self) -> dict:
        """The resolved document: every active key, plus the later-issue sections that are set."""
        full = self.storage.model_dump(by_alias=True, mode="json")
        partial = self.storage.model_dump(by_alias=True, mode="json", exclude_unset=True)
        out = {}
        for name, field in StorageSettings.model_fields.items():
            if field.alias in OPTIONAL_SECTIONS:
                if field.alias in partial:          # only what was configured, as configured
                    out[field.alias] = partial[field.alias]
            elif field.alias not in PENDING_FEATURES:
                out[field.alias] = full[field.alias]
            elif field.alias in partial:
                out[field.alias] = partial[field.alias]
        return {"Storage": out}

    def explicit_dict(self) -> dict:
        """Only what the user set (file, overrides, profile argument), canonically spelled."""
        return copy.deepcopy(self._explicit)

    def inactive_keys(self) -> list[str]:
        """Dotted paths of explicitly-set sections whose feature is not active yet."""
        return [f"Storage.{key}" for key in PENDING_FEATURES if key in self._explicit["Storage"]]

    def explain(self) -> list[Explained]:
        """Each effective leaf key with its value and source ("user", "profile", "default")."""
        return [Explained(key, value, self._source(key), key.split(".")[1] not in PENDING_FEATURES)
                for key, value in _leaf_items(self.to_dict()["Storage"], "Storage")]

    def _source(self, key: str) -> str:
        return self._sources.get(key, "default")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        s = self.storage
        return (f"Settings(profile={self.profile!r}, naming={s.naming_convention!r}, "
                f"partition={s.date_partition!r}, codec={s.codec!r}, "
                f"inactive={self.inactive_keys()!r})")
