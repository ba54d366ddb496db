"""mdcsql.layout: path <-> metadata round trips, symbol encoding, periods, and globs."""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mdcsql.layout import (
    CODEC_EXT, DATE_PARTITIONS, DAY_NS, EVENT_TYPES, HOUR_NS, MAX_NAME_BYTES, NAMING_CONVENTIONS,
    TIER_ROOTS, FileMeta, Layout, NameTooLongError, PartitionKey, decode_component,
    encode_component, parse_period_label, period_end, period_label, period_start,
)

HOSTILE = ["BRK/B", "BRK.B", "BRK_B", "BRK%2FB", "BRK~B", "ES=F", "^GSPC", "EUR/USD", "..", ".",
           "a b", "Ñ", "日本", "../x", "Trade", "all", "p2", "a.p2", "-", "AAPL", "aapl", "\\", "%"]
PERIOD_OF = {"None": "", "Daily": "2024-01-15", "Hourly": "2024-01-15_14", "Monthly": "2024-01"}
ALL_LAYOUTS = [(c, p, m) for c in NAMING_CONVENTIONS for p in DATE_PARTITIONS for m in (False, True)]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
INT64 = (-(2**63), 2**63 - 1)

_LAYOUTS: dict[tuple, Layout] = {}


def layout(convention: str, partition: str, metadata: bool = False, prefix: str = "") -> Layout:
    key = (convention, partition, metadata, prefix)
    if key not in _LAYOUTS:
        _LAYOUTS[key] = Layout(convention, partition, file_name_metadata=metadata, file_prefix=prefix)
    return _LAYOUTS[key]


def glob_regex(pattern: str) -> re.Pattern[str]:
    """DuckDB/fnmatch semantics for the subset layout uses: * and ? never cross '/'."""
    out = "".join("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(out)


def to_dt(ts_ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ts_ns // 1000)


# --------------------------------------------------------------------------- round trip property

hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=st.one_of(st.sampled_from(list("/._~%=^ -\\:*?[]{}aZ09Ñ日\x00")),
                               st.characters(exclude_categories=("Cs",))),
            min_size=1, max_size=12),
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lay=st.sampled_from(ALL_LAYOUTS), prefix=st.sampled_from(["", "md_", "x.y-"]),
    root=st.sampled_from(TIER_ROOTS), type_=st.sampled_from(EVENT_TYPES),
    source=hostile_text, asset_class=hostile_text, symbol=hostile_text,
    ts=st.one_of(st.integers(*INT64), st.integers(-10**18, 4 * 10**18)),
    codec=st.sampled_from(tuple(CODEC_EXT)), part=st.one_of(st.just(1), st.integers(1, 10**6)),
    checksum=st.one_of(st.none(), st.from_regex(r"[0-9a-f]{6}", fullmatch=True)),
)
def test_relpath_parse_round_trip(lay, prefix, root, type_, source, asset_class, symbol, ts, codec,
                                  part, checksum):
    convention, partition, metadata = lay
    lo = layout(convention, partition, metadata, prefix)
    period = period_label(period_start(ts, partition), partition)
    key = PartitionKey(root, source, asset_class, symbol, type_, period)
    try:
        path = lo.relpath(key, codec=codec, part=part, checksum6=checksum)
    except NameTooLongError:
        assert max(len(encode_component(v)) for v in (source, asset_class, symbol)) > 40
        assume(False)
    expected = FileMeta(key, codec, part, checksum if metadata else None, path)
    assert lo.parse(path) == expected
    # safe path: relative, under its root, no empty / dot-only / over-long components
    assert not path.startswith("/") and path.startswith(f"{root}/")
    names = path.split("/")
    assert all(n and n.strip(".") and len(n) <= MAX_NAME_BYTES for n in names)
    assert "\\" not in path and "\x00" not in path
    # the path matches its own glob and no glob of another type or codec
    for other_type, other_codec in itertools.product(EVENT_TYPES, CODEC_EXT):
        (pattern,) = lo.globs(root, other_type, other_codec)
        hit = glob_regex(pattern).fullmatch(path) is not None
        assert hit == (other_type == type_ and other_codec == codec), (pattern, path)


