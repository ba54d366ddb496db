"""Lifecycle benchmark (issue 4): conversion throughput, bytes per event in each tier, the fast read
path against ArcticDB, and the SPY archive-tier target.

Sections (all in one run, one process, so the peers share the machine's state):
  conversion  JSONL.gz -> typed Parquet through mdcsql.lifecycle.parquet.convert (which verifies:
              re-reads the file, row count + content fingerprint against the source rows) beside
              DuckDB's own COPY (SELECT * FROM read_json(...)) TO ... (FORMAT parquet) on the same file,
              at the same codec and level (zstd-12, the cold tier's), and at DuckDB's defaults (snappy)
  bytes       bytes per trade / quote in each tier — hot JSONL, warm gzip-6 / zstd-12, cold Parquet
              zstd-12, archive Parquet zstd-19 — on simulator data and on the real Lean SPY / IBM ticks
              (replayed through the product's Lean reader and write path), ratios against raw JSONL
  arctic      N synthetic trades (20 symbols x 5 days) written into ArcticDB (LMDB) and into our cold
              tier (Parquet per symbol-day); one symbol-day read into an Arrow table through
              mdcsql.reader.Reader, ArcticDB and DuckDB over hive-partitioned Parquet; median of runs
  spy         the archive-tier file of SPY trades 2013-10-07 against Lean's own zip (905,882 bytes)

Run:  .venv/bin/python bench/tiers.py [--quick] [--json PATH] [--sections conversion,bytes,arctic,spy]
                                     [--data ../shared/data] [--keep DIR]
Needs the optional extra `bench` (arcticdb) for the arctic section; without it that section is
skipped with a note. Prints a table; writes the JSON document to --json (default: stdout).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mdcsql.archive import Archive                        # noqa: E402
from mdcsql.catalog import Catalog                        # noqa: E402
from mdcsql.collect import collect                        # noqa: E402
from mdcsql.events_table import arrow_schema              # noqa: E402
from mdcsql.lifecycle.parquet import convert, fingerprint  # noqa: E402
from mdcsql.reader import Reader                          # noqa: E402
from mdcsql.sources import lean                           # noqa: E402
from mdcsql.sources.sim import SimSource                  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def _lean(data: Path) -> tuple[Path, list[Path]]:
    """(SPY trade zip of 2013-10-07, the Lean tick files the bytes section replays)."""
    tick = data / "lean" / "equity" / "usa" / "tick"
    spy = tick / "spy" / "20131007_trade.zip"
    return spy, [spy, tick / "ibm" / "20131007_trade.zip", tick / "ibm" / "20131007_quote.zip"]


DESIGN_RATIOS = {"gzip-6": "5-8x", "zstd-12": "10-15x", "zstd-19": "15-20x"}
DAY_NS = 86_400 * 10**9
DAY0 = 19_726 * DAY_NS                     # 2024-01-03 (a Wednesday), UTC midnight
OPEN_NS, CLOSE_NS = (14 * 3600 + 1800) * 10**9, 21 * 3600 * 10**9      # 14:30-21:00 UTC
VENUES = np.array(["XNAS", "XNYS", "ARCX", "BATS", "BATY", "EDGX", "EDGA", "IEXG", "MEMX", "XBOS",
                   "XPHL", "XCHI", "FINR"])
VENUE_P = np.array([.18, .12, .1, .08, .05, .09, .03, .03, .04, .01, .01, .01, .25])


# ------------------------------------------------------------------------------------ helpers
def _interleaved(fns: dict, runs: int) -> dict:
    """Median wall and CPU milliseconds of each function, run in rounds (each once per round, the
    order rotating), so that a busy neighbour slows every contender alike."""
    names = list(fns)
    for name in names:
        fns[name]()                                         # warm-up (file cache, footers)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for i in range(runs):
        for name in names[i % len(names):] + names[:i % len(names)]:
            c0, t0 = time.process_time(), time.perf_counter()
            fns[name]()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    out = {n: statistics.median(wall[n]) * 1000 for n in names}
    out["cpu"] = {n: statistics.median(cpu[n]) * 1000 for n in names}
    return out


def _tree_bytes(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _manifest(path: Path) -> dict:
    return json.loads(Path(str(path) + ".manifest.json").read_text())


def _sealed(root: Path, type_: str) -> list[Path]:
    """Sealed hot files of one type (BySymbol layout: ``{live|historical}/SYM/Type/DAY~src~ac.jsonl.gz``)."""
    return sorted(p for r in ("live", "historical") for p in root.glob(f"{r}/*/{type_}/*.jsonl.*")
                  if not p.name.endswith(".manifest.json"))


def synth_trades(symbol: str, day: int, n: int, rng: np.random.Generator, base_cents: int) -> pa.Table:
    """``n`` realistic trades of one symbol-day as a canonical ingest table: ns timestamps over the
    New York session, a cent-tick random walk, round and odd lots (odd lots flagged "I"), 13 venues."""
    ts = np.sort(rng.integers(OPEN_NS, CLOSE_NS, n)) + DAY0 + day * DAY_NS
    cents = np.maximum(1, base_cents + np.cumsum(rng.choice([-1, 0, 0, 0, 1], n)))
    odd = rng.random(n) < 0.3
    size = np.where(odd, rng.integers(1, 100, n), 100 * rng.choice([1, 1, 1, 2, 3, 5, 10], n))
    price = pc.binary_join_element_wise(pa.array(cents // 100).cast(pa.string()),
                                        pc.utf8_lpad(pa.array(cents % 100).cast(pa.string()), 2, "0"), ".")
    venue = VENUES[rng.choice(len(VENUES), n, p=VENUE_P)]
    trade_id = np.arange(n, dtype=np.int64) + 1_000_000 * (day + 1)
    conditions = pa.array([["I"] if o else None for o in odd], pa.list_(pa.string()))
    cols = {
        "type": pa.array(["Trade"] * n), "symbol": pa.array([symbol] * n), "source": pa.array(["synth"] * n),
        "ts": pa.array(ts, pa.int64()), "recv_ts": pa.array(ts + rng.integers(20_000, 900_000, n), pa.int64()),
        "seq": pa.array(np.arange(1, n + 1, dtype=np.int64) + day * n, pa.int64()),
        "price": price, "size": pa.array(size, pa.int64()).cast(pa.string()),
        "side": pa.array(np.where(rng.random(n) < 0.5, "buy", "sell")),
        "trade_id": pa.array(trade_id, pa.int64()).cast(pa.string()), "venue": pa.array(venue),
        "conditions": conditions,
    }
    return pa.Table.from_arrays([cols[f.name] for f in arrow_schema("Trade")], schema=arrow_schema("Trade"))


def migrate_to_cold(root: Path, *, level: int = 12, row_group_size: int | None = None) -> list[dict]:
    """Every sealed hot file to the cold tier (``cold/<hot path>.parquet``) by the verified
    conversion, with its manifest; hot files removed; catalog synced. Returns the conversions."""
    out = []
    archive = Archive.open(root)
    for type_ in ("Trade", "BboQuote"):
        for src in _sealed(root, type_):
            rel = src.relative_to(root).as_posix()
            cold = archive.layout.relpath(archive.layout.parse(rel).key, codec="parquet", tier="cold")
            target = root / cold
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            kw = {"row_group_size": row_group_size} if row_group_size else {}
            res = convert([src], tmp, type_, compression="zstd", level=level, **kw)
            tmp.rename(target)
            m = _manifest(src)
            m.update(path=cold, format="parquet", codec="zstd", compression_level=level,
                     size_bytes=res.size_bytes, sha256=res.sha256)
            Path(str(target) + ".manifest.json").write_text(json.dumps(m, indent=2))
            src.unlink()
            Path(str(src) + ".manifest.json").unlink()
            out.append({"path": cold, "rows": res.rows, "bytes": res.size_bytes, "seconds": res.seconds})
    with Catalog.open(root) as cat:
        cat.sync(archive.layout)
    return out


# ------------------------------------------------------------------------------------ (a) conversion
#: the cold tier's codec; DuckDB's COPY is run at the same codec and level (like with like)
CONVERSION_ZSTD_LEVEL = 12


def bench_conversion(tmp: Path, events: int) -> dict:
    """One sealed JSONL.gz trade file of ``events`` trades, converted both ways, same run."""
    root = tmp / "conv"
    archive = Archive.init(root)
    rng = np.random.default_rng(11)
    writer = archive.writer("synth")
    writer.append_table(synth_trades("CONV", 0, events, rng, 18_700))
    archive.close()
    [src] = _sealed(root, "Trade")
    raw_bytes = _manifest(src)["raw_bytes"]
    ours_dst, duck_dst, default_dst = tmp / "ours.parquet", tmp / "duck.parquet", tmp / "duck-default.parquet"
    results = {"ours": [], "duckdb": [], "duckdb_default": [], "verify_only": []}

    def duck_copy(dst: Path, options: str) -> float:
        dst.unlink(missing_ok=True)
        con = duckdb.connect()
        t0 = time.perf_counter()
        con.execute("COPY (SELECT * FROM read_json($src)) TO '" + str(dst).replace("'", "''")
                    + f"' (FORMAT parquet{options})", {"src": str(src)})
        took = time.perf_counter() - t0
        con.close()
        return took

    for _ in range(3):
        ours_dst.unlink(missing_ok=True)
        t0 = time.perf_counter()
        res = convert([src], ours_dst, "Trade", compression="zstd", level=CONVERSION_ZSTD_LEVEL)
        results["ours"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fingerprint([src], "Trade")
        results["verify_only"].append(time.perf_counter() - t0)
        # like with like: the same codec and level as ours (the cold tier's zstd-12) ...
        results["duckdb"].append(duck_copy(duck_dst, f", COMPRESSION zstd, COMPRESSION_LEVEL {CONVERSION_ZSTD_LEVEL}"))
        # ... and, for reference, DuckDB's defaults (snappy), which the wording names
        results["duckdb_default"].append(duck_copy(default_dst, ""))
    ours, duck, default = min(results["ours"]), min(results["duckdb"]), min(results["duckdb_default"])
    return {
        "events": events, "source_bytes": src.stat().st_size, "raw_jsonl_bytes": raw_bytes,
        "codec": f"zstd-{CONVERSION_ZSTD_LEVEL} on both sides",
        "ours_seconds": ours, "duckdb_seconds": duck, "duckdb_default_seconds": default,
        "ours_mb_s": raw_bytes / ours / 1e6, "duckdb_mb_s": raw_bytes / duck / 1e6,
        "duckdb_default_mb_s": raw_bytes / default / 1e6,
        "ours_events_s": events / ours, "duckdb_events_s": events / duck, "duckdb_default_events_s": events / default,
        "ratio": duck / ours, "target": ">= 0.8", "met": duck / ours >= 0.8,
        "ratio_vs_duckdb_default": default / ours,
        "fingerprint_seconds": min(results["verify_only"]),
        "ours_bytes": res.size_bytes, "duckdb_bytes": duck_dst.stat().st_size,
        "duckdb_default_bytes": default_dst.stat().st_size,
        "note": "ours includes the verification (source rows fingerprinted as read, written file re-read by "
                "DuckDB and fingerprinted); duckdb = COPY at the same zstd level; best of 3",
    }


# ------------------------------------------------------------------------------------ (b) bytes per event
def _tier_sizes(root: Path, label: str) -> list[dict]:
    """Per event type: bytes per event of the raw JSONL and of each tier's encoding of it."""
    rows = []
    for type_ in ("Trade", "BboQuote"):
        files = _sealed(root, type_)
        if not files:
            continue
        raw = b"".join(gzip.decompress(p.read_bytes()) if p.suffix == ".gz"
                       else zstandard.ZstdDecompressor().decompressobj().decompress(p.read_bytes())
                       for p in files)
        events = raw.count(b"\n")
        sizes = {"hot jsonl": len(raw),
                 "warm gzip-6": len(gzip.compress(raw, compresslevel=6, mtime=0)),
                 "warm zstd-12": len(zstandard.ZstdCompressor(level=12).compress(raw)),
                 "zstd-19 jsonl": len(zstandard.ZstdCompressor(level=19).compress(raw))}
        for name, level in (("cold parquet zstd-12", 12), ("archive parquet zstd-19", 19)):
            total = 0
            for p in files:
                dst = root / f"_bench_{level}.parquet"
                total += convert([p], dst, type_, compression="zstd", level=level).size_bytes
                dst.unlink()
            sizes[name] = total
        for tier, size in sizes.items():
            rows.append({"data": label, "type": type_, "tier": tier, "events": events, "bytes": size,
                         "bytes_per_event": size / events, "ratio_vs_jsonl": len(raw) / size,
                         "design": DESIGN_RATIOS.get(tier.split()[-1], "")})
    return rows


