"""Export profiles: named, validated bundles of format + options, stored as JSON files.

The four profiles of the design ("Analysis-Ready Export Profiles": PythonPandas,
QuantConnectLean, TimescaleDB, Research) ship as `exports/profiles/<Name>.json` with the design's
keys and defaults verbatim. A user profile is a file of the same form, either beside them or in
`<archive root>/_catalog/export_profiles/<Name>.json` (that one wins for that archive). It may
start from another profile with `"extends": "PythonPandas"` and may add `"description"` and
`"transforms"` (see mdcsql.export.transforms).

    profile = load_profile("PythonPandas")
    profile.format              # 'parquet'
    profile.export_format       # 'Parquet' (the name in the format registry)
    profile.options.partition_by  # ['date']

Keys are snake_case exactly as in the design; an unknown key or value is a ConfigError naming the
file and the key, with a did-you-mean suggestion.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from mdcsql.config_sections import Bool, Choice, Doc, Int, Str, describe
from mdcsql.errors import ConfigError, NotFoundError

__all__ = ["BUILTIN_DIR", "BUILTIN_PROFILES", "FORMATS", "Profile", "ProfileInfo",
           "load_profile", "list_profiles", "profile_from_dict", "profile_dirs"]

#: the repository's `exports/profiles/` (the design's profiles and any user profiles beside them)
BUILTIN_DIR = Path(__file__).resolve().parents[2] / "exports" / "profiles"
BUILTIN_PROFILES = ("PythonPandas", "QuantConnectLean", "TimescaleDB", "Research")
#: profile folder inside an archive, relative to its root
ARCHIVE_PROFILE_DIR = Path("_catalog") / "export_profiles"

#: the design's profile format names (snake_case) -> ExportFormat names of the format registry
FORMATS = {
    "json_lines": "JsonLines", "json_lines_compressed": "JsonLinesCompressed",
    "parquet": "Parquet", "parquet_partitioned": "ParquetPartitioned", "arrow": "Arrow",
    "csv": "Csv", "csv_compressed": "CsvCompressed", "lean_zip": "LeanZip",
    "feather_v2": "FeatherV2", "sql_insert": "SqlInsert", "postgres_copy": "PostgresCopy",
    "parquet_delta": "ParquetDelta",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _squash(text: str) -> str:
    return re.sub(r"[_\-\s]", "", text.lower())


def _format_name(value: Any) -> Any:
    """'parquet_delta', 'ParquetDelta' and 'parquet-delta' all mean the same format."""
    if isinstance(value, str):
        for snake in FORMATS:
            if _squash(value) == _squash(snake):
                return snake
    raise PydanticCustomError("choice", "unknown value", {"allowed": tuple(FORMATS)})


FormatName = Annotated[str, BeforeValidator(_format_name),
                       Doc("one of: " + ", ".join(FORMATS) + " (or its ExportFormat name)")]
PartitionKey = Choice(("date", "symbol", "type", "source"))
_INTERVAL = re.compile(r"^\d+ (microsecond|millisecond|second|minute|hour|day|week|month|year)s?$")


def _pg_interval(value: Any) -> Any:
    if isinstance(value, str) and _INTERVAL.match(value.strip().lower()):
        return value.strip().lower()
    raise PydanticCustomError("format", "not a PostgreSQL interval", {})


PgInterval = Annotated[str, BeforeValidator(_pg_interval),
                       Doc('a PostgreSQL interval such as "1 day", "6 hours", "1 week"')]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ParquetOptions(_Model):
    """parquet, parquet_partitioned, parquet_delta."""

    engine: Choice(("pyarrow",)) = "pyarrow"
    compression: Choice(("snappy", "zstd", "gzip", "lz4", "brotli", "none")) = "snappy"
    timestamp_as: Choice(("datetime64[ns]", "datetime64[us]", "datetime64[ms]", "int64")) = \
        "datetime64[ns]"
    include_index: Bool = False
    partition_by: list[PartitionKey] = Field(default_factory=list)
    row_group_size: Int(ge=1, unit="rows") = 100000
    include_statistics: Bool = True
    include_metadata: Bool = True
    generate_catalog: Bool = False


class ArrowOptions(_Model):
    """arrow (IPC file), feather_v2."""

    compression: Choice(("lz4", "zstd", "none")) = "lz4"
    include_metadata: Bool = True


class TextOptions(_Model):
    """csv, csv_compressed, json_lines, json_lines_compressed."""

    compression: Choice(("gzip", "zstd", "none")) | None = None
    header: Bool = True
    partition_by: list[PartitionKey] = Field(default_factory=list)


class LeanOptions(_Model):
    """lean_zip: QuantConnect Lean's own folder layout."""

    resolution: Choice(("tick", "second", "minute", "hour", "daily")) = "tick"
    market: Str = "usa"
    security_type: Choice(("equity", "crypto", "forex", "future", "option")) = "equity"
    data_type: list[Choice(("trade", "quote"))] = Field(default_factory=lambda: ["trade", "quote"])
    include_auxiliary: Bool = True