@pytest.mark.parametrize("convention,partition,metadata", ALL_LAYOUTS)
def test_examples_parse_back_every_field(convention, partition, metadata):
    lo = layout(convention, partition, metadata)
    key = PartitionKey("historical", "my src", "fx/spot", "EUR/USD", "BboQuote", PERIOD_OF[partition])
    for codec, part, checksum in itertools.product(CODEC_EXT, (1, 2, 17), (None, "a3f2b1")):
        path = lo.relpath(key, codec=codec, part=part, checksum6=checksum)
        meta = lo.parse(path)
        assert (meta.key, meta.codec, meta.part) == (key, codec, part)
        assert meta.checksum6 == (checksum if metadata else None)
        assert bool(re.search(r"\.p[0-9]", path.rsplit("/", 1)[1])) == (part > 1)


# --------------------------------------------------------------------------- design examples

def test_design_example_names():
    key = PartitionKey("live", "sim", "equity", "AAPL", "Trade", "2024-01-15")
    assert Layout("BySymbol", "Daily").relpath(key, codec="gzip", part=2) == \
        "live/AAPL/Trade/2024-01-15~sim~equity.p2.jsonl.gz"
    key = PartitionKey("live", "alpaca", "equity", "AAPL", "Trade", "2024-01-15")
    lo = Layout("Hierarchical", "Daily", file_name_metadata=True)
    sealed = lo.relpath(key, codec="gzip", checksum6="a3f2b1")
    assert sealed == "live/alpaca/equity/AAPL/Trade/AAPL_Trade_2024-01-15_alpaca_a3f2b1.jsonl.gz"
    assert lo.relpath(key) == "live/alpaca/equity/AAPL/Trade/AAPL_Trade_2024-01-15_alpaca.jsonl"
    assert lo.parse(sealed).checksum6 == "a3f2b1" and lo.parse(lo.relpath(key)).checksum6 is None
    assert Layout("Hierarchical", "Daily").relpath(key) == \
        "live/alpaca/equity/AAPL/Trade/2024-01-15.jsonl"
    assert Layout("Canonical", "Hourly").relpath(
        PartitionKey("live", "alpaca", "equity", "AAPL", "Trade", "2024-01-15_14")) == \
        "live/2024/01/15/14/alpaca/AAPL/Trade~equity.jsonl"
    assert Layout("BySymbol", "None").relpath(
        PartitionKey("live", "alpaca", "equity", "AAPL", "Trade", "")) == \
        "live/AAPL/Trade/all~alpaca~equity.jsonl"
    assert Layout("Flat", "Daily", file_prefix="md_").relpath(key) == \
        "live/md_AAPL_Trade_2024-01-15~alpaca~equity.jsonl"


def test_docs_table_matches_code():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "layout.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\w+) \| (\w+) \| `([^`]+)` \| `([^`]+)` \|$", doc, re.M)
    assert len(rows) == len(NAMING_CONVENTIONS) * len(DATE_PARTITIONS)
    for convention, partition, plain, with_meta in rows:
        key = PartitionKey("live", "alpaca", "equity", "BRK/B", "Trade", PERIOD_OF[partition])
        assert Layout(convention, partition).relpath(key) == plain
        assert Layout(convention, partition, file_name_metadata=True).relpath(
            key, codec="gzip", checksum6="a3f2b1") == with_meta


# --------------------------------------------------------------------------- collisions

@pytest.mark.parametrize("convention,partition,metadata", ALL_LAYOUTS)
def test_hostile_symbols_sources_asset_classes_never_collide(convention, partition, metadata):
    lo = layout(convention, partition, metadata)
    period = PERIOD_OF[partition]
    for field in ("symbol", "source", "asset_class"):
        paths = set()
        for value in HOSTILE:
            values = {"symbol": "AAPL", "source": "sim", "asset_class": "equity", field: value}
            key = PartitionKey("live", type="Trade", period=period, **values)
            path = lo.relpath(key)
            assert all(n not in ("", ".", "..") for n in path.split("/"))
            assert lo.parse(path).key == key
            paths.add(path)
        assert len(paths) == len(HOSTILE), field


def test_two_sources_never_share_a_file():
    for convention, partition, metadata in ALL_LAYOUTS:
        lo = layout(convention, partition, metadata)
        keys = [PartitionKey("live", s, "equity", "AAPL", "Trade", PERIOD_OF[partition])
                for s in ("alpaca", "ib", "sim", "Sim", "a_b", "a~b")]
        paths = {lo.relpath(k, part=p) for k in keys for p in (1, 2)}
        assert len(paths) == 2 * len(keys)