def bench_bytes(tmp: Path, sim_events: int, data: Path) -> dict:
    sim_root = tmp / "sim"
    archive = Archive.init(sim_root)
    collect(archive, [SimSource(["AAPL", "MSFT", "SPY"], limit=sim_events, seed=7, start_ns=DAY0 + OPEN_NS)])
    archive.close()
    rows = _tier_sizes(sim_root, f"simulator ({sim_events:,} events)")
    notes = []
    _, lean_files = _lean(data)
    if all(p.exists() for p in lean_files):
        lean_root = tmp / "lean"
        archive = Archive.init(lean_root)
        writer = archive.writer("lean", root="historical")
        for path in lean_files:
            for _, table in lean.read(path):
                writer.append_table(table)
        archive.close()
        rows += _tier_sizes(lean_root, "Lean SPY+IBM 2013-10-07 ticks")
    else:
        notes.append(f"Lean sample files absent under {data}: real-data rows skipped")
    return {"rows": rows, "notes": notes}


# ------------------------------------------------------------------------------------ (c) ArcticDB
def _arctic_frame(table: pa.Table):
    """The same trades as ArcticDB stores them: a pandas frame indexed by ts (ns); prices and
    sizes float64 (ArcticDB has no decimal type), text columns as strings."""
    import pandas as pd
    frame = pd.DataFrame({
        "recv_ts": table["recv_ts"].to_numpy(), "seq": table["seq"].to_numpy(),
        "price": pc.cast(table["price"], pa.float64()).to_numpy(),
        "size": pc.cast(table["size"], pa.float64()).to_numpy(),
        "side": table["side"].to_numpy(zero_copy_only=False), "trade_id": table["trade_id"].to_numpy(zero_copy_only=False),
        "venue": table["venue"].to_numpy(zero_copy_only=False),
        "conditions": pc.list_element(pc.fill_null(table["conditions"], pa.scalar([""], pa.list_(pa.string()))), 0)
        .to_numpy(zero_copy_only=False),
    }, index=pd.DatetimeIndex(table["ts"].to_numpy().astype("datetime64[ns]"), name="ts"))
    return frame