class PostgresOptions(_Model):
    """postgres_copy, sql_insert (TimescaleDB keys are ignored by plain PostgreSQL loads)."""

    include_ddl: Bool = True
    include_hypertable: Bool = False
    chunk_interval: PgInterval = "1 day"
    compression_policy: Bool = False
    include_indexes: Bool = True
    rows_per_insert: Int(ge=1, unit="rows per INSERT statement (sql_insert)") = 1000


OPTIONS_BY_FORMAT: dict[str, type[_Model]] = {
    "parquet": ParquetOptions, "parquet_partitioned": ParquetOptions,
    "parquet_delta": ParquetOptions, "arrow": ArrowOptions, "feather_v2": ArrowOptions,
    "csv": TextOptions, "csv_compressed": TextOptions, "json_lines": TextOptions,
    "json_lines_compressed": TextOptions, "lean_zip": LeanOptions,
    "postgres_copy": PostgresOptions, "sql_insert": PostgresOptions,
}
Options = Union[ParquetOptions, ArrowOptions, TextOptions, LeanOptions, PostgresOptions]


class PostExport(_Model):
    """Files written beside the data (PythonPandas): loader script, requirements, notebook."""

    generate_loader_script: Bool = False
    generate_requirements: Bool = False
    include_sample_notebook: Bool = False


class _Head(_Model):
    """The profile document minus `options`, whose model depends on `format`."""

    format: FormatName
    options: dict[str, Any] = Field(default_factory=dict)
    post_export: PostExport = Field(default_factory=PostExport)
    description: Str | None = None
    extends: Str | None = None
    transforms: list[Union[Str, dict[str, Any]]] = Field(default_factory=list)


@dataclass(frozen=True)
class Profile:
    """A validated profile. `document` is the merged JSON as written (for export metadata)."""

    name: str
    format: str
    options: Options
    post_export: PostExport
    description: str | None = None
    transforms: tuple = ()
    path: str | None = None
    document: dict = field(default_factory=dict, compare=False)

    @property
    def export_format(self) -> str:
        """The format registry's name, e.g. 'ParquetDelta'."""
        return FORMATS[self.format]

    def to_dict(self) -> dict:
        """Every key with its effective value (defaults filled in)."""
        out = {"format": self.format, "options": self.options.model_dump(),
               "post_export": self.post_export.model_dump()}
        if self.description:
            out["description"] = self.description
        if self.transforms:
            out["transforms"] = list(self.transforms)
        return out

    def pipeline(self):
        """The profile's transforms as a mdcsql.export.transforms.Pipeline (possibly empty)."""
        from mdcsql.export.transforms import parse_pipeline
        return parse_pipeline(list(self.transforms))


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    format: str
    origin: str  # "builtin" | "user" | "archive"
    path: str
    description: str | None = None


# -- loading --------------------------------------------------------------------------------------

def profile_dirs(root: str | Path | None = None) -> list[tuple[str, Path]]:
    """Folders searched, most specific first: the archive's, then `exports/profiles/`."""
    dirs = []
    if root is not None:
        dirs.append(("archive", Path(root) / ARCHIVE_PROFILE_DIR))
    dirs.append(("builtin", BUILTIN_DIR))
    return dirs


def _find(name: str, root: str | Path | None) -> Path:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"invalid profile name {name!r}: up to 64 letters, digits, '_' and '-'")
    for _, folder in profile_dirs(root):
        path = folder / f"{name}.json"
        if path.is_file():
            return path
    known = [p.name for p in list_profiles(root)]
    lowered = {k.lower(): k for k in known}
    hint = (f" Did you mean {lowered[name.lower()]!r}?" if name.lower() in lowered
            else _did_you_mean(name, known))
    raise NotFoundError(f"no export profile {name!r} (known: {', '.join(known) or 'none'}).{hint}")


def _read(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{path}: profile file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read profile: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a profile must be a JSON object, got {type(doc).__name__}")
    return doc


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value)
        return out
    return over