def test_encode_component_rule():
    assert encode_component("BRK/B") == "BRK%2FB"
    assert encode_component("BRK.B") == "BRK%2EB"
    assert encode_component("BRK_B") == "BRK%5FB"
    assert encode_component("BRK%2FB") == "BRK%252FB"
    assert encode_component("ES=F") == "ES%3DF"
    assert encode_component("^GSPC") == "%5EGSPC"
    assert encode_component("..") == "%2E%2E"
    assert encode_component("a b") == "a%20b"
    assert encode_component("a~b") == "a%7Eb"
    assert encode_component("Ñ") == "%C3%91"
    assert encode_component("日本") == "%E6%97%A5%E6%9C%AC"
    assert encode_component("Abc-09") == "Abc-09"
    encoded = [encode_component(s) for s in HOSTILE]
    assert len(set(encoded)) == len(HOSTILE)
    assert all(re.fullmatch(r"(?:[A-Za-z0-9-]|%[0-9A-F]{2})+", e) for e in encoded)
    assert [decode_component(e) for e in encoded] == HOSTILE


@pytest.mark.parametrize("bad", ["", "\ud800"])
def test_encode_component_rejects(bad):
    with pytest.raises(ValueError):
        encode_component(bad)


@pytest.mark.parametrize("bad", ["", "a/b", "a.b", "a_b", "%2f", "%41", "%C3", "%", "%G0", "é"])
def test_decode_component_rejects_non_canonical(bad):
    with pytest.raises(ValueError):
        decode_component(bad)


@given(st.text(min_size=1, max_size=30))
def test_encode_decode_inverse(value):
    assert decode_component(encode_component(value)) == value


# --------------------------------------------------------------------------- parse rejects

@pytest.mark.parametrize("path", [
    "live/AAPL/Trade/2024-01-15~sim~equity.jsonl.manifest.json",
    "live/AAPL/Trade/manifest.json",
    "_archive/AAPL/Trade/2024-01-15~sim~equity.jsonl",
    "/live/AAPL/Trade/2024-01-15~sim~equity.jsonl",
    "consolidated/AAPL/Trade/2024-01-15~sim~equity.jsonl",
    "live/AAPL/Trade/2024-01-15~sim~equity.orc",
    "live/AAPL/Trade/2024-01-15~sim~equity.jsonl.tmp",
    "live/AAPL/Quote/2024-01-15~sim~equity.jsonl",
    "live/AAPL/Trade/2024-01-15~sim.jsonl",
    "live/AAPL/Trade/2024-01-15~sim~equity.p1.jsonl",
    "live/AAPL/Trade/2024-01-15~sim~equity.p02.jsonl",
    "live/AAPL/Trade/2024-02-30~sim~equity.jsonl",
    "live/AAPL/Trade/2024-01-15_14~sim~equity.jsonl",
    "live/BRK%2fB/Trade/2024-01-15~sim~equity.jsonl",
    "live/%41APL/Trade/2024-01-15~sim~equity.jsonl",
    "live/../Trade/2024-01-15~sim~equity.jsonl",
    "live/AAPL//Trade/2024-01-15~sim~equity.jsonl",
    "live/AAPL/Trade/2024-01-15~sim~equity.jsonl/",
    "live\\AAPL\\Trade\\2024-01-15~sim~equity.jsonl",
])
def test_parse_rejects_non_data_files(path):
    lo = Layout("BySymbol", "Daily")
    with pytest.raises(ValueError):
        lo.parse(path)


def test_parse_rejects_inconsistent_metadata_name():
    lo = Layout("BySymbol", "Daily", file_name_metadata=True)
    ok = "live/AAPL/Trade/AAPL_Trade_2024-01-15_alpaca~equity.jsonl"
    assert lo.parse(ok).key.symbol == "AAPL"
    for bad in ("live/MSFT/Trade/AAPL_Trade_2024-01-15_alpaca~equity.jsonl",
                "live/AAPL/Trade/AAPL_BboQuote_2024-01-15_alpaca~equity.jsonl",
                "live/AAPL/Trade/AAPL_Trade_2024-01-15_alpaca_A3F2B1~equity.jsonl",
                "live/AAPL/Trade/AAPL_Trade_2024-01-15_alpaca_a3f2b~equity.jsonl"):
        with pytest.raises(ValueError):
            lo.parse(bad)
    canon = Layout("Canonical", "Daily", file_name_metadata=True)
    with pytest.raises(ValueError, match="canonical"):
        canon.parse("live/2024/01/16/alpaca/AAPL/AAPL_Trade_2024-01-15_alpaca~equity.jsonl")


