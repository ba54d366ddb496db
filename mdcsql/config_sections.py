"""Building blocks of the settings models, and the sections of later features.

`mdcsql.config` holds the active storage settings, loading, profiles and error messages. This
module holds what those models are made of:

- small annotated types (`Int`, `Number`, `Bool`, `Str`, `Choice`, `Duration`, `Cron`,
  `CodecSpec`) that are strict (no "7" for 7, no 1 for true), match enum values
  case-insensitively but store them canonically, and carry a `Doc` text saying what is allowed —
  the same text appears in error messages and in docs/configuration.md;
- `describe()`, which renders that text for any field annotation;
- the sections of later issues (`Quotas`, `Policies`, `Tiering`, ...), validated as far as the
  design document (spec/storage-design.md) shows their shape, in PascalCase like its
  "Configuration Examples". Sections the design gives no shape for are free-form objects.

All keys are PascalCase (`alias_generator=to_pascal`); Python attributes are snake_case.
"""

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types as at
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Strict, Tag,
                      model_validator)
from pydantic.alias_generators import to_pascal
from pydantic_core import PydanticCustomError


class Doc(str):
    """What a field allows, in words; found in an annotation's metadata by `describe()`."""


class Section(BaseModel):
    """Base of every settings object: PascalCase keys only, unknown keys rejected, immutable."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_pascal, populate_by_name=False,
                              frozen=True, strict=True)


# -- annotated value types ------------------------------------------------------------------------

def _range_text(ge: float | None, le: float | None, gt: float | None, lt: float | None) -> str:
    if ge is not None and le is not None:
        return f" from {ge} to {le}"
    parts = []
    if ge is not None:
        parts.append(f"≥ {ge}")
    if gt is not None:
        parts.append(f"> {gt}")
    if le is not None:
        parts.append(f"≤ {le}")
    if lt is not None:
        parts.append(f"< {lt}")
    return (" " + " and ".join(parts)) if parts else ""


def _numeric(base: type, noun: str, ge=None, le=None, gt=None, lt=None, unit: str = "") -> Any:
    meta: list[Any] = [Strict()]
    for cls, bound in ((at.Ge, ge), (at.Le, le), (at.Gt, gt), (at.Lt, lt)):
        if bound is not None:
            meta.append(cls(bound))
    text = noun + _range_text(ge, le, gt, lt) + (f" ({unit})" if unit else "")
    return Annotated[(base, *meta, Doc(text))]


def Int(*, ge: int | None = None, le: int | None = None, gt: int | None = None,
        unit: str = "") -> Any:
    """A strict integer (true, 7.0 and "7" are refused) with optional bounds."""
    return _numeric(int, "an integer", ge, le, gt, None, unit)


def Number(*, ge: float | None = None, le: float | None = None, gt: float | None = None,
           lt: float | None = None, unit: str = "") -> Any:
    """A strict number (integers accepted, text and booleans refused) with optional bounds."""
    return _numeric(float, "a number", ge, le, gt, lt, unit)


Bool = Annotated[bool, Strict(), Doc("true or false")]
Str = Annotated[str, Strict(), Doc("a string")]
StrList = Annotated[list[Str], Doc("a list of strings")]


def Choice(values: tuple[str, ...]) -> Any:
    """One of `values`, matched case-insensitively and stored in its canonical spelling."""
    lookup = {v.lower(): v for v in values}

    def canonical(value: Any) -> Any:
        if isinstance(value, str) and value.lower() in lookup:
            return lookup[value.lower()]
        raise PydanticCustomError("choice", "unknown value", {"allowed": values})

    return Annotated[str, BeforeValidator(canonical), Doc("one of: " + ", ".join(values))]


_DURATION = re.compile(r"^\d+(ms|s|m|h|d|w)$")
DURATION_DOC = ('a duration: whole seconds as an integer, or text such as "500ms", "30s", "15m", '
                '"24h", "7d", "2w"')


def _duration(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DURATION.match(value.strip().lower()):
        return value.strip().lower()
    raise PydanticCustomError("format", "not a duration", {})


Duration = Annotated[Union[int, str], BeforeValidator(_duration), Doc(DURATION_DOC)]

_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?\-]+$")


def _cron(value: Any) -> Any:
    if isinstance(value, str):
        fields = value.split()
        if len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields):
            return " ".join(fields)
    raise PydanticCustomError("format", "not a 5-field cron expression", {})


Cron = Annotated[str, BeforeValidator(_cron),
                 Doc('a 5-field cron expression (minute hour day month weekday), e.g. "0 2 * * *"')]

_CODEC_SPEC = re.compile(r"^(none|lz4|snappy|gzip|zstd|brotli)(-(max|\d{1,2}))?$")


def _codec_spec(value: Any) -> Any:
    if isinstance(value, str) and _CODEC_SPEC.match(value.strip().lower()):
        return value.strip().lower()
    raise PydanticCustomError("format", "not a codec", {})


CodecSpec = Annotated[str, BeforeValidator(_codec_spec),
                      Doc('a codec: none, lz4, snappy, gzip, zstd or brotli, optionally with a '
                          'level ("gzip-6", "zstd-19", "zstd-max")')]


def rule_error(message: str) -> PydanticCustomError:
    """A cross-field rule broken inside a section; reported as '<section path>: <message>'."""
    return PydanticCustomError("rule", message, {})


def describe(annotation: Any) -> str:
    """What an annotation allows, in words (for error messages and the docs)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        docs = [m for m in meta if isinstance(m, Doc)]
        return str(docs[-1]) if docs else describe(base)
    if origin in (Union, types.UnionType):
        args = get_args(annotation)
        real = [a for a in args if a is not type(None)]
        text = " or ".join(describe(a) for a in real)
        return text + ", or null" if len(real) < len(args) else text
    if origin is list:
        return "a list, each " + describe(get_args(annotation)[0])
    if origin is dict:
        value = get_args(annotation)[1]
        if value is Any:
            return "an object (free-form)"
        return "an object mapping names to " + describe(value)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        keys = ", ".join(f.alias or n for n, f in annotation.model_fields.items())
        return f"an object with keys {keys}"
    if annotation is bool:
        return "true or false"
    if annotation is str:
        return "a string"
    if annotation is int:
        return "an integer"
    return "any value"


