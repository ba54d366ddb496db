"""Settings: the design's examples, readable errors, profile precedence and round trips."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mdcsql.config import (CODECS, COMPRESSION_LEVELS, DATE_PARTITIONS, NAMING_CONVENTIONS,
                           PENDING_FEATURES, PROFILE_PRESETS, PROFILES, SYNC_MODES, Settings,
                           StorageSettings, load_config, settings_from_dict)
from mdcsql.errors import ConfigError

# The three "Configuration Examples" of spec/storage-design.md, verbatim.
MINIMAL = """
{
  "Storage": {
    "NamingConvention": "BySymbol",
    "DatePartition": "Daily",
    "RetentionDays": 7,
    "Compress": false
  }
}
"""

STANDARD = """
{
  "Storage": {
    "NamingConvention": "Hierarchical",
    "DatePartition": "Daily",
    "Compress": true,
    "CompressionCodec": "gzip",
    "RetentionDays": 90,
    "MaxTotalMegabytes": 102400,
    "Quotas": {
      "PerSource": {
        "alpaca": { "MaxBytes": 53687091200 }
      }
    },
    "Policies": {
      "Trade": {
        "Classification": "Critical",
        "WarmTierDays": 30,
        "ColdTierDays": 180
      }
    }
  }
}
"""

ENTERPRISE = """
{
  "Storage": {
    "NamingConvention": "Canonical",
    "DatePartition": "Daily",
    "Compress": true,
    "CompressionCodec": "zstd",
    "Tiering": {
      "Enabled": true,
      "Tiers": ["hot", "warm", "cold", "archive"]
    },
    "Archive": {
      "Enabled": true,
      "Worm": true,
      "Reason": "Regulatory",
      "MinRetentionYears": 7
    },
    "Catalog": {
      "Enabled": true,
      "SignManifests": true
    },
    "Reconciliation": {
      "Enabled": true,
      "Sources": ["alpaca", "ib"]
    }
  }
}
"""

ENTERPRISE_TOML = """\
[Storage]
NamingConvention = "Canonical"
DatePartition = "Daily"
Compress = true
CompressionCodec = "zstd"

[Storage.Tiering]
Enabled = true
Tiers = ["hot", "warm", "cold", "archive"]

[Storage.Archive]
Enabled = true
Worm = true
Reason = "Regulatory"
MinRetentionYears = 7

[Storage.Catalog]
Enabled = true
SignManifests = true