def _build_arctic(tmp: Path, symbols: int, days: int, per_day: int) -> dict:
    """The same synthetic trades into ArcticDB (LMDB) and our cold tier (+ a hive-partitioned
    view of the cold files for DuckDB). Saved in ``tmp/arctic-build.json`` for ``--keep`` reruns."""
    import arcticdb
    import pandas as pd
    rng = np.random.default_rng(3)
    names = [f"S{i:02d}" for i in range(symbols)]
    bases = {s: int(rng.integers(2_000, 50_000)) for s in names}
    ours_root = tmp / "ours"
    archive = Archive.init(ours_root)
    writer = archive.writer("synth")
    lmdb = tmp / "arctic"
    ac = arcticdb.Arctic(f"lmdb://{lmdb}?map_size=64GB")
    lib = ac.get_library("trades", create_if_missing=True)
    t_ours_ingest = t_arctic = 0.0
    for s in names:
        frames = []
        for d in range(days):
            table = synth_trades(s, d, per_day, rng, bases[s])
            t0 = time.perf_counter()
            writer.append_table(table)
            t_ours_ingest += time.perf_counter() - t0
            frames.append(_arctic_frame(table))
        frame = pd.concat(frames)
        t0 = time.perf_counter()
        lib.write(s, frame)
        t_arctic += time.perf_counter() - t0
    t0 = time.perf_counter()
    archive.close()
    t_seal = time.perf_counter() - t0
    t0 = time.perf_counter()
    conversions = migrate_to_cold(ours_root)
    t_cold = time.perf_counter() - t0
    total = symbols * days * per_day
    ours_bytes = sum(c["bytes"] for c in conversions)
    arctic_bytes = _tree_bytes(lmdb)
    hive = tmp / "hive"                              # symbol=/date=/data.parquet, hard links
    for c in conversions:
        parts = c["path"].split("/")                # cold/live/SYM/Trade/DAY~src~ac.parquet
        dst = hive / f"symbol={parts[2]}" / f"date={parts[4][:10]}" / "data.parquet"
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(ours_root / c["path"], dst)
    build = {"symbols": symbols, "days": days, "per_day": per_day, "names": names, "trades": total,
             "bytes": {"ours_cold": ours_bytes, "arcticdb_lmdb": arctic_bytes,
                       "ours_per_trade": ours_bytes / total, "arcticdb_per_trade": arctic_bytes / total,
                       "ratio": ours_bytes / arctic_bytes, "target": "<= 0.5",
                       "met": ours_bytes / arctic_bytes <= 0.5},
             "write_seconds": {"ours_ingest_durable": t_ours_ingest, "ours_seal": t_seal,
                               "ours_convert_to_cold_verified": t_cold, "arcticdb_write": t_arctic}}
    (tmp / "arctic-build.json").write_text(json.dumps(build, indent=2))
    return build