FreeForm = Annotated[dict[str, Any], Doc("an object (free-form until its feature is built)")]

# -- Capacity Limits & Quotas ---------------------------------------------------------------------

QUOTA_ENFORCEMENTS = ("Warn", "SoftLimit", "HardLimit", "DropOldest")


class Quota(Section):
    max_bytes: Int(gt=0, unit="bytes") | None = None
    max_files: Int(gt=0) | None = None
    max_events_per_day: Int(gt=0) | None = None
    enforcement: Choice(QUOTA_ENFORCEMENTS) | None = None


class DynamicQuota(Section):
    enabled: Bool | None = None
    evaluation_period: Duration | None = None
    min_reserve_pct: Number(ge=0, le=100) | None = None
    overprovision_factor: Number(ge=0) | None = None
    steal_from_inactive: Bool | None = None


class Quotas(Section):
    global_: Quota | None = Field(None, alias="Global")
    per_source: dict[str, Quota] | None = None
    per_asset_class: dict[str, Quota] | None = None
    per_symbol: dict[str, Quota] | None = None
    per_event_type: dict[str, Quota] | None = None
    dynamic: DynamicQuota | None = None


# -- Storage Policies -----------------------------------------------------------------------------

CLASSIFICATIONS = ("Critical", "Standard", "Transient", "Derived")
ARCHIVE_REASONS = ("Regulatory", "Compliance", "Research", "Legal", "Historical")


class PolicyCompression(Section):
    hot: CodecSpec | None = None
    warm: CodecSpec | None = None
    cold: CodecSpec | None = None
    archive: CodecSpec | None = None


class Integrity(Section):
    validate_on_write: Bool | None = None
    checksum_on_write: Bool | None = None
    verify_on_read: Bool | None = None
    max_sequence_gap: Int(ge=0) | None = None
    stale_data_threshold: Duration | None = None
    enforce_monotonicity: Bool | None = None


class Policy(Section):
    """One event type's lifecycle (design: "Tiered Retention Policies")."""

    classification: Choice(CLASSIFICATIONS) | None = None
    hot_tier_days: Int(ge=0, unit="days") | None = None
    warm_tier_days: Int(ge=0, unit="days") | None = None
    cold_tier_days: Int(ge=0, unit="days") | None = None
    archive_tier: Choice(("perpetual",)) | None = None
    archive_reason: Choice(ARCHIVE_REASONS) | None = None
    retention_days: Int(ge=0, unit="days; never applied to Critical data") | None = None
    compression: PolicyCompression | None = None
    integrity: Integrity | None = None


class BackupTarget(Section):
    type: Choice(("local", "s3"))
    path: Str | None = None
    bucket: Str | None = None
    region: Str | None = None
    storage_class: Str | None = None

    @model_validator(mode="after")
    def _target_complete(self) -> "BackupTarget":
        if self.type == "local" and not self.path:
            raise rule_error("a local backup target needs Path")
        if self.type == "s3" and not self.bucket:
            raise rule_error("an s3 backup target needs Bucket")
        return self