def test_relpath_validates_inputs():
    lo = Layout("BySymbol", "Daily")
    good = PartitionKey("live", "sim", "equity", "AAPL", "Trade", "2024-01-15")
    bad_keys = [dataclasses.replace(good, **{f: v}) for f, v in [("root", "_archive"), ("type", "Quote"), ("symbol", ""),
                             ("source", ""), ("asset_class", ""), ("period", "2024-01"),
                             ("period", ""), ("period", "2024-13-01")]]
    for key in bad_keys:
        with pytest.raises(ValueError):
            lo.relpath(key)
    for kwargs in ({"codec": "lz4"}, {"part": 0}, {"part": True}, {"checksum6": "xyz"}):
        with pytest.raises(ValueError):
            lo.relpath(good, **kwargs)
    with pytest.raises(NameTooLongError):
        lo.relpath(PartitionKey("live", "sim", "equity", "日" * 90, "Trade", "2024-01-15"))
    for args in (("Nested", "Daily"), ("Flat", "Weekly")):
        with pytest.raises(ValueError):
            Layout(*args)
    for prefix in ("a/b", ".x", "a*", "{symbol}", "-x"):
        with pytest.raises(ValueError):
            Layout("Flat", "Daily", file_prefix=prefix)


# --------------------------------------------------------------------------- periods

def test_period_label_formats():
    ts = int(datetime(2024, 1, 15, 14, 30, 5, tzinfo=timezone.utc).timestamp()) * 10**9 + 7
    assert period_label(period_start(ts, "Daily"), "Daily") == "2024-01-15"
    assert period_label(period_start(ts, "Hourly"), "Hourly") == "2024-01-15_14"
    assert period_label(period_start(ts, "Monthly"), "Monthly") == "2024-01"
    assert period_start(ts, "None") is None and period_end(0, "None") is None
    assert period_label(None, "None") == "" and parse_period_label("", "None") is None
    with pytest.raises(ValueError):
        period_label(None, "Daily")
    with pytest.raises(ValueError):
        period_start(ts, "Weekly")


def test_period_boundaries():
    midnight = int(datetime(2024, 1, 16, tzinfo=timezone.utc).timestamp()) * 10**9
    last = midnight - 1  # 2024-01-15T23:59:59.999999999
    assert period_label(period_start(last, "Daily"), "Daily") == "2024-01-15"
    assert period_label(period_start(midnight, "Daily"), "Daily") == "2024-01-16"
    assert period_label(period_start(last, "Hourly"), "Hourly") == "2024-01-15_23"
    assert period_end(period_start(last, "Daily"), "Daily") == midnight
    feb_end = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp()) * 10**9
    assert period_label(period_start(feb_end - 1, "Daily"), "Daily") == "2024-02-29"  # leap day
    assert period_label(period_start(feb_end - 1, "Monthly"), "Monthly") == "2024-02"
    feb_start = parse_period_label("2024-02", "Monthly")
    assert period_end(feb_start, "Monthly") - feb_start == 29 * DAY_NS
    assert parse_period_label("2023-02", "Monthly") + 28 * DAY_NS == parse_period_label("2023-03", "Monthly")
    assert parse_period_label("2024-02-29", "Daily") + DAY_NS == feb_end
    for bad in ("2023-02-29", "2024-13-01", "2024-00-10", "0000-01-01", "2024-1-15", "2024-01-15 "):
        with pytest.raises(ValueError):
            parse_period_label(bad, "Daily")
    with pytest.raises(ValueError):
        parse_period_label("2024-01-15_24", "Hourly")
    with pytest.raises(ValueError):
        period_end(midnight + 1, "Daily")


def test_pre_1970():
    assert period_start(-1, "Daily") == -DAY_NS
    assert period_label(-1, "Daily") == "1969-12-31"
    assert period_label(-1, "Hourly") == "1969-12-31_23"
    assert period_label(period_start(-1, "Monthly"), "Monthly") == "1969-12"
    assert period_start(-1, "Monthly") == -31 * DAY_NS
    assert parse_period_label("1969-12-31_23", "Hourly") == -HOUR_NS
    assert period_label(INT64[0], "Daily") == "1677-09-21"
    assert period_label(INT64[1], "Hourly") == "2262-04-11_23"


