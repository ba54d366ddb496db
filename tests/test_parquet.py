"""The lifecycle's Parquet and codec engine (mdcsql.lifecycle.parquet / codecs) on real files."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from mdcsql import events as ev
from mdcsql.catalog.views import JSON_COLUMNS
from mdcsql.errors import ConfigError, InputError, MdcsqlError
from mdcsql.lifecycle import parquet as P
from mdcsql.lifecycle.codecs import (CodecSpec, VerificationError, jsonl_digest, parse_codec,
                                     recompress_jsonl)

T0 = 1_705_329_000_000_000_000          # 2024-01-15T14:30:00Z
LEAN_SPY = "lean/equity/usa/tick/spy/20131007_trade.zip"
LEAN_ZIP_BYTES = 905_882


# ---- helpers ------------------------------------------------------------------------------------
def write_jsonl(path: Path, records: list[dict], codec: str = "none") -> Path:
    data = b"".join(ev.encode(ev.normalize(r)) for r in records)
    if codec == "gzip":
        data = gzip.compress(data, mtime=0)
    elif codec == "zstd":
        data = zstandard.ZstdCompressor(level=3).compress(data)
    path.write_bytes(data)
    return path


def trades(n: int, *, symbol="AAPL", start=T0, step=1_000_003, scale=2, seq0=1) -> list[dict]:
    out = []
    for i in range(n):
        price = f"{187 + i % 13}.{(i * 7) % 10 ** scale:0{scale}d}" if scale else str(187 + i % 13)
        out.append({"type": "Trade", "symbol": symbol, "source": "sim", "ts": start + (i // 3) * step,
                    "recv_ts": None if i % 5 == 0 else start + i * step + 17, "seq": seq0 + i,
                    "price": price, "size": str(100 * (1 + i % 4)), "side": "buy" if i % 2 else "sell",
                    "trade_id": None if i % 7 == 0 else f"t{i}", "venue": "XNAS" if i % 3 else "ARCX",
                    "conditions": None if i % 4 == 0 else (["@", "F"] if i % 4 == 1 else [])})
    return out


def edge_events() -> dict[str, list[dict]]:
    """A few events of every type with the awkward values: nulls, negative and long decimals,
    ns timestamps, unicode, empty lists."""
    base = {"symbol": "BRK/B", "source": "src-é"}
    return {
        "Trade": [
            {**base, "type": "Trade", "ts": T0 + 1, "recv_ts": T0 + 999, "seq": 3, "price": "-12.75", "size": "0.000000001",
             "side": "sell", "trade_id": "x\"y", "venue": "XNYS", "conditions": ["@", "ü"]},
            {**base, "type": "Trade", "ts": T0 + 1, "seq": 1, "price": "99999999999999999999.5", "size": "1",
             "conditions": []},
            {**base, "type": "Trade", "ts": T0, "seq": None, "price": "0.10", "size": "100"}],
        "BboQuote": [
            {**base, "type": "BboQuote", "ts": T0 + 5, "seq": 1, "bid_price": "187.09", "bid_size": "300",
             "ask_price": "187.1", "ask_size": "200", "venue": "XNAS"},
            {**base, "type": "BboQuote", "ts": T0 + 6, "seq": 2, "bid_price": None, "ask_price": "187.123456"}],
        "L2Snapshot": [
            {**base, "type": "L2Snapshot", "ts": T0 + 7, "seq": 9, "bids": [["375.11", "100"], ["375.1", "2.5"]],
             "asks": [["375.12", "50"]], "venue": "IEX"},
            {**base, "type": "L2Snapshot", "ts": T0 + 8, "seq": 10, "bids": [], "asks": [["1", "0.001"]]}],
        "OrderFlow": [
            {**base, "type": "OrderFlow", "ts": T0 + 9, "order_id": "6477321", "action": "add", "side": "sell",
             "price": "4790.25", "size": "3", "venue": "XCME"},
            {**base, "type": "OrderFlow", "ts": T0 + 10, "order_id": "6477321", "action": "cancel", "price": None,
             "size": "3"}],
        "HistoricalBar": [
            {**base, "type": "HistoricalBar", "ts": T0, "open": "186.06", "high": "186.74", "low": "185.19",
             "close": "185.92", "volume": "40477800", "interval": "1d"},
            {**base, "type": "HistoricalBar", "ts": T0 + 86_400 * 10**9, "open": "1.1", "high": "1.2",
             "low": "1.05", "close": "1.15", "volume": None, "interval": "1d"}],
        "Heartbeat": [
            {**base, "type": "Heartbeat", "symbol": "*", "ts": T0 + 11, "status": "connected"},
            {**base, "type": "Heartbeat", "symbol": "*", "ts": T0 + 12, "status": None}],
    }


def canonical(value, view_type: str):
    """A value as compared across formats: decimals (text or Decimal) as Decimal, lists recursively."""
    if value is None or "DECIMAL" not in view_type:
        return value
    if isinstance(value, list):
        return [canonical(v, view_type[:-2]) for v in value]
    return Decimal(value)


def parquet_records(path: Path) -> list[dict]:
    table = pq.read_table(path)
    # datetime stops at microseconds (and without pandas, to_pylist refuses ns): compare int64 ns
    ints = {k: table[k].cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_pylist() for k in ("ts", "recv_ts")}
    for k in ("ts", "recv_ts"):
        table = table.set_column(table.schema.get_field_index(k), k, pa.array(ints[k], pa.int64()))
    out = table.to_pylist()
    for i, row in enumerate(out):
        row["ts"], row["recv_ts"] = ints["ts"][i], ints["recv_ts"][i]
    return out


def source_records(records: list[dict]) -> list[dict]:
    return [json.loads(ev.encode(ev.normalize(r))) for r in records]


def sort_key(r):
    return (r["symbol"], r["ts"], r["seq"] is None, r["seq"] or 0)


# ---- codec specs --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, tier, expected", [
    ("none", None, ("none", None)), ("gzip", None, ("gzip", 6)), ("gzip-9", None, ("gzip", 9)),
    ("zstd", None, ("zstd", 12)), ("ZSTD-12", None, ("zstd", 12)), ("zstd-max", None, ("zstd", 19)),
    ("zstd-22", None, ("zstd", 22)), ("lz4", None, ("lz4", None)), ("snappy", None, ("snappy", None)),
    ("brotli", None, ("brotli", 9)), ("brotli-max", None, ("brotli", 11)),
    ("zstd", "archive", ("zstd", 19)), ("zstd", "cold", ("zstd", 12)), ("gzip", "warm", ("gzip", 6)),
    ("", "warm", ("gzip", 6)), (None, "archive", ("zstd", 19)), ("gzip", "archive", ("gzip", 6)),
])
def test_parse_codec(text, tier, expected):
    spec = parse_codec(text, tier=tier)
    assert (spec.codec, spec.level) == expected
    assert parse_codec(str(spec)) == spec


@pytest.mark.parametrize("text, kwargs, message", [
    ("zip", {}, "unknown codec"), ("gzip-10", {}, "out of range"), ("zstd-0", {}, "out of range"),
    ("lz4-3", {}, "takes no level"), ("gzip-x", {}, "not a number"), ("", {}, "empty codec"),
    ("lz4", {"for_format": "jsonl"}, "cannot be used for JSONL"),
    ("brotli-5", {"for_format": "jsonl"}, "read_json"), ("snappy", {"for_format": "jsonl"}, "valid for Parquet"),
    ("zstd", {"tier": "lukewarm"}, "unknown tier"),
])
def test_parse_codec_errors(text, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        parse_codec(text, **kwargs)


# ---- JSONL re-compression -----------------------------------------------------------------------
@pytest.mark.parametrize("src_codec", ["none", "gzip", "zstd"])
@pytest.mark.parametrize("spec", ["gzip-6", "zstd-19", "none", "zstd-max"])
def test_recompress_jsonl_round_trip(tmp_path, src_codec, spec):
    records = trades(500)
    src = write_jsonl(tmp_path / f"src.{src_codec}", records, src_codec)
    raw = b"".join(ev.encode(ev.normalize(r)) for r in records)
    import hashlib
    raw_sha = hashlib.sha256(raw).hexdigest()
    dst = tmp_path / "out.lc.tmp"
    res = recompress_jsonl(src, dst, spec, expect_raw_sha256=raw_sha)
    assert (res.rows, res.raw_sha256, res.raw_bytes) == (500, raw_sha, len(raw))
    assert jsonl_digest(dst) == (raw_sha, 500, len(raw))
    assert res.size_bytes == dst.stat().st_size and (spec == "none" or res.size_bytes < len(raw))
    # DuckDB (the views' reader) reads the result when named with its codec's suffix
    suffix = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}[res.codec]
    named = dst.rename(tmp_path / f"out{suffix}")
    n = duckdb.connect().execute("SELECT count(*) FROM read_json(?, format='newline_delimited')",
                                 [str(named)]).fetchone()[0]
    assert n == 500


def test_recompress_refuses_parquet_only_codecs_and_damaged_sources(tmp_path):
    src = write_jsonl(tmp_path / "src.jsonl.gz", trades(50), "gzip")
    for codec in ("lz4", "snappy", "brotli-4"):
        with pytest.raises(ConfigError, match="cannot be used for JSONL"):
            recompress_jsonl(src, tmp_path / "x.tmp", codec)
    dst = tmp_path / "y.tmp"
    with pytest.raises(VerificationError, match="raw_sha256"):
        recompress_jsonl(src, dst, "zstd", 3, expect_raw_sha256="0" * 64)
    assert not dst.exists()
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(src.read_bytes()[:-30])          # truncated gzip stream
    with pytest.raises(MdcsqlError):
        recompress_jsonl(broken, dst, "zstd-3")
    assert not dst.exists()


# ---- conversion: exact round trip of every type ---------------------------------------------------
@pytest.mark.parametrize("type_", list(JSON_COLUMNS))
@pytest.mark.parametrize("codec", ["zstd", "snappy", "zstd-19"])
def test_convert_every_type_round_trips_exactly(tmp_path, type_, codec):
    records = edge_events()[type_]
    src = write_jsonl(tmp_path / "src.jsonl.zst", records, "zstd")
    res = P.convert([src], tmp_path / "out.lc.tmp", type_, compression=codec)
    assert res.rows == len(records) and res.codec == codec.split("-")[0]
    assert (res.rows, res.fingerprint) == P.fingerprint([src], type_)
    got = parquet_records(res.path)
    want = sorted(source_records(records), key=sort_key)
    assert [r["seq"] for r in got] == [r["seq"] for r in want]        # sorted by symbol, ts, seq
    for g, w in zip(got, want):
        for name, vt in JSON_COLUMNS[type_].items():
            assert canonical(g[name], vt) == canonical(w[name], vt), (name, g[name], w[name])
    meta = pq.read_metadata(res.path)
    assert meta.format_version == "2.6"
    assert meta.row_group(0).column(0).compression.lower() == res.codec
    assert meta.row_group(0).column(0).statistics.has_min_max
    assert res.first_ts == min(r["ts"] for r in want) and res.last_ts == max(r["ts"] for r in want)


def test_layout_smallest_exact_types_and_encodings(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", trades(3000, scale=3) + trades(10, symbol="MSFT", scale=0))
    res = P.convert([src], tmp_path / "a.tmp", "Trade", compression="zstd-12")
    assert res.column_types["price"] == "decimal128(9, 3)"
    assert res.column_types["size"] == "decimal128(9, 0)"
    assert res.column_types["ts"] == "timestamp[ns, tz=UTC]"          # 1_000_003 ns steps: ns needed
    assert res.symbols == ("AAPL", "MSFT")
    md = pq.ParquetFile(res.path).metadata
    cols = {md.row_group(0).column(i).path_in_schema: md.row_group(0).column(i) for i in range(md.num_columns)}
    assert "DELTA_BINARY_PACKED" in cols["ts"].encodings and "DELTA_BINARY_PACKED" in cols["seq"].encodings
    assert "BYTE_STREAM_SPLIT" in cols["price"].encodings
    assert "RLE_DICTIONARY" in cols["venue"].encodings and "RLE_DICTIONARY" in cols["conditions.list.element"].encodings
    assert cols["price"].physical_type == "INT32"
    assert [s.column_index for s in md.row_group(0).sorting_columns] == [2, 0, 4]
    # millisecond data is stored in ms, exactly
    ms = write_jsonl(tmp_path / "ms.jsonl", trades(100, step=1_000_000))
    res = P.convert([ms], tmp_path / "ms.tmp", "Trade")
    assert res.column_types["ts"] == "timestamp[ms, tz=UTC]"
    assert [r["ts"] for r in parquet_records(res.path)] == sorted(r["ts"] for r in trades(100, step=1_000_000))


def test_row_groups_prune_by_symbol_and_ts(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl.gz", trades(4000) + trades(4000, symbol="MSFT", start=T0 + 10**12), "gzip")
    res = P.convert([src], tmp_path / "a.tmp", "Trade", row_group_size=1000)
    assert res.row_groups == 8
    md = pq.read_metadata(res.path)
    ts_col = [md.row_group(0).column(i).path_in_schema for i in range(md.num_columns)].index("ts")
    bounds = [(md.row_group(g).column(ts_col).statistics.min_raw, md.row_group(g).column(ts_col).statistics.max_raw)
              for g in range(md.num_row_groups)]
    assert all(a[1] <= b[0] for a, b in zip(bounds, bounds[1:]))       # disjoint, ascending ts
    sym_col = [md.row_group(0).column(i).path_in_schema for i in range(md.num_columns)].index("symbol")
    syms = [(md.row_group(g).column(sym_col).statistics.min, md.row_group(g).column(sym_col).statistics.max)
            for g in range(md.num_row_groups)]
    assert syms == [("AAPL", "AAPL")] * 4 + [("MSFT", "MSFT")] * 4
    # pyarrow's dataset reader skips the row groups whose statistics exclude the filter
    import pyarrow.dataset as ds
    frag = next(ds.dataset(res.path, format="parquet").get_fragments())
    kept = frag.split_by_row_group(ds.field("symbol") == "MSFT")
    assert len(kept) == 4
    con = duckdb.connect()
    assert con.execute("SELECT count(*) FROM read_parquet(?) WHERE symbol = 'MSFT'", [str(res.path)]).fetchone()[0] == 4000


# ---- fingerprint --------------------------------------------------------------------------------
def test_fingerprint_detects_change_drop_and_duplicate(tmp_path):
    records = trades(300)
    base = P.fingerprint([write_jsonl(tmp_path / "a.jsonl", records)], "Trade")
    changed = [dict(r) for r in records]
    changed[17]["price"] = "187.01" if records[17]["price"] != "187.01" else "187.02"
    dropped = records[:100] + records[101:]
    dup = records + [records[5]]
    trailing = [dict(r) for r in records]
    trailing[3]["price"] = trailing[3]["price"] + "0"               # same value, other text: equal
    results = {name: P.fingerprint([write_jsonl(tmp_path / f"{name}.jsonl", recs)], "Trade")
               for name, recs in [("changed", changed), ("dropped", dropped), ("dup", dup), ("trailing", trailing)]}
    assert results["changed"][0] == 300 and results["changed"][1] != base[1]
    assert results["dropped"][0] == 299 and results["dropped"][1] != base[1]
    assert results["dup"][0] == 301 and results["dup"][1] != base[1]
    assert results["trailing"] == base
    # order-independent, and additive over disjoint sets
    shuffled = records[150:] + records[:150]
    assert P.fingerprint([write_jsonl(tmp_path / "s.jsonl.gz", shuffled, "gzip")], "Trade") == base
    halves = [P.fingerprint([write_jsonl(tmp_path / f"h{i}.jsonl", part)], "Trade")
              for i, part in enumerate((records[:120], records[120:]))]
    assert P.combine_fingerprints(halves) == base
    assert P.fingerprint([tmp_path / "h0.jsonl", tmp_path / "h1.jsonl"], "Trade") == base


def test_split_by_ts_range_and_merge_back(tmp_path):
    records = trades(900) + trades(300, symbol="MSFT", seq0=5000)
    src = write_jsonl(tmp_path / "day.jsonl.zst", records, "zstd")
    whole = P.fingerprint([src], "Trade")
    cut = T0 + 150 * 1_000_003
    a = P.convert([src], tmp_path / "a.tmp", "Trade", ts_range=(None, cut))
    b = P.convert([src], tmp_path / "b.tmp", "Trade", ts_range=(cut, None))
    assert a.rows + b.rows == len(records) and a.last_ts < cut <= b.first_ts
    assert P.combine_fingerprints([(a.rows, a.fingerprint), (b.rows, b.fingerprint)]) == whole
    merged = P.convert([b.path, a.path], tmp_path / "m.tmp", "Trade", compression="zstd-19")
    assert (merged.rows, merged.fingerprint) == whole
    rows = parquet_records(merged.path)
    assert [sort_key(r) for r in rows] == sorted(sort_key(r) for r in rows)
    # a Parquet and a JSONL source together, restricted to a range
    mixed = P.convert([a.path, src], tmp_path / "x.tmp", "Trade", ts_range=(T0, cut))
    assert mixed.rows == 2 * a.rows
    assert P.fingerprint([mixed.path], "Trade") == P.combine_fingerprints([(a.rows, a.fingerprint)] * 2)


def test_verification_failure_removes_the_tmp(tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "a.jsonl", trades(50))
    real_write = P._write

    def lossy(table, dst, *args):              # a writer bug: the last row goes missing
        real_write(table.slice(0, table.num_rows - 1), dst, *args)

    monkeypatch.setattr(P, "_write", lossy)
    dst = tmp_path / "a.lc.tmp"
    with pytest.raises(VerificationError, match="rows 49 vs 50"):
        P.convert([src], dst, "Trade")
    assert not dst.exists()
    assert issubclass(VerificationError, MdcsqlError)


def test_bad_input_gets_clear_errors(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", trades(5))
    with pytest.raises(ConfigError, match="unknown event type"):
        P.convert([src], tmp_path / "o.tmp", "Trades")
    with pytest.raises(InputError, match="does not exist"):
        P.convert([tmp_path / "nope.jsonl"], tmp_path / "o.tmp", "Trade")
    with pytest.raises(InputError, match="expected only BboQuote"):
        P.convert([src], tmp_path / "o.tmp", "BboQuote")
    with pytest.raises(ConfigError, match="empty"):
        P.convert([src], tmp_path / "o.tmp", "Trade", ts_range=(T0 + 5, T0))
    with pytest.raises(ConfigError, match="int nanoseconds"):
        P.fingerprint([src], "Trade", ts_range=(1.5, None))
    with pytest.raises(ConfigError, match="unknown codec"):
        P.convert([src], tmp_path / "o.tmp", "Trade", compression="zip")
    with pytest.raises(ConfigError, match="row_group_size"):
        P.convert([src], tmp_path / "o.tmp", "Trade", row_group_size=0)
    with pytest.raises(ConfigError, match="one of the sources"):
        P.convert([src], src, "Trade")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(src.read_bytes() + b'{"type":"Trade","ts":\n')
    with pytest.raises(InputError, match="bad.jsonl"):
        P.convert([bad], tmp_path / "o.tmp", "Trade")
    assert not (tmp_path / "o.tmp").exists()


# ---- the catalog views' reading of our files -----------------------------------------------------
# ---- the compact (archive) layout ------------------------------------------------------------------
def many_venues(n: int) -> list[dict]:
    """Trades with 20 venues (5-bit dictionary indices unpadded) among them the dummy values the
    padding would pick first, and conditions lists with nulls, empties and 24 distinct leaves."""
    venues = [f"V{i}" for i in range(18)] + ["\x000", "\x001"]
    out = trades(n, step=1_000_000)
    for i, r in enumerate(out):
        r["venue"] = None if i % 11 == 0 else venues[(i * 7) % 20]
        r["conditions"] = None if i % 13 == 0 else ([] if i % 17 == 0 else [f"c{i % 24}", "\x002"][: 1 + i % 2])
    return out


def test_compact_layout_is_the_archive_default_and_round_trips(tmp_path):
    records = many_venues(20_000)
    src = write_jsonl(tmp_path / "a.jsonl.gz", records, "gzip")
    compact = P.convert([src], tmp_path / "c.tmp", "Trade", compression="zstd", level=19)
    plain = P.convert([src], tmp_path / "p.tmp", "Trade", compression="zstd-19", compact=False)
    cold = P.convert([src], tmp_path / "k.tmp", "Trade", compression="zstd-12")
    assert compact.size_bytes < plain.size_bytes
    for res in (compact, plain, cold):
        assert (res.rows, res.fingerprint) == P.fingerprint([src], "Trade")
    got = parquet_records(compact.path)
    want = sorted(source_records(records), key=sort_key)
    for g, w in zip(got, want, strict=True):
        for name, vt in JSON_COLUMNS["Trade"].items():
            assert canonical(g[name], vt) == canonical(w[name], vt), (name, g[name], w[name])
    md = pq.read_metadata(compact.path)
    cols = {md.row_group(0).column(i).path_in_schema: md.row_group(0).column(i) for i in range(md.num_columns)}
    assert not cols["ts"].has_offset_index                         # one page per chunk, no page index
    assert pq.read_metadata(cold.path).row_group(0).column(0).has_offset_index
    # padded dictionaries: 8-bit indices, the dummies unreferenced and invisible to statistics
    f = pq.ParquetFile(compact.path, read_dictionary=["conditions.list.element"])
    leaf = f.read(columns=["conditions"])["conditions"].chunk(0).values
    assert len(leaf.dictionary) == 129 and "\x002" in leaf.dictionary.to_pylist()
    stats = cols["conditions.list.element"].statistics
    assert (stats.min, stats.max) == ("\x002", "c9")
    con = duckdb.connect()
    assert con.execute("SELECT count(*) FROM read_parquet(?) WHERE venue = '\x000'",
                       [str(compact.path)]).fetchone()[0] == sum(r["venue"] == "\x000" for r in records)


def test_compact_layout_keeps_row_groups_and_rejects_bad_flags(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", many_venues(40_000))
    res = P.convert([src], tmp_path / "a.tmp", "Trade", compression="zstd-19", row_group_size=16_384)
    assert res.row_groups == 3 and (res.rows, res.fingerprint) == P.fingerprint([src], "Trade")
    with pytest.raises(ConfigError, match="compact must be"):
        P.convert([src], tmp_path / "b.tmp", "Trade", compact="yes")
    assert not (tmp_path / "b.tmp").exists()


def test_aligned_dictionary_widths():
    def entries(n_distinct, rows=20_000):
        arr = pa.array([f"v{i % n_distinct}" for i in range(rows)])
        out = P._aligned_dictionary(arr)
        assert out.cast(pa.string()).equals(arr)
        return len(out.dictionary) if pa.types.is_dictionary(out.type) else None
    assert [entries(n) for n in (2, 4, 5, 8, 9, 16, 17, 100, 128, 129, 300)] == \
        [None, None, 9, 9, None, None, 129, 129, 129, None, None]
    assert P._aligned_dictionary(pa.array(["a", "b", "c", "d", "e"] * 10)).type == pa.string()  # too few rows


def _view_select(type_: str) -> str:
    cols = []
    for name, vt in JSON_COLUMNS[type_].items():
        expr = f"epoch_ns({name})" if name in ("ts", "recv_ts") else name
        cols.append(f"CAST({expr} AS {vt}) AS {name}")
    return ", ".join(cols)


def test_views_read_two_files_with_different_scales(tmp_path):
    one = trades(400, scale=2)
    two = trades(300, symbol="MSFT", scale=5, seq0=9000, step=1_000_000)
    j1, j2 = write_jsonl(tmp_path / "1.jsonl.gz", one, "gzip"), write_jsonl(tmp_path / "2.jsonl", two)
    p1 = P.convert([j1], tmp_path / "1.parquet", "Trade").path
    p2 = P.convert([j2], tmp_path / "2.parquet", "Trade", compression="zstd-19").path
    assert pq.read_schema(p1).field("price").type != pq.read_schema(p2).field("price").type
    cols = ", ".join(JSON_COLUMNS["Trade"])
    struct = "{" + ", ".join(f"'{k}': '{v}'" for k, v in JSON_COLUMNS["Trade"].items()) + "}"
    con = duckdb.connect()
    checksum = f"SELECT count(*), md5(string_agg(to_json(t)::VARCHAR, '|' ORDER BY symbol, ts, seq)) FROM (SELECT {cols} FROM {{rel}}) t"
    from_json = con.execute(checksum.format(rel=f"read_json(?, format='newline_delimited', columns={struct})"),
                            [[str(j1), str(j2)]]).fetchone()
    from_parquet = con.execute(checksum.format(
        rel=f"(SELECT {_view_select('Trade')}, filename FROM read_parquet(?, filename=true, union_by_name=true))"),
        [[str(p1), str(p2)]]).fetchone()
    assert from_json == from_parquet and from_json[0] == 700


# ---- the archive-tier size target on real SPY ticks ----------------------------------------------
@pytest.fixture(scope="module")
def spy_jsonl(tmp_path_factory):
    from tests.conftest import SHARED_DATA
    zip_path = SHARED_DATA / LEAN_SPY
    if not zip_path.is_file():
        pytest.skip(f"{zip_path} is absent (the shared sample data ships beside the repo)")
    from mdcsql.sources import lean
    out = tmp_path_factory.mktemp("spy") / "spy.jsonl.gz"
    with gzip.open(out, "wb", compresslevel=1) as f:
        for _asset, table in lean.read(zip_path):
            f.write(ev.encode_table(table))
    return out


def test_spy_archive_tier_size_round_trip_and_fingerprint(spy_jsonl, tmp_path):
    res = P.convert([spy_jsonl], tmp_path / "spy.lc.tmp", "Trade", compression="zstd-19")
    assert res.rows == 250_601
    assert (res.rows, res.fingerprint) == P.fingerprint([spy_jsonl], "Trade")
    ratio = res.size_bytes / LEAN_ZIP_BYTES
    print(f"SPY 2013-10-07 archive tier: {res.size_bytes} bytes = {ratio:.3f} x Lean zip, "
          f"{res.size_bytes / res.rows:.2f} B/trade")
    assert ratio <= 0.5, ratio                  # measured 0.498 (docs/lifecycle-parquet.md)
    # every column kept, exactly
    got = pq.read_table(res.path)
    assert got.column_names == list(JSON_COLUMNS["Trade"])
    src = duckdb.connect().execute(
        "SELECT ts, seq, price, size, venue, conditions FROM read_json(?, format='newline_delimited', "
        "columns={ts:'BIGINT', seq:'BIGINT', price:'VARCHAR', size:'VARCHAR', venue:'VARCHAR', conditions:'VARCHAR[]'})",
        [str(spy_jsonl)]).fetchall()
    ts = got["ts"].cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_pylist()
    cols = [got[c].to_pylist() for c in ("seq", "price", "size", "venue", "conditions")]
    assert len(src) == len(ts)
    want = list(zip(*src))
    assert ts == list(want[0]) and cols[0] == list(want[1])
    assert cols[3] == list(want[4]) and cols[4] == list(want[5])
    assert cols[1] == [Decimal(v) for v in want[2]] and cols[2] == [Decimal(v) for v in want[3]]


def test_spy_archive_tier_meets_half_of_lean_zip(spy_jsonl, tmp_path):
    """Issue 4: the archive tier (zstd-19, compact layout) in at most 0.5x Lean's zip."""
    res = P.convert([spy_jsonl], tmp_path / "spy.lc.tmp", "Trade", compression="zstd", level=19)
    assert res.size_bytes <= LEAN_ZIP_BYTES // 2, res.size_bytes    # measured 450 957 = 0.498x
    cold = P.convert([spy_jsonl], tmp_path / "cold.lc.tmp", "Trade", compression="zstd-19", compact=False)
    assert res.size_bytes < cold.size_bytes * 0.94                     # what the compact layout buys