class Backup(Section):
    enabled: Bool | None = None
    schedule: Cron | None = None
    retention_backups: Int(ge=0) | None = None
    targets: list[BackupTarget] | None = None
    include_patterns: StrList | None = None
    exclude_patterns: StrList | None = None


# -- Tiered Storage -------------------------------------------------------------------------------

TIER_NAMES = ("hot", "warm", "cold", "archive", "glacier")
TIER_FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "parquet")


class Tier(Section):
    name: Choice(TIER_NAMES)
    path: Str | None = None
    max_age_days: Int(ge=0, unit="days") | None = None
    max_size_gb: Number(gt=0, unit="GB") | None = None
    format: Choice(TIER_FORMATS) | None = None
    compression: CodecSpec | None = None
    storage_class: Str | None = None


def _tier_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "<name>"
    return "<object>" if isinstance(value, (dict, Tier)) else None


TierEntry = Annotated[
    Union[Annotated[Choice(TIER_NAMES), Tag("<name>")], Annotated[Tier, Tag("<object>")]],
    Discriminator(_tier_kind, custom_error_type="tier",
                  custom_error_message="not a tier name or tier object"),
    Doc("a tier name (" + ", ".join(TIER_NAMES) + ") or an object with keys "
        + ", ".join(f.alias for f in Tier.model_fields.values())),
]
#: Tags of tagged unions; they appear in pydantic error locations and are dropped from key paths.
UNION_TAGS = frozenset({"<name>", "<object>"})