def bench_arctic(tmp: Path, symbols: int, days: int, per_day: int, runs: int) -> dict:
    try:
        import arcticdb
        import pandas as pd
    except ImportError:
        return {"skipped": "arcticdb is not installed (pip install -e .[bench])"}
    saved = tmp / "arctic-build.json"
    reused = saved.exists()
    build = json.loads(saved.read_text()) if reused else _build_arctic(tmp, symbols, days, per_day)
    symbols, days, per_day, names = build["symbols"], build["days"], build["per_day"], build["names"]
    ours_root, hive = tmp / "ours", tmp / "hive"
    lib = arcticdb.Arctic(f"lmdb://{tmp / 'arctic'}?map_size=64GB").get_library("trades")
    sym, day = names[symbols // 2], days // 2
    lo = DAY0 + day * DAY_NS
    hi = lo + DAY_NS
    reader = Reader(ours_root)
    con = duckdb.connect()
    hive_glob = str(hive / "**" / "*.parquet")
    hive_sql = ("SELECT * FROM read_parquet($g, hive_partitioning = true) WHERE symbol = $s AND date = $d "
                "ORDER BY ts, seq")
    hive_params = {"g": hive_glob, "s": sym, "d": str(pd.Timestamp(lo, unit="ns").date())}
    dr = (pd.Timestamp(lo, unit="ns"), pd.Timestamp(hi - 1, unit="ns"))
    numeric = ["ts", "price", "size"]
    out = {"symbols": symbols, "days": days, "trades": build["trades"], "runs": runs,
           "read": f"{sym} day {day} ({per_day:,} trades)", "reused_build": reused}
    got = reader.read("Trade", sym, lo, hi)
    adb = lib.read(sym, date_range=dr, output_format="pyarrow").data
    assert got.num_rows == adb.num_rows == per_day, (got.num_rows, adb.num_rows)
    out["read_all_columns_ms"] = _interleaved({
        "ours": lambda: reader.read("Trade", sym, lo, hi),
        "arcticdb": lambda: lib.read(sym, date_range=dr, output_format="pyarrow").data,
        "duckdb_hive": lambda: con.sql(hive_sql, params=hive_params).to_arrow_table(),
    }, runs)
    hive_numeric = hive_sql.replace("SELECT *", "SELECT ts, price, size")
    out["read_ts_price_size_ms"] = _interleaved({
        "ours": lambda: reader.read("Trade", sym, lo, hi, columns=numeric),
        "arcticdb": lambda: lib.read(sym, date_range=dr, columns=["price", "size"], output_format="pyarrow").data,
        "duckdb_hive": lambda: con.sql(hive_numeric, params=hive_params).to_arrow_table(),
    }, runs)
    for key in ("read_all_columns_ms", "read_ts_price_size_ms"):
        r = out[key]
        r["ratio_ours_vs_arcticdb"] = r["ours"] / r["arcticdb"]
        r["met"] = r["ours"] <= r["arcticdb"]
    out["bytes"], out["write_seconds"] = build["bytes"], build["write_seconds"]
    out["columns"] = ("ours: the Trade view's columns (ts, recv_ts, symbol, source, seq, price and size as "
                      "exact decimal128(38,18), side, trade_id, venue, conditions); ArcticDB: the same "
                      "values with price/size as float64 and conditions as text")
    con.close()
    return out


# ------------------------------------------------------------------------------------ (d) SPY archive
def bench_spy(tmp: Path, data: Path) -> dict:
    spy_zip, _ = _lean(data)
    if not spy_zip.exists():
        return {"skipped": f"{spy_zip} is absent"}
    root = tmp / "spy"
    archive = Archive.init(root)
    writer = archive.writer("lean", root="historical")
    for _, table in lean.read(spy_zip):
        writer.append_table(table)
    archive.close()
    [src] = _sealed(root, "Trade")
    dst = tmp / "spy-archive.parquet"
    res = convert([src], dst, "Trade", compression="zstd", level=19)
    lean_bytes = spy_zip.stat().st_size
    return {"trades": res.rows, "lean_zip_bytes": lean_bytes, "ours_bytes": res.size_bytes,
            "ratio": res.size_bytes / lean_bytes, "target": "<= 0.5", "met": res.size_bytes / lean_bytes <= 0.5,
            "bytes_per_trade": res.size_bytes / res.rows, "lean_bytes_per_trade": lean_bytes / res.rows,
            "column_types": res.column_types, "raw_jsonl_bytes": _manifest(src)["raw_bytes"]}


# ------------------------------------------------------------------------------------ report
def _print(doc: dict) -> None:
    p = lambda *a: print(*a, file=sys.stderr)      # noqa: E731 - the table goes to stderr, JSON to stdout
    c = doc.get("conversion")
    if c:
        p(f"\n(a) JSONL.gz -> Parquet, {c['events']:,} trades, {c['raw_jsonl_bytes'] / 1e6:.1f} MB raw JSONL")
        p(f"    ours (verified)  {c['ours_mb_s']:7.1f} MB/s {c['ours_events_s']:>12,.0f} ev/s  {c['ours_seconds']:.2f} s"
          f"  {c['ours_bytes']:,} B")
        p(f"    duckdb COPY      {c['duckdb_mb_s']:7.1f} MB/s {c['duckdb_events_s']:>12,.0f} ev/s  {c['duckdb_seconds']:.2f} s"
          f"  {c['duckdb_bytes']:,} B  ({c['codec']})")
        p(f"    duckdb defaults  {c['duckdb_default_mb_s']:7.1f} MB/s {c['duckdb_default_events_s']:>12,.0f} ev/s  "
          f"{c['duckdb_default_seconds']:.2f} s  {c['duckdb_default_bytes']:,} B  (snappy)")
        p(f"    ratio {c['ratio']:.2f}x at the same codec (target >= 0.8: {'met' if c['met'] else 'NOT met'}); "
          f"{c['ratio_vs_duckdb_default']:.2f}x against DuckDB's defaults")
    b = doc.get("bytes")
    if b:
        p("\n(b) bytes per event by tier")
        p(f"    {'data':<34} {'type':<9} {'tier':<24} {'B/event':>8} {'ratio':>7}  design")
        for r in b["rows"]:
            p(f"    {r['data']:<34} {r['type']:<9} {r['tier']:<24} {r['bytes_per_event']:8.2f} "
              f"{r['ratio_vs_jsonl']:6.1f}x  {r['design']}")
        for n in b["notes"]:
            p("    note:", n)
    a = doc.get("arctic")
    if a:
        p(f"\n(c) against ArcticDB: {a.get('skipped') or ''}")
        if "bytes" in a:
            p(f"    {a['trades']:,} trades ({a['symbols']} symbols x {a['days']} days); read {a['read']}, "
              f"median of {a['runs']}")
            for key in ("read_all_columns_ms", "read_ts_price_size_ms"):
                r = a[key]
                p(f"    {key:<24} ours {r['ours']:6.2f} ms  arcticdb {r['arcticdb']:6.2f} ms  duckdb/hive "
                  f"{r['duckdb_hive']:6.2f} ms  ratio {r['ratio_ours_vs_arcticdb']:.2f}x "
                  f"({'met' if r['met'] else 'NOT met'}); CPU ms: " + ", ".join(
                      f"{k} {v:.2f}" for k, v in r["cpu"].items()))
            bb = a["bytes"]
            p(f"    bytes: ours {bb['ours_per_trade']:.2f} B/trade, arcticdb {bb['arcticdb_per_trade']:.2f} "
              f"B/trade, ratio {bb['ratio']:.2f} (target <= 0.5: {'met' if bb['met'] else 'NOT met'})")
    s = doc.get("spy")
    if s:
        p(f"\n(d) SPY 2013-10-07 trades, archive tier: {s.get('skipped') or ''}")
        if "ours_bytes" in s:
            p(f"    {s['trades']:,} trades: ours {s['ours_bytes']:,} B ({s['bytes_per_trade']:.2f} B/trade) vs "
              f"Lean zip {s['lean_zip_bytes']:,} B -> {s['ratio']:.3f}x (target <= 0.5: "
              f"{'met' if s['met'] else 'NOT met'})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not the figures)")
    ap.add_argument("--json", help="write the JSON document here instead of stdout")
    ap.add_argument("--sections", default="conversion,bytes,arctic,spy")
    ap.add_argument("--data", type=Path, default=SHARED_DATA,
                    help="the shared sample-data folder with the Lean ticks (default: ../shared/data)")
    ap.add_argument("--keep", help="build in this directory and keep it (default: a temporary one)")
    args = ap.parse_args(argv)
    sections = set(args.sections.split(","))
    quick = args.quick
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mdcsql-bench-tiers-"))
    tmp.mkdir(parents=True, exist_ok=True)
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "duckdb": duckdb.__version__, "pyarrow": pa.__version__, "quick": quick}}
    try:
        if "conversion" in sections:
            doc["conversion"] = bench_conversion(tmp, 100_000 if quick else 1_000_000)
        if "bytes" in sections:
            doc["bytes"] = bench_bytes(tmp, 60_000 if quick else 600_000, args.data)
        if "arctic" in sections:
            try:
                import arcticdb
                doc["machine"]["arcticdb"] = arcticdb.__version__
            except ImportError:
                pass
            doc["arctic"] = (bench_arctic(tmp, 4, 2, 100_000, 15) if quick
                             else bench_arctic(tmp, 20, 5, 100_000, 31))
        if "spy" in sections:
            doc["spy"] = bench_spy(tmp, args.data)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    _print(doc)
    text = json.dumps(doc, indent=2, default=str)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