def test_empty_inputs_and_ranges_give_empty_verified_files(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl.gz", trades(20), "gzip")
    res = P.convert([src], tmp_path / "none.tmp", "Trade", ts_range=(1, 2))
    assert (res.rows, res.fingerprint, res.first_ts, res.symbols) == (0, "0" * 16, None, ())
    assert pq.read_metadata(res.path).num_rows == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert P.convert([empty], tmp_path / "e.tmp", "Trade").rows == 0
    assert P.fingerprint([empty, res.path], "Trade") == (0, "0" * 16)


def test_spy_through_every_tier_reads_identically_in_views_and_reader(tmp_path):
    """The compact archive layout (padded dictionaries, DLBA venue, one page per chunk) end to end:
    real SPY ticks written, migrated hot -> warm -> cold -> archive, then read by the catalog view
    and the fast reader exactly as before."""
    from datetime import datetime, timezone
    from tests.conftest import SHARED_DATA
    from mdcsql.archive import Archive
    from mdcsql.lifecycle.migrate import migrate
    from mdcsql.reader import Reader
    from mdcsql.sources import lean
    zip_path = SHARED_DATA / LEAN_SPY
    if not zip_path.is_file():
        pytest.skip(f"{zip_path} is absent (the shared sample data ships beside the repo)")
    root = tmp_path / "a"
    root.mkdir()
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"Storage": {"Tiering": {"Enabled": True}, "Policies": {"Trade": {
        "Classification": "Critical", "HotTierDays": 1, "WarmTierDays": 2, "ColdTierDays": 3,
        "ArchiveTier": "perpetual"}}}}))
    archive = Archive.init(root, config=cfg)
    writer = archive.writer("lean")
    for _asset, table in lean.read(zip_path):
        writer.append_table(table)
    archive.close()
    archive = Archive.open(root)
    archive.sync_catalog(timeout=60)
    check = ("SELECT count(*), sum(hash(ts, recv_ts, symbol, source, seq, price, size, side, trade_id, venue, "
             "conditions)) FROM trades")

    def state():
        with archive.catalog(read_only=True, timeout=60) as cat:
            tiers = sorted(r[0] for r in cat.execute("SELECT tier FROM files WHERE type = 'Trade'").rows)
            return cat.execute(check).rows[0], tiers
    before, _ = state()
    day = Reader(root).read("Trade", "SPY", "2013-10-07", "2013-10-08")
    assert before[0] == day.num_rows == 250_601
    for days in (2, 4, 10):
        migrate(archive, as_of=datetime(2013, 10, 7 + days, tzinfo=timezone.utc))
    after, tiers = state()
    assert tiers == ["archive"] and after == before
    (path,) = [p for p in (root / "_archive").rglob("*.parquet")]
    assert path.stat().st_size <= LEAN_ZIP_BYTES // 2
    assert Reader(root).read("Trade", "SPY", "2013-10-07", "2013-10-08").equals(day)