def test_periods_agree_with_datetime():
    rng = random.Random(42)
    lo_ns = int((datetime(1, 1, 2, tzinfo=timezone.utc) - EPOCH).total_seconds()) * 10**9
    hi_ns = int((datetime(9999, 12, 30, tzinfo=timezone.utc) - EPOCH).total_seconds()) * 10**9
    samples = [rng.randint(*INT64) for _ in range(2000)] + [rng.randint(lo_ns, hi_ns) for _ in range(2000)]
    for ts in samples:
        dt = to_dt(ts)
        expected = {
            "Daily": dt.replace(hour=0, minute=0, second=0, microsecond=0),
            "Hourly": dt.replace(minute=0, second=0, microsecond=0),
            "Monthly": dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        }
        for partition, start_dt in expected.items():
            start = period_start(ts, partition)
            assert to_dt(start) == start_dt and start % 1000 == 0
            end = period_end(start, partition)
            assert start <= ts < end
            assert period_start(end, partition) == end and period_start(end - 1, partition) == start
            label = period_label(start, partition)
            assert label == period_label(ts, partition)
            assert parse_period_label(label, partition) == start
        assert period_label(ts, "Daily") == dt.strftime("%Y-%m-%d") or dt.year < 1000
        assert period_label(ts, "Hourly") == f"{dt.year:04d}-{dt:%m-%d_%H}"


# --------------------------------------------------------------------------- globs with DuckDB

def _tree_keys(partition: str):
    periods = {"None": [""], "Daily": ["2024-01-15", "1969-12-31"],
               "Hourly": ["2024-01-15_14", "2024-01-15_15"], "Monthly": ["2024-01", "2024-02"]}
    for root, type_, source, symbol, period in itertools.product(
            TIER_ROOTS, ("Trade", "BboQuote", "HistoricalBar"), ("alpaca", "Trade"),
            ("BRK/B", "Trade", "all"), periods[partition]):
        yield PartitionKey(root, source, "equity" if symbol != "all" else "fx/spot", symbol,
                           type_, period)


@pytest.mark.parametrize("convention,partition",
                         list(itertools.product(NAMING_CONVENTIONS, DATE_PARTITIONS)))
def test_globs_match_exactly_with_duckdb(tmp_path, convention, partition):
    con = duckdb.connect()
    for metadata, prefix in ((False, ""), (True, ""), (False, "md_")):
        base = tmp_path / f"m{int(metadata)}{prefix}"
        lo = layout(convention, partition, metadata, prefix)
        expected: dict[tuple[str, str, str], set[str]] = {}
        for i, key in enumerate(_tree_keys(partition)):
            codec = tuple(CODEC_EXT)[i % 3]
            for part, checksum in ((1, "a3f2b1"), (2, None)):
                rel = lo.relpath(key, codec=codec, part=part, checksum6=checksum)
                target = base / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("{}\n")
                (base / (rel + ".manifest.json")).write_text("{}")
                (target.parent / "manifest.json").write_text("{}")
                stem = target.name.split(".")[0]
                (target.parent / f"{stem}.manifest.json").write_text("{}")
                expected.setdefault((key.root, key.type, codec), set()).add(target.as_posix())
        for (root, type_, codec), files in expected.items():
            (pattern,) = lo.globs(root, type_, codec)
            assert not pattern.startswith("/") and ".." not in pattern
            got = {row[0] for row in con.execute("SELECT file FROM glob(?)",
                                                 [f"{base.as_posix()}/{pattern}"]).fetchall()}
            assert got == files, (lo, pattern)
        # and no pattern matches anything for a combination with no files
        for root, type_, codec in itertools.product(TIER_ROOTS, EVENT_TYPES, CODEC_EXT):
            if (root, type_, codec) not in expected:
                (pattern,) = lo.globs(root, type_, codec)
                rows = con.execute("SELECT file FROM glob(?)",
                                   [f"{base.as_posix()}/{pattern}"]).fetchall()
                assert rows == []


def test_layout_equality():
    assert Layout("Flat", "Daily") == Layout("Flat", "Daily")
    assert len({Layout("Flat", "Daily"), Layout("Flat", "Daily"), Layout("Flat", "Hourly")}) == 2
    assert Layout("Flat", "Daily") != Layout("Flat", "Daily", file_name_metadata=True)


def test_globs_validate_arguments():
    lo = Layout("BySymbol", "Daily")
    assert lo.globs("live", "Trade", "gzip") == ["live/*/Trade/????-??-??~*~*.jsonl.gz"]
    for args in (("_archive", "Trade", "none"), ("live", "Quote", "none"), ("live", "Trade", "lz4")):
        with pytest.raises(ValueError):
            lo.globs(*args)