class Tiering(Section):
    enabled: Bool | None = None
    tiers: list[TierEntry] | None = None
    migration_schedule: Cron | None = None
    parallel_migrations: Int(ge=1) | None = None

    @model_validator(mode="after")
    def _unique_tiers(self) -> "Tiering":
        names = [t if isinstance(t, str) else t.name for t in self.tiers or ()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise rule_error(f"tier listed more than once in Tiers: {', '.join(dupes)}")
        return self


# -- Perpetual Data Management --------------------------------------------------------------------

class ArchiveFormat(Section):
    format: Choice(("parquet", "orc", "avro")) | None = None
    compression: Choice(("zstd", "snappy", "brotli")) | None = None
    compression_level: Int(ge=1) | None = None
    enable_bloom_filters: Bool | None = None
    enable_statistics: Bool | None = None
    partition_columns: StrList | None = None
    row_group_size: Int(ge=1, unit="rows, design default 100000") | None = None


class Archive(Section):
    enabled: Bool | None = None
    worm: Bool | None = None
    reason: Choice(ARCHIVE_REASONS) | None = None
    description: Str | None = None
    immutable: Bool | None = None
    requires_encryption: Bool | None = None
    min_retention_years: Int(ge=0, unit="years") | None = None
    approvers_for_delete: StrList | None = None
    format: ArchiveFormat | None = None


class Worm(Section):
    enabled: Bool | None = None
    lock_delay: Duration | None = None
    allow_extend: Bool | None = None
    compliance_mode: Choice(("governance", "compliance")) | None = None


class Catalog(Section):
    enabled: Bool | None = None
    sign_manifests: Bool | None = None
    signing_key_env: Str | None = None     # name of the environment variable holding the HMAC key
    signing_key_file: Str | None = None    # or a file holding it (relative to the archive root)


# -- File Compaction & Defragmentation ------------------------------------------------------------

class Compaction(Section):
    """The design's DefragOptions, plus the split threshold of SplitAsync."""

    enabled: Bool | None = None
    min_file_size_bytes: Int(ge=0, unit="bytes") | None = None
    max_files_per_merge: Int(ge=2) | None = None
    preserve_originals: Bool | None = None
    target_compression: CodecSpec | None = None
    max_file_age: Duration | None = None
    max_file_bytes: Int(gt=0, unit="bytes; larger files are split") | None = None


# -- Multi-Source Data Organization ---------------------------------------------------------------

class Source(Section):
    id: Str | None = None
    name: Str | None = None
    type: Choice(("live", "historical")) | None = None
    priority: Int(ge=0) | None = None
    asset_classes: StrList | None = None
    data_types: StrList | None = None
    latency_ms: Number(ge=0, unit="ms") | None = None
    reliability: Number(ge=0, le=1) | None = None
    cost_per_event: Number(ge=0) | None = None
    enabled: Bool | None = None


class Reconciliation(Section):
    enabled: Bool | None = None
    sources: StrList | None = None
    window: Duration | None = None
    price_tolerance: Number(ge=0) | None = None
    volume_tolerance: Int(ge=0) | None = None
    generate_discrepancy_report: Bool | None = None
    report_path: Str | None = None


# -- Date Partitioning Strategies -----------------------------------------------------------------

PARTITION_DIMENSIONS = ("Date", "Symbol", "EventType", "Source", "AssetClass", "Exchange")


class AdaptivePartitioning(Section):
    events_per_hour_threshold: Int(ge=1, unit="design default 100000") | None = None
    events_per_day_threshold: Int(ge=1, unit="design default 50000") | None = None
    events_per_month_threshold: Int(ge=1, unit="design default 10000") | None = None


class TradingCalendarPartitioning(Section):
    exchange: Str | None = None
    skip_non_trading_days: Bool | None = None
    separate_pre_market: Bool | None = None
    separate_after_hours: Bool | None = None
    market_time_zone: Str | None = None


class RollingPartitioning(Section):
    window_size: Duration | None = None
    window_count: Int(ge=1) | None = None
    compact_on_rotation: Bool | None = None


class Partitioning(Section):
    strategy: Str | None = None
    dimensions: list[Choice(PARTITION_DIMENSIONS)] | None = None
    date_granularity: Choice(("Hourly", "Daily", "Monthly")) | None = None
    adaptive: AdaptivePartitioning | None = None
    trading_calendar: TradingCalendarPartitioning | None = None
    rolling: RollingPartitioning | None = None


# -- File Maintenance, Quality, Search ------------------------------------------------------------

class MaintenanceSchedule(Section):
    health_check: Cron | None = None
    defragmentation: Cron | None = None
    orphan_cleanup: Cron | None = None
    index_rebuild: Cron | None = None
    backup_verification: Cron | None = None


class AutoRepair(Section):
    enabled: Bool | None = None
    max_auto_repairs_per_run: Int(ge=0) | None = None
    require_backup: Bool | None = None
    notify_on_repair: StrList | None = None


class MaintenanceThresholds(Section):
    fragmentation_trigger_pct: Number(ge=0, le=100) | None = None
    min_file_size_for_merge_bytes: Int(ge=0, unit="bytes") | None = None
    max_file_age_for_hot_tier_days: Int(ge=0, unit="days") | None = None


class Maintenance(Section):
    enabled: Bool | None = None
    schedule: MaintenanceSchedule | None = None
    auto_repair: AutoRepair | None = None
    thresholds: MaintenanceThresholds | None = None


SOURCE_SELECTION_STRATEGIES = ("HighestQualityScore", "MostComplete", "LowestLatency",
                               "MostConsistent", "Merge")


class Consolidation(Section):
    enabled: Bool | None = None
    schedule: Cron | None = None
    target_directory: Str | None = None
    strategy: Choice(SOURCE_SELECTION_STRATEGIES) | None = None
    min_sources_for_consolidation: Int(ge=1) | None = None


class Quality(Section):
    minimum_score_for_archive: Number(ge=0, le=1) | None = None
    minimum_score_for_research: Number(ge=0, le=1) | None = None
    quarantine_below_score: Number(ge=0, le=1) | None = None
    auto_backfill_below_score: Number(ge=0, le=1) | None = None
    prefer_source_above_score: Number(ge=0, le=1) | None = None
    consolidation: Consolidation | None = None


class BloomFilters(Section):
    enabled: Bool | None = None
    false_positive_rate: Number(gt=0, lt=1) | None = None


class PartitionedIndexes(Section):
    by_date: Bool | None = None
    by_symbol: Bool | None = None


class Search(Section):
    index_in_memory: Bool | None = None
    max_index_memory_mb: Int(gt=0, unit="MB") | None = None
    cache_recent_queries: Bool | None = None
    query_cache_size: Int(ge=0) | None = None
    query_cache_ttl_seconds: Int(ge=0, unit="seconds") | None = None
    parallel_search_threads: Int(ge=1) | None = None
    bloom_filters: BloomFilters | None = None
    partitioned_indexes: PartitionedIndexes | None = None


#: Storage sections accepted and validated now whose feature is not built yet, and what will
#: activate each (the design's roadmap). `Settings.inactive_keys()` reports them when set.
PENDING_FEATURES: dict[str, str] = {
    "Reconciliation": "cross-source reconciliation (roadmap phase 9, quality)",
    "Partitioning": "multi-dimensional and adaptive partitioning (roadmap phase 9)",
    "Sources": "source registry configuration (roadmap phase 1, registry)",
    "Export": "export profiles and schedules (export)",
    "Scheduling": "trading-hours-aware scheduler (roadmap phase 8, ops)",
    "Maintenance": "scheduled maintenance and auto-repair (roadmap phase 2/9, maintenance)",
    "Quality": "quality scoring and consolidation (roadmap phase 5, quality)",
    "Search": "search indexes and caches (roadmap phase 6, search)",
    "Sessions": "collection session management (ingest sessions)",
}