[Storage.Reconciliation]
Enabled = true
Sources = ["alpaca", "ib"]
"""


def load(doc, **kw) -> Settings:
    return settings_from_dict(json.loads(doc) if isinstance(doc, str) else doc, **kw)


def error_of(doc, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        load(doc, **kw)
    return str(info.value)


def storage(**keys) -> dict:
    return {"Storage": keys}


# -- the design's examples ------------------------------------------------------------------------

def test_minimal_example():
    s = load(MINIMAL)
    st_ = s.storage
    assert (st_.naming_convention, st_.date_partition, st_.retention_days) == ("BySymbol", "Daily", 7)
    assert st_.compress is False and st_.codec == "none" and st_.compression_level is None
    assert s.inactive_keys() == []
    assert s.profile is None


def test_standard_example():
    s = load(STANDARD)
    st_ = s.storage
    assert st_.naming_convention == "Hierarchical"
    assert (st_.codec, st_.compression_level) == ("gzip", 6)
    assert (st_.retention_days, st_.max_total_megabytes) == (90, 102400)
    assert st_.quotas.per_source["alpaca"].max_bytes == 53687091200
    assert st_.policies["Trade"].classification == "Critical"
    assert (st_.policies["Trade"].warm_tier_days, st_.policies["Trade"].cold_tier_days) == (30, 180)
    assert s.inactive_keys() == []  # quotas and policies are active (issue 4)


def test_enterprise_example():
    s = load(ENTERPRISE)
    st_ = s.storage
    assert st_.naming_convention == "Canonical"
    assert (st_.codec, st_.compression_level) == ("zstd", 3)
    assert st_.tiering.enabled is True and st_.tiering.tiers == ["hot", "warm", "cold", "archive"]
    assert (st_.archive.worm, st_.archive.reason, st_.archive.min_retention_years) == (
        True, "Regulatory", 7)
    assert st_.catalog.sign_manifests is True
    assert st_.reconciliation.sources == ["alpaca", "ib"]
    assert s.inactive_keys() == ["Storage.Reconciliation"]


def test_enterprise_as_toml_file_equals_json(tmp_path):
    toml_path = tmp_path / "mdcsql.toml"
    toml_path.write_text(ENTERPRISE_TOML)
    json_path = tmp_path / "mdcsql.json"
    json_path.write_text(ENTERPRISE)
    from_toml, from_json = load_config(toml_path), load_config(str(json_path))
    assert from_toml == from_json == load(ENTERPRISE)
    assert from_toml.path == toml_path
    assert from_toml.explicit_dict() == json.loads(ENTERPRISE)


def test_defaults_without_a_file():
    s = load_config()
    assert s.to_dict() == {"Storage": {
        "NamingConvention": "BySymbol", "DatePartition": "Daily", "RetentionDays": None,
        "MaxTotalMegabytes": None, "Compress": True, "CompressionCodec": "gzip",
        "CompressionLevel": 6, "FilePrefix": "", "FileNameMetadata": False, "Profile": None,
        "Sync": {"Mode": "batched", "IntervalMs": 5, "MaxEvents": 10000},
        "SealGraceSeconds": 0}}
    assert s.explicit_dict() == {"Storage": {}}
    assert {e.source for e in s.explain()} == {"default"}
    assert s == load({}) == load(storage())


def test_typed_access_and_constants():
    s = load(storage(NamingConvention="hierarchical", DatePartition="HOURLY", CompressionCodec="ZSTD",
                     CompressionLevel=12, FilePrefix="nyse-1", FileNameMetadata=True,
                     SealGraceSeconds=30, MaxTotalMegabytes=500, RetentionDays=0,
                     Sync={"Mode": "Always", "IntervalMs": 10000, "MaxEvents": 1}))
    st_ = s.storage
    assert isinstance(st_, StorageSettings)
    assert (st_.naming_convention, st_.date_partition, st_.codec, st_.compression_level) == (
        "Hierarchical", "Hourly", "zstd", 12)
    assert (st_.file_prefix, st_.file_name_metadata, st_.seal_grace_seconds) == ("nyse-1", True, 30)
    assert (st_.max_total_megabytes, st_.retention_days) == (500, 0)
    assert (st_.sync.mode, st_.sync.interval_ms, st_.sync.max_events) == ("always", 10000, 1)
    assert s.explicit_dict()["Storage"]["NamingConvention"] == "Hierarchical"  # canonical spelling
    assert len(NAMING_CONVENTIONS) == 8 and DATE_PARTITIONS == ("None", "Daily", "Hourly", "Monthly")
    assert CODECS == ("gzip", "zstd", "none") and SYNC_MODES == ("none", "batched", "always")
    assert PROFILES == ("Research", "LowLatency", "Archival")
    assert COMPRESSION_LEVELS["gzip"] == (1, 9, 6) and COMPRESSION_LEVELS["zstd"] == (1, 22, 3)
    with pytest.raises(Exception):
        st_.naming_convention = "Flat"  # settings are immutable


def test_compress_and_codec_resolve_together():
    assert load(storage(CompressionCodec="none")).storage.compress is False
    assert load(storage(CompressionCodec="zstd")).storage.compress is True
    assert load(storage(Compress=True)).storage.codec == "gzip"
    assert load(storage(Compress=False, CompressionCodec="none")).storage.codec == "none"
    assert load(storage(CompressionCodec="gzip", CompressionLevel=1)).storage.compression_level == 1
    assert load(storage(CompressionCodec="zstd", CompressionLevel=22)).storage.compression_level == 22


# -- errors ---------------------------------------------------------------------------------------

def test_unknown_top_level_key():
    msg = error_of({"Storag": {"Compress": True}})
    assert msg.startswith("Storag: unknown key")
    assert "Storage" in msg and "Did you mean 'Storage'?" in msg


def test_setting_outside_storage_points_inside():
    msg = error_of({"Compress": False})
    assert "Compress: unknown key (got false)" in msg and "'Storage.Compress'" in msg


def test_unknown_nested_key_names_path_value_valid_keys_and_suggestion():
    msg = error_of(storage(Sync={"Intervall": 20}))
    assert msg == ("Storage.Sync.Intervall: unknown key (got 20). Allowed: keys of Storage.Sync: "
                   "Mode, IntervalMs, MaxEvents. Did you mean 'IntervalMs'?")


def test_unknown_key_in_a_later_section_and_snake_case_hint():
    msg = error_of(storage(Quotas={"PerSource": {"alpaca": {"max_bytes": 5}}}))
    assert msg.startswith("Storage.Quotas.PerSource.alpaca.max_bytes: unknown key (got 5)")
    assert "MaxBytes, MaxFiles, MaxEventsPerDay, Enforcement" in msg
    assert "Did you mean 'MaxBytes'?" in msg


def test_bad_enum_lists_allowed_values():
    msg = error_of(storage(NamingConvention="BySymbl"))
    assert msg == ("Storage.NamingConvention: unknown value (got \"BySymbl\"). Allowed: Flat, "
                   "BySymbol, ByDate, ByType, BySource, ByAssetClass, Hierarchical, Canonical. "
                   "Did you mean 'BySymbol'?")
    msg = error_of(storage(DatePartition="Weekly"))
    assert "Storage.DatePartition" in msg and '"Weekly"' in msg
    assert "None, Daily, Hourly, Monthly" in msg
    msg = error_of(storage(Sync={"Mode": "sometimes"}))
    assert "Storage.Sync.Mode" in msg and "none, batched, always" in msg
    msg = error_of(storage(Policies={"Trade": {"Classification": "Important"}}))
    assert "Storage.Policies.Trade.Classification" in msg
    assert "Critical, Standard, Transient, Derived" in msg


def test_gzip_level_out_of_range():
    msg = error_of(storage(CompressionCodec="gzip", CompressionLevel=12))
    assert msg == ("Storage.CompressionLevel: out of range for codec gzip (got 12). "
                   "Allowed: an integer from 1 to 9.")
    msg = error_of(storage(CompressionCodec="zstd", CompressionLevel=23))
    assert "Storage.CompressionLevel" in msg and "(got 23)" in msg and "from 1 to 22" in msg
    assert "from 1 to 9" in error_of(storage(CompressionLevel=0))  # gzip is the default codec


def test_wrong_type():
    msg = error_of(storage(RetentionDays="seven"))
    assert msg.startswith('Storage.RetentionDays: wrong type (got "seven"). Allowed: an integer ≥ 0')
    assert "or null" in msg
    assert "true or false" in error_of(storage(Compress="yes"))
    assert "Storage.Compress: wrong type (got 1)" in error_of(storage(Compress=1))
    assert "an integer" in error_of(storage(SealGraceSeconds=1.5))
    msg = error_of(storage(Sync=5))
    assert "Storage.Sync: wrong type (got 5)" in msg and "Mode, IntervalMs, MaxEvents" in msg


def test_out_of_range_and_format():
    msg = error_of(storage(Sync={"IntervalMs": 0}))
    assert msg == ("Storage.Sync.IntervalMs: out of range (got 0). "
                   "Allowed: an integer from 1 to 10000 (milliseconds).")
    assert "(got 0)" in error_of(storage(MaxTotalMegabytes=0))
    assert "(got -1)" in error_of(storage(RetentionDays=-1))
    msg = error_of(storage(FilePrefix="../x"))
    assert "Storage.FilePrefix: invalid format (got \"../x\")" in msg and "letters, digits" in msg
    assert "Storage.FilePrefix" in error_of(storage(FilePrefix="-x"))  # as mdcsql.layout requires
    assert "Storage.FilePrefix" in error_of(storage(FilePrefix="a" * 65))
    assert load(storage(FilePrefix="a" * 64)).storage.file_prefix == "a" * 64


def test_several_problems_joined():
    msg = error_of(storage(NamingConvention="Nope", RetentionDays="seven", Sync={"Mod": "x"}))
    parts = msg.split("; ")
    assert len(parts) == 3
    assert {p.split(":")[0] for p in parts} == {
        "Storage.NamingConvention", "Storage.RetentionDays", "Storage.Sync.Mod"}
    with pytest.raises(ConfigError) as info:
        load(storage(NamingConvention="Nope", RetentionDays="seven"))
    assert len(info.value.problems) == 2


def test_contradictions_and_meaningless_level():
    msg = error_of(storage(Compress=False, CompressionCodec="gzip"))
    assert "Storage.CompressionCodec: contradicts Compress = false (got \"gzip\")" in msg
    assert "contradicts Compress = true" in error_of(storage(Compress=True, CompressionCodec="none"))
    msg = error_of(storage(Compress=False, CompressionLevel=5))
    assert "Storage.CompressionLevel: has no effect without compression" in msg


def test_later_sections_validated_as_far_as_the_design_shows():
    assert "Storage.Tiering.Tiers[1]" in error_of(storage(Tiering={"Tiers": ["hot", "lukewarm"]}))
    assert "hot, warm, cold, archive, glacier" in error_of(storage(Tiering={"Tiers": ["tepid"]}))
    assert "more than once" in error_of(storage(Tiering={"Tiers": ["hot", "hot"]}))
    msg = error_of(storage(Archive={"Reason": "Whim"}))
    assert "Regulatory, Compliance, Research, Legal, Historical" in msg
    assert "Storage.Archive.MinRetentionYears" in error_of(storage(Archive={"MinRetentionYears": "7"}))
    assert "Storage.Catalog.SignManifests" in error_of(storage(Catalog={"SignManifests": "yes"}))
    assert "Storage.Reconciliation.Sources[1]" in error_of(
        storage(Reconciliation={"Sources": ["alpaca", 7]}))
    assert "Storage.Policies.Trade.HotTierDays" in error_of(
        storage(Policies={"Trade": {"HotTierDays": "7"}}))
    assert "cron" in error_of(storage(Backup={"Schedule": "every night"}))
    assert "needs Bucket" in error_of(storage(Backup={"Targets": [{"Type": "s3"}]}))
    # Object-form tiers (design "Tiering Configuration") and free-form sections are accepted.
    s = load(storage(Tiering={"Tiers": [{"Name": "hot", "Path": "/fast", "MaxAgeDays": 7,
                                         "Format": "jsonl"}, "warm"]},
                     Export={"Profiles": {"PythonPandas": {"Format": "parquet"}}},
                     Scheduling={"Timezone": "America/New_York"}, Sessions={}))
    assert s.storage.tiering.tiers[0].max_age_days == 7
    assert s.inactive_keys() == ["Storage.Export", "Storage.Scheduling", "Storage.Sessions"]


def test_every_pending_section_is_a_storage_key():
    aliases = {f.alias for f in StorageSettings.model_fields.values()}
    assert set(PENDING_FEATURES) <= aliases
    for key in PENDING_FEATURES:
        s = load(storage(**{key: {}}))
        assert s.inactive_keys() == [f"Storage.{key}"]


def test_malformed_json_file_gives_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "Storage": {\n    "Compress": true\n    "RetentionDays": 7\n  }\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: malformed JSON at line 4, column 5:")
    assert "delimiter" in msg


def test_malformed_toml_file_gives_line_and_column(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[Storage]\nCompress = true\nRetentionDays = = 7\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert re.match(rf"{re.escape(str(path))}: malformed TOML at line 3, column \d+: ",
                    str(info.value))


def test_file_errors_start_with_the_path(tmp_path):
    path = tmp_path / "mdcsql.json"
    path.write_text(json.dumps(storage(Sync={"Intervall": 5})))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: Storage.Sync.Intervall: unknown key (got 5)")
    assert info.value.file == str(path)
    dup = tmp_path / "dup.json"
    dup.write_text('{"Storage": {"Compress": true, "Compress": false}}')
    with pytest.raises(ConfigError, match=r"dup\.json: duplicate key 'Compress'"):
        load_config(dup)
    with pytest.raises(ConfigError, match=r"missing\.json: config file not found"):
        load_config(tmp_path / "missing.json")
    yaml = tmp_path / "mdcsql.yaml"
    yaml.write_text("Storage: {}")
    with pytest.raises(ConfigError, match=r"mdcsql\.yaml: unsupported config file type '\.yaml'; "
                                          r"allowed: \.json, \.toml"):
        load_config(yaml)
    top = tmp_path / "list.json"
    top.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="top level must be an object"):
        load_config(top)


def test_unknown_profile_lists_the_three():
    msg = error_of({}, profile="Fast")
    assert msg == ('profile (argument): unknown profile (got "Fast"). '
                   "Allowed: Research, LowLatency, Archival.")
    msg = error_of(storage(Profile="Archive"))
    assert "Storage.Profile: unknown value (got \"Archive\")" in msg
    assert "Research, LowLatency, Archival" in msg and "Did you mean 'Archival'?" in msg


# -- profiles -------------------------------------------------------------------------------------

def test_profile_values_fill_unset_keys():
    research = load({}, profile="Research").storage
    assert (research.codec, research.compression_level, research.date_partition) == ("gzip", 6, "Daily")
    assert (research.sync.mode, research.sync.interval_ms) == ("batched", 5)
    low = load({}, profile="lowlatency").storage
    assert (low.compress, low.codec, low.compression_level, low.date_partition) == (
        False, "none", None, "Hourly")
    assert (low.sync.mode, low.sync.interval_ms, low.sync.max_events) == ("batched", 10, 50000)
    archival = load({}, profile="Archival")
    a = archival.storage
    assert (a.codec, a.compression_level, a.date_partition, a.sync.interval_ms) == (
        "zstd", 19, "Daily", 5)
    assert a.tiering.enabled is True and a.tiering.tiers == ["hot", "warm", "cold", "archive"]
    assert archival.inactive_keys() == []  # Tiering came from the profile, not the user
    assert archival.profile == "Archival"


@pytest.mark.parametrize("profile, explicit, expect", [
    ("Archival", {"CompressionCodec": "gzip"}, {"codec": "gzip", "compression_level": 6,
                                                "date_partition": "Daily"}),
    ("Archival", {"CompressionLevel": 9}, {"codec": "zstd", "compression_level": 9}),
    ("Archival", {"Compress": False}, {"codec": "none", "compression_level": None}),
    ("LowLatency", {"DatePartition": "Daily"}, {"date_partition": "Daily", "codec": "none"}),
    ("LowLatency", {"Compress": True}, {"codec": "gzip", "compression_level": 6,
                                        "date_partition": "Hourly"}),
    ("LowLatency", {"CompressionCodec": "zstd"}, {"codec": "zstd", "compression_level": 3}),
    ("Research", {"CompressionCodec": "zstd"}, {"codec": "zstd", "compression_level": 3}),
    ("Research", {"DatePartition": "Monthly", "Sync": {"Mode": "always"}},
     {"date_partition": "Monthly", "codec": "gzip"}),
])
def test_explicit_setting_beats_profile(profile, explicit, expect):
    for s in (load(storage(Profile=profile, **explicit)), load(storage(**explicit), profile=profile)):
        for attr, value in expect.items():
            assert getattr(s.storage, attr) == value, (profile, explicit, attr)
        sources = {e.key: e.source for e in s.explain()}
        for key in explicit:
            if isinstance(explicit[key], dict):
                continue
            assert sources[f"Storage.{key}"] == "user"


def test_nested_explicit_keys_beat_profile_leaf_by_leaf():
    s = load(storage(Sync={"IntervalMs": 2}, Tiering={"Enabled": False}), profile="LowLatency")
    assert (s.storage.sync.mode, s.storage.sync.interval_ms, s.storage.sync.max_events) == (
        "batched", 2, 50000)
    s = load(storage(Tiering={"Enabled": False}), profile="Archival")
    assert s.storage.tiering.enabled is False
    assert s.storage.tiering.tiers == ["hot", "warm", "cold", "archive"]
    sources = {e.key: e.source for e in s.explain()}
    assert sources["Storage.Tiering.Enabled"] == "user"
    assert sources["Storage.Tiering.Tiers"] == "profile"
    assert s.inactive_keys() == []  # Tiering is active (issue 4)


def test_profile_level_error_explains_where_the_codec_came_from():
    msg = error_of(storage(CompressionLevel=15), profile="Research")
    assert msg == ("Storage.CompressionLevel: out of range for codec gzip from profile Research "
                   "(got 15). Allowed: an integer from 1 to 9.")
    msg = error_of(storage(CompressionLevel=5), profile="LowLatency")
    assert "no effect without compression" in msg


def test_argument_profile_beats_file_profile(tmp_path):
    path = tmp_path / "mdcsql.toml"
    path.write_text('[Storage]\nProfile = "LowLatency"\nNamingConvention = "ByDate"\n')
    from_file = load_config(path)
    assert from_file.profile == "LowLatency" and from_file.storage.date_partition == "Hourly"
    overridden = load_config(path, profile="Archival")
    assert overridden.profile == "Archival"
    assert (overridden.storage.codec, overridden.storage.date_partition) == ("zstd", "Daily")
    assert overridden.storage.naming_convention == "ByDate"
    assert overridden.explicit_dict()["Storage"]["Profile"] == "Archival"


def test_explain_reports_user_profile_and_default():
    s = load(storage(NamingConvention="Flat", Quotas={"Global": {"MaxBytes": 10}}),
             profile="Archival")
    by_key = {e.key: e for e in s.explain()}
    assert by_key["Storage.NamingConvention"][1:] == ("Flat", "user", True)
    assert by_key["Storage.Profile"][1:] == ("Archival", "user", True)
    assert by_key["Storage.CompressionCodec"][1:] == ("zstd", "profile", True)
    assert by_key["Storage.CompressionLevel"][1:] == (19, "profile", True)
    assert by_key["Storage.Compress"].source == "profile"
    assert by_key["Storage.Sync.MaxEvents"].source == "profile"
    assert by_key["Storage.FilePrefix"].source == "default"
    assert by_key["Storage.Quotas.Global.MaxBytes"][1:] == (10, "user", True)
    assert by_key["Storage.Tiering.Enabled"][1:] == (True, "profile", True)


def test_presets_match_the_documented_profiles():
    assert set(PROFILE_PRESETS) == set(PROFILES)
    for name in PROFILES:
        s = load({}, profile=name)
        for key, value in PROFILE_PRESETS[name].items():
            assert s.to_dict()["Storage"][key] == value


# -- overrides ------------------------------------------------------------------------------------

def test_overrides_dotted_and_nested(tmp_path):
    path = tmp_path / "mdcsql.json"
    path.write_text(STANDARD)
    s = load_config(path, overrides={"Sync.IntervalMs": 20, "Storage.RetentionDays": 30,
                                     "Storage": {"Quotas": {"PerSource": {"ib": {"MaxBytes": 1}}}}})
    assert s.storage.sync.interval_ms == 20 and s.storage.retention_days == 30
    assert set(s.storage.quotas.per_source) == {"alpaca", "ib"}
    assert s.explicit_dict()["Storage"]["Sync"] == {"IntervalMs": 20}
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides={"Sync.IntervalMs": 0})
    assert str(info.value).startswith(f"{path}: Storage.Sync.IntervalMs: out of range (got 0)")
    assert "(set by overrides)" in str(info.value)


# -- round trips ----------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", [MINIMAL, STANDARD, ENTERPRISE])
@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_round_trips_give_equal_settings(doc, profile, tmp_path):
    s = load(doc, profile=profile)
    resolved, explicit = s.to_dict(), s.explicit_dict()
    assert json.loads(json.dumps(resolved)) == resolved
    assert load(resolved) == s
    assert load(explicit) == s
    assert load(resolved).to_dict() == resolved
    path = tmp_path / "config.json"
    path.write_text(json.dumps(explicit))
    again = load_config(path)
    assert again == s and again.explicit_dict() == explicit and again.profile == s.profile


_active_values = st.fixed_dictionaries({}, optional={
    "NamingConvention": st.sampled_from(NAMING_CONVENTIONS).map(str.lower),
    "DatePartition": st.sampled_from(DATE_PARTITIONS),
    "RetentionDays": st.none() | st.integers(0, 10_000),
    "MaxTotalMegabytes": st.none() | st.integers(1, 10**9),
    "CompressionCodec": st.sampled_from(CODECS).map(str.upper),
    "FilePrefix": st.from_regex(r"([A-Za-z0-9][A-Za-z0-9_-]{0,11})?", fullmatch=True),
    "FileNameMetadata": st.booleans(),
    "Profile": st.none() | st.sampled_from(PROFILES),
    "SealGraceSeconds": st.integers(0, 3600),
    "Sync": st.fixed_dictionaries({}, optional={
        "Mode": st.sampled_from(SYNC_MODES), "IntervalMs": st.integers(1, 10000),
        "MaxEvents": st.integers(1, 10**6)}),
    "Tiering": st.fixed_dictionaries({}, optional={"Enabled": st.booleans()}),
})


@hsettings(max_examples=150, deadline=None)
@given(_active_values, st.none() | st.sampled_from(PROFILES))
def test_any_valid_document_round_trips(doc, profile):
    s = load({"Storage": doc}, profile=profile)
    assert load(s.explicit_dict()) == s
    assert load(s.to_dict()) == s
    assert s.storage.codec in CODECS
    if s.storage.codec != "none":
        low, high, _ = COMPRESSION_LEVELS[s.storage.codec]
        assert low <= s.storage.compression_level <= high


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
_keys = st.sampled_from([f.alias for f in StorageSettings.model_fields.values()]) | st.text(max_size=10)


@hsettings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json_values, max_size=4))
def test_arbitrary_documents_give_settings_or_config_error(doc):
    try:
        s = load({"Storage": doc})
    except ConfigError as exc:
        assert str(exc) and "validation error" not in str(exc).lower()
        assert "pydantic" not in str(exc).lower()
    else:
        assert load(s.explicit_dict()) == s


# -- docs -----------------------------------------------------------------------------------------

def _key_paths(model, prefix):
    """Every documented key path: `<name>` stands for a user-chosen name, `[]` for list items."""
    from typing import get_args, get_origin
    from mdcsql.config_sections import Section
    for field in model.model_fields.values():
        path = f"{prefix}.{field.alias}"
        yield path
        stack, container = [field.annotation], ""
        while stack:
            tp = stack.pop()
            if get_origin(tp) is dict:
                container = ".<name>"
            elif get_origin(tp) is list:
                container = "[]"
            if isinstance(tp, type) and issubclass(tp, Section):
                yield from _key_paths(tp, path + container)
                break
            stack.extend(get_args(tp))


def test_docs_mention_every_key():
    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    missing = [p for p in _key_paths(StorageSettings, "Storage") if f"`{p}`" not in text]
    assert not missing, f"keys missing from docs/configuration.md: {missing}"
    for name in (*PROFILES, *NAMING_CONVENTIONS, *DATE_PARTITIONS, *CODECS, *SYNC_MODES):
        assert name in text


def test_empty_nested_object_keeps_defaults_and_sources():
    s = load(storage(Sync={}), profile="LowLatency")
    sources = {e.key: e.source for e in s.explain()}
    assert sources["Storage.Sync.IntervalMs"] == "profile"
    s = load(storage(Sync={}))
    assert {e.source for e in s.explain() if e.key.startswith("Storage.Sync.")} == {"default"}


def test_every_accepted_layout_setting_builds_a_layout():
    from mdcsql.layout import Layout
    for convention in NAMING_CONVENTIONS:
        for partition in DATE_PARTITIONS:
            st_ = load(storage(NamingConvention=convention, DatePartition=partition,
                               FilePrefix="nyse_2024-a", FileNameMetadata=True)).storage
            Layout(st_.naming_convention, st_.date_partition,
                   file_name_metadata=st_.file_name_metadata, file_prefix=st_.file_prefix)


def test_docs_examples_load():
    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    blocks = re.findall(r"```(json|toml)\n(.*?)```", text, re.S)
    loaded = []
    for kind, body in blocks:
        if kind == "json" and body.lstrip().startswith("{"):
            loaded.append(load(body))
        elif kind == "toml":
            import tomllib
            loaded.append(load(tomllib.loads(body)))
        else:  # a fragment: one section
            loaded.append(load("{\"Storage\": {" + body + "}}"))
    assert len(loaded) == 4
    assert loaded[1] == loaded[2]  # the TOML and JSON production examples say the same
    assert loaded[1].storage.sync.interval_ms == 2 and loaded[1].storage.sync.max_events == 10000
    assert loaded[1].inactive_keys() == []


def test_file_format_details(tmp_path):
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(storage(Compress=False)).encode())
    assert load_config(bom).storage.codec == "none"
    nan = tmp_path / "nan.json"
    nan.write_text('{"Storage": {"RetentionDays": NaN}}')
    with pytest.raises(ConfigError, match=r"nan\.json: malformed JSON: NaN"):
        load_config(nan)
    dates = tmp_path / "dates.toml"
    dates.write_text("[Storage.Scheduling]\nHolidays = [2024-01-01, 2024-07-04]\n")
    s = load_config(dates)
    assert s.storage.scheduling == {"Holidays": ["2024-01-01", "2024-07-04"]}
    assert json.loads(json.dumps(s.to_dict())) == s.to_dict()
    unterminated = tmp_path / "open.toml"
    unterminated.write_text('[Storage]\nFilePrefix = "abc')
    with pytest.raises(ConfigError, match=r"open\.toml: malformed TOML at line 2, column \d+"):
        load_config(unterminated)


# Every section at once, with the values the design uses in its own examples.
FULL = {"Storage": {
    "NamingConvention": "Hierarchical", "DatePartition": "Hourly", "RetentionDays": 365,
    "MaxTotalMegabytes": 2048000, "Compress": True, "CompressionCodec": "zstd",
    "CompressionLevel": 12, "FilePrefix": "mdc", "FileNameMetadata": True, "Profile": "Archival",
    "Sync": {"Mode": "batched", "IntervalMs": 5, "MaxEvents": 20000}, "SealGraceSeconds": 60,
    "Quotas": {"Global": {"MaxBytes": 107374182400, "Enforcement": "SoftLimit"},
               "PerSource": {"alpaca": {"MaxBytes": 53687091200, "MaxFiles": 100000,
                                        "Enforcement": "DropOldest"}},
               "PerAssetClass": {"equity": {"MaxBytes": 10**11}},
               "PerSymbol": {"SPY": {"MaxBytes": 10737418240, "MaxEventsPerDay": 50000000}},
               "PerEventType": {"Heartbeat": {"MaxBytes": 10**9, "Enforcement": "HardLimit"}},
               "Dynamic": {"Enabled": True, "EvaluationPeriod": "1h", "MinReservePct": 10,
                           "OverprovisionFactor": 1.2, "StealFromInactive": False}},
    "Policies": {"Trade": {"Classification": "Critical", "HotTierDays": 7, "WarmTierDays": 90,
                           "ColdTierDays": 365, "ArchiveTier": "perpetual",
                           "Compression": {"Hot": "none", "Warm": "gzip", "Cold": "zstd",
                                           "Archive": "zstd-max"}},
                 "Heartbeat": {"Classification": "Transient", "HotTierDays": 1, "WarmTierDays": 0,
                               "ColdTierDays": 0, "ArchiveTier": None}},
    "Tiering": {"Enabled": True,
                "Tiers": [{"Name": "hot", "Path": "/fast-ssd/mdc/hot", "MaxAgeDays": 7,
                           "MaxSizeGb": 100, "Format": "jsonl", "Compression": None},
                          {"Name": "warm", "Path": "/ssd/mdc/warm", "MaxAgeDays": 90,
                           "MaxSizeGb": 500, "Format": "jsonl.gz", "Compression": "gzip"},
                          "cold",
                          {"Name": "archive", "Path": "s3://mdc-archive", "MaxAgeDays": None,
                           "Format": "parquet", "Compression": "zstd",
                           "StorageClass": "GLACIER_IR"}],
                "MigrationSchedule": "0 2 * * *", "ParallelMigrations": 4},
    "Archive": {"Enabled": True, "Worm": True, "Reason": "Regulatory",
                "Description": "SEC 17a-4 trade records", "Immutable": True,
                "RequiresEncryption": False, "MinRetentionYears": 7,
                "ApproversForDelete": ["compliance@example.com"],
                "Format": {"Format": "parquet", "Compression": "zstd", "CompressionLevel": 19,
                           "EnableBloomFilters": True, "EnableStatistics": True,
                           "PartitionColumns": ["date", "symbol"], "RowGroupSize": 100000}},
    "Worm": {"Enabled": True, "LockDelay": "1d", "AllowExtend": True,
             "ComplianceMode": "compliance"},
    "Catalog": {"Enabled": True, "SignManifests": True},
    "Reconciliation": {"Enabled": True, "Sources": ["alpaca", "ib"], "Window": "500ms",
                       "PriceTolerance": 0.01, "VolumeTolerance": 100,
                       "GenerateDiscrepancyReport": True, "ReportPath": "reports/recon"},
    "Partitioning": {"Strategy": "composite", "Dimensions": ["Date", "Source", "Symbol"],
                     "DateGranularity": "Daily",
                     "Adaptive": {"EventsPerHourThreshold": 100000,
                                  "EventsPerDayThreshold": 50000,
                                  "EventsPerMonthThreshold": 10000},
                     "TradingCalendar": {"Exchange": "NYSE", "SkipNonTradingDays": True,
                                         "SeparatePreMarket": True, "SeparateAfterHours": True,
                                         "MarketTimeZone": "America/New_York"},
                     "Rolling": {"WindowSize": "1h", "WindowCount": 24,
                                 "CompactOnRotation": True}},
    "Integrity": {"ValidateOnWrite": True, "ChecksumOnWrite": True, "VerifyOnRead": False,
                  "MaxSequenceGap": 100, "StaleDataThreshold": "5m",
                  "EnforceMonotonicity": False},
    "Backup": {"Enabled": True, "Schedule": "0 0 * * *", "RetentionBackups": 7,
               "Targets": [{"Type": "local", "Path": "/backup/mdc"},
                           {"Type": "s3", "Bucket": "mdc-backups", "Region": "us-east-1",
                            "StorageClass": "GLACIER_IR"}],
               "IncludePatterns": ["*.jsonl", "*.jsonl.gz", "*.parquet"],
               "ExcludePatterns": ["**/current.jsonl", "**/_temp/*"]},
    "Sources": {"alpaca": {"Id": "alpaca", "Name": "Alpaca Markets", "Type": "live",
                           "Priority": 1, "AssetClasses": ["equity"],
                           "DataTypes": ["Trade", "BboQuote", "L2Snapshot"], "LatencyMs": 10,
                           "Reliability": 0.999, "CostPerEvent": 0.0001, "Enabled": True},
                "stooq": {"Id": "stooq", "Name": "Stooq Historical", "Type": "historical",
                          "AssetClasses": ["equity"], "DataTypes": ["HistoricalBar"],
                          "Enabled": True}},
    "Export": {"Profiles": {"PythonPandas": {"Format": "parquet",
                                             "Options": {"Compression": "snappy"}}}},
    "Scheduling": {"Timezone": "America/New_York", "HolidayCalendar": "NYSE"},
    "Maintenance": {"Enabled": True,
                    "Schedule": {"HealthCheck": "0 3 * * *", "Defragmentation": "0 4 * * 0",
                                 "OrphanCleanup": "0 5 1 * *", "IndexRebuild": "0 2 * * 0",
                                 "BackupVerification": "0 6 * * 0"},
                    "AutoRepair": {"Enabled": True, "MaxAutoRepairsPerRun": 100,
                                   "RequireBackup": True,
                                   "NotifyOnRepair": ["admin@example.com"]},
                    "Thresholds": {"FragmentationTriggerPct": 20,
                                   "MinFileSizeForMergeBytes": 1048576,
                                   "MaxFileAgeForHotTierDays": 7}},
    "Quality": {"MinimumScoreForArchive": 0.95, "MinimumScoreForResearch": 0.9,
                "QuarantineBelowScore": 0.7, "AutoBackfillBelowScore": 0.85,
                "PreferSourceAboveScore": 0.98,
                "Consolidation": {"Enabled": True, "Schedule": "0 6 * * *",
                                  "TargetDirectory": "consolidated", "Strategy": "Merge",
                                  "MinSourcesForConsolidation": 2}},
    "Search": {"IndexInMemory": True, "MaxIndexMemoryMb": 512, "CacheRecentQueries": True,
               "QueryCacheSize": 1000, "QueryCacheTtlSeconds": 300, "ParallelSearchThreads": 4,
               "BloomFilters": {"Enabled": True, "FalsePositiveRate": 0.01},
               "PartitionedIndexes": {"ByDate": True, "BySymbol": True}},
    "Sessions": {"DefaultType": "Daily"},
}}


def test_a_document_using_every_section_loads_and_round_trips(tmp_path):
    s = load(FULL)
    assert s.inactive_keys() == [f"Storage.{k}" for k in PENDING_FEATURES]
    assert s.explicit_dict() == FULL  # already in canonical spelling
    assert load(s.to_dict()) == s and load(s.explicit_dict()) == s
    st_ = s.storage
    assert st_.tiering.tiers[2] == "cold" and st_.tiering.tiers[3].storage_class == "GLACIER_IR"
    assert st_.backup.targets[1].bucket == "mdc-backups"
    assert st_.sources["alpaca"].reliability == 0.999
    assert st_.partitioning.dimensions == ["Date", "Source", "Symbol"]
    assert (st_.codec, st_.compression_level, st_.date_partition) == ("zstd", 12, "Hourly")
    assert {e.source for e in s.explain()} == {"user"}