def _resolve_extends(doc: dict, name: str, root, seen: tuple[str, ...]) -> dict:
    parent = doc.get("extends")
    if parent is None:
        return doc
    if not isinstance(parent, str):
        raise ConfigError(f"profile {name}: extends must be a profile name, got {parent!r}")
    if parent in seen or parent == name:
        raise ConfigError(f"profile {name}: extends forms a cycle: {' -> '.join(seen + (parent,))}")
    base = _resolve_extends(_read(_find(parent, root if parent != name else None)), parent, root,
                            seen + (parent,))
    if doc.get("format") not in (None, base.get("format")):
        base = {k: v for k, v in base.items() if k != "options"}  # other format: options differ
    merged = _merge(base, {k: v for k, v in doc.items() if k != "extends"})
    merged.pop("extends", None)
    return merged


def load_profile(name: str, root: str | Path | None = None) -> Profile:
    """The profile called `name`: the archive's own (`root`) if it has one, else `exports/`.

    :raises NotFoundError: no such profile (with a did-you-mean).
    :raises ConfigError: malformed file, unknown key or value (file, key, what is allowed).
    """
    path = _find(name, root)
    doc = _resolve_extends(_read(path), name, root, (name,))
    return profile_from_dict(name, doc, where=str(path))


def profile_from_dict(name: str, doc: dict, *, where: str | None = None) -> Profile:
    """Validate a profile document (the JSON object of a profile file)."""
    where = where or f"profile {name}"
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: a profile must be a JSON object, got {type(doc).__name__}")
    head = _validate(_Head, doc, where, ())
    model = OPTIONS_BY_FORMAT[head.format]
    options = _validate(model, head.options, where, ("options",), fmt=head.format)
    if head.transforms:
        from mdcsql.export.transforms import parse_pipeline
        try:
            parse_pipeline(list(head.transforms))
        except ConfigError as exc:
            raise ConfigError(f"{where}: transforms: {exc}") from None
    return Profile(name=name, format=head.format, options=options, post_export=head.post_export,
                   description=head.description, transforms=tuple(head.transforms),
                   path=where if Path(where).suffix == ".json" else None, document=doc)


def list_profiles(root: str | Path | None = None) -> list[ProfileInfo]:
    """Every profile by name (an archive's own shadow those of `exports/`), sorted by name.

    A file that does not validate is listed with format '?' and its error as description, so
    one bad file does not hide the others.
    """
    found: dict[str, ProfileInfo] = {}
    for origin, folder in profile_dirs(root):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            name = path.stem
            if name in found or not _NAME.match(name):
                continue
            kind = origin if origin == "archive" or name in BUILTIN_PROFILES else "user"
            try:
                profile = load_profile(name, root)
                found[name] = ProfileInfo(name, profile.format, kind, str(path),
                                          profile.description)
            except (ConfigError, NotFoundError) as exc:
                found[name] = ProfileInfo(name, "?", kind, str(path), f"invalid: {exc}")
    return [found[k] for k in sorted(found, key=str.lower)]


# -- errors ---------------------------------------------------------------------------------------

def _did_you_mean(given: str, choices) -> str:
    norm = {_squash(c): c for c in choices}
    match = difflib.get_close_matches(_squash(str(given)), list(norm), n=1, cutoff=0.6)
    return f" Did you mean {norm[match[0]]!r}?" if match else ""


def _validate(model: type[BaseModel], doc: Any, where: str, prefix: tuple, fmt: str | None = None):
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = [_problem(model, err, prefix, fmt) for err in exc.errors()]
        raise ConfigError(f"{where}: " + "; ".join(problems)) from None


def _problem(model: type[BaseModel], err: dict, prefix: tuple, fmt: str | None) -> str:
    loc = prefix + tuple(err["loc"])
    key = ".".join(str(p) for p in loc if not isinstance(p, int)) or "(profile)"
    given = err.get("input")
    if err["type"] == "extra_forbidden":
        fields = list(model.model_fields)
        scope = f" for format {fmt}" if fmt else ""
        return (f"{key}: unknown key{scope}. Allowed: {', '.join(fields)}."
                f"{_did_you_mean(str(loc[-1]), fields)}")
    if err["type"] == "missing":
        return f"{key}: required key missing"
    annotation = None
    top = err["loc"][0] if err["loc"] else None
    if isinstance(top, str) and top in model.model_fields:
        annotation = model.model_fields[top].rebuild_annotation()
    allowed = describe(annotation) if annotation is not None else err["msg"]
    hint = ""
    if err["type"] == "choice" and isinstance(given, str):
        hint = _did_you_mean(given, (err.get("ctx") or {}).get("allowed", ()))
    shown = json.dumps(given, default=str)
    return f"{key}: invalid value (got {shown}). Allowed: {allowed}.{hint}"
