"""PostgreSQL exports (PostgresCopy, SqlInsert, TimescaleDB profile) loaded into a REAL server.

The session starts its own throwaway PostgreSQL cluster (Debian's postgresql package: initdb and
pg_ctl as the `postgres` user when running as root, a temporary directory, a free loopback port)
and stops it at the end. Each test exports a real archive (simulator data plus JSONL ingested
with hostile strings), runs the generated loader with psql as written, and compares counts and
exact sums per symbol with the archive's catalog views.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from conftest import PYTHON, python_env
from mdcsql.errors import InputError, MdcsqlError
from mdcsql.export.postgres import PgOptions, PostgresWriter, export_postgres

SIM_SYMBOLS = ("AAPL", "MSFT")
ODD = "ODD.X"
#: hostile strings: quotes, backslashes, COPY's \N and \. , tabs, CR/LF, unicode, array syntax
ODD_EVENTS = [
    {"type": "Trade", "symbol": ODD, "source": "jsonl", "ts": 1704186000000000001, "recv_ts": None, "seq": 1,
     "price": "100.000000001", "size": "0.5", "side": "buy", "trade_id": "it's \"quoted\"\\ back\\slash",
     "venue": "Zürich 😀 \t tab", "conditions": ["@", "a\"b", "c\\d", "NULL", "", "x,y", "{}", "'"]},
    {"type": "Trade", "symbol": ODD, "source": "jsonl", "ts": 1704186000000000999,
     "recv_ts": 1704186000000001999, "seq": None, "price": "12345678901234567890.123456789012345678",
     "size": "3", "side": "sell", "trade_id": "line1\nline2\r\nend\\.", "venue": "\\N", "conditions": []},
    {"type": "Trade", "symbol": ODD, "source": "jsonl", "ts": 1704186000000002000, "recv_ts": None, "seq": 5,
     "price": "0.000000000000000001", "size": "1", "side": "unknown", "trade_id": None, "venue": "$$ $mdcsql$ ;",
     "conditions": None},
    {"type": "L2Snapshot", "symbol": ODD, "source": "jsonl", "ts": 1704186000000002000, "recv_ts": None,
     "seq": 2, "bids": [["99.5", "10"], ["99.25", "0.001"]], "asks": [], "venue": "'"},
    {"type": "HistoricalBar", "symbol": ODD, "source": "jsonl", "ts": 1704186000000000000, "recv_ts": None,
     "seq": 3, "open": "1", "high": "2", "low": "0.5", "close": "1.5", "volume": "1000", "interval": "1m"},
    {"type": "Heartbeat", "symbol": ODD, "source": "jsonl", "ts": 1704186000000000000, "recv_ts": None,
     "seq": 4, "status": "ok'); DROP TABLE trades; --"},
]
#: per table: the decimal columns summed exactly on both sides
SUMS = {"trades": ("price", "size"), "bbo_quotes": ("bid_price", "bid_size", "ask_price", "ask_size"),
        "order_flow": ("price", "size"), "historical_bars": ("open", "close", "volume")}


# ---------------------------------------------------------------- the server
def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg():
    """A running throwaway PostgreSQL server: {"host", "port", "user", "bin"}; stopped at the end."""
    bindir = _bindir()
    if bindir is None or not (bindir / "pg_ctl").exists() or shutil.which("psql") is None:
        why = "PostgreSQL server binaries (initdb, pg_ctl, psql) not found; install Debian's postgresql package"
        if os.environ.get("CI"):
            pytest.fail(why + " (.ci/run installs it)")
        pytest.skip(why)
    as_postgres: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="mdcsql-pg-"))
    if os.geteuid() == 0:                       # the server refuses to run as root
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    try:
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres",
                        "-E", "UTF8", "--locale=C"], check=True, capture_output=True, text=True)
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                        "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off", "start"],
                       check=True, capture_output=True, text=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr or exc.stdout}\n{log}")
    try:
        yield {"host": "127.0.0.1", "port": str(port), "user": "postgres", "bin": bindir}
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def _conn(pg: dict, db: str) -> list[str]:
    return ["-h", pg["host"], "-p", pg["port"], "-U", pg["user"], "-d", db]


def psql(pg: dict, db: str, sql: str) -> str:
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *_conn(pg, db), "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def pg_json(pg: dict, db: str, sql: str):
    """The rows of ``sql`` as JSON objects (one value, so strings with newlines survive)."""
    text = psql(pg, db, f"SELECT coalesce(json_agg(q), '[]'::json) FROM ({sql}) AS q")
    return json.loads(text, parse_float=Decimal)


_DB_SEQ = iter(range(1, 10_000))


@pytest.fixture
def db(pg) -> str:
    name = f"mdcsql_test_{next(_DB_SEQ)}_{os.getpid()}"
    psql(pg, "postgres", f"CREATE DATABASE {name}")
    return name


# ---------------------------------------------------------------- the archive
def _mdcsql(*args: str) -> None:
    subprocess.run([PYTHON, "-m", "mdcsql", *args], check=True, capture_output=True, text=True, env=python_env())


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Simulated AAPL/MSFT trades, quotes, L2 books and order flow, plus the hostile ODD.X events."""
    base = tmp_path_factory.mktemp("pgexport")
    root = base / "archive"
    _mdcsql("init", str(root))
    _mdcsql("collect", str(root), "--source", "sim", "--symbols", ",".join(SIM_SYMBOLS), "--events", "3000",
            "--start", "2024-01-02", "--seed", "11")
    odd = base / "odd.jsonl"
    odd.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ODD_EVENTS), encoding="utf-8")
    _mdcsql("ingest", str(root), str(odd))
    return root


def _duck(root: Path, sql: str) -> list[dict]:
    con = duckdb.connect(str(root / "_catalog" / "catalog.duckdb"), read_only=True)
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


def _archive_stats(root: Path, table: str) -> dict:
    sums = ", ".join(f"sum({c})::VARCHAR AS {c}" for c in SUMS.get(table, ()))
    rows = _duck(root, f"SELECT symbol, count(*) AS n, sum(epoch_ns(ts))::VARCHAR AS ts_ns"
                       f"{', ' + sums if sums else ''} FROM {table} GROUP BY symbol")
    return {r["symbol"]: {k: (Decimal(v) if k != "n" and v is not None else v) for k, v in r.items()
                          if k != "symbol"} for r in rows}


def _pg_stats(pg: dict, db: str, table: str) -> dict:
    sums = ", ".join(f"sum({c}) AS {c}" for c in SUMS.get(table, ()))
    rows = pg_json(pg, db, f"SELECT symbol, count(*) AS n, sum(ts_ns) AS ts_ns{', ' + sums if sums else ''} "
                           f"FROM {table} GROUP BY symbol")
    return {r.pop("symbol"): {k: (Decimal(v) if k != "n" and v is not None else v) for k, v in r.items()}
            for r in rows}


def _assert_matches_archive(root: Path, pg: dict, db: str) -> None:
    for table in ("trades", "bbo_quotes", "l2_snapshots", "order_flow", "historical_bars", "heartbeats"):
        want, got = _archive_stats(root, table), _pg_stats(pg, db, table)
        assert want, table
        assert got == want, table
    # every L2 level, exactly: count and sums of prices and sizes per symbol and side
    for side in ("bids", "asks"):
        want = {r["symbol"]: (r["n"], Decimal(r["p"] or 0), Decimal(r["s"] or 0)) for r in _duck(
            root, f"SELECT symbol, count(l) AS n, sum(l.price)::VARCHAR AS p, sum(l.size)::VARCHAR AS s "
                  f"FROM (SELECT symbol, unnest({side}) AS l FROM l2_snapshots) GROUP BY symbol")}
        got = {r["symbol"]: (r["n"], Decimal(r["p"] or 0), Decimal(r["s"] or 0)) for r in pg_json(
            pg, db, f"SELECT symbol, count(e) AS n, sum((e->>'price')::numeric) AS p, "
                    f"sum((e->>'size')::numeric) AS s FROM l2_snapshots "
                    f"CROSS JOIN LATERAL jsonb_array_elements({side}) AS e GROUP BY symbol")}
        assert got == want, side
    # timestamptz is ts_ns floored to the microsecond, everywhere
    assert psql(pg, db, "SELECT bool_and((extract(epoch FROM ts) * 1000000)::bigint = "
                        "floor(ts_ns / 1000.0)::bigint) FROM trades") == "t"
    # the hostile strings, verbatim
    got = pg_json(pg, db, f"SELECT trade_id, venue, conditions, price::text AS price, seq, "
                          f"recv_ts_ns FROM trades WHERE symbol = '{ODD.replace(chr(39), chr(39) * 2)}' "
                          f"ORDER BY ts_ns")
    want = [e for e in ODD_EVENTS if e["type"] == "Trade"]
    assert [r["trade_id"] for r in got] == [e["trade_id"] for e in want]
    assert [r["venue"] for r in got] == [e["venue"] for e in want]
    assert [r["conditions"] for r in got] == [e["conditions"] for e in want]
    assert [r["price"] for r in got] == [e["price"] for e in want]
    assert [r["seq"] for r in got] == [e["seq"] for e in want]
    assert [r["recv_ts_ns"] for r in got] == [e["recv_ts"] for e in want]
    assert pg_json(pg, db, "SELECT status FROM heartbeats WHERE symbol = 'ODD.X'") == \
        [{"status": ODD_EVENTS[-1]["status"]}]
    assert pg_json(pg, db, "SELECT \"interval\", high FROM historical_bars WHERE symbol = 'ODD.X'") == \
        [{"interval": "1m", "high": 2}]
    book = pg_json(pg, db, "SELECT bids, asks, venue FROM l2_snapshots WHERE symbol = 'ODD.X'")
    assert book == [{"bids": [{"price": Decimal("99.5"), "size": 10}, {"price": Decimal("99.25"),
                                                                        "size": Decimal("0.001")}],
                     "asks": [], "venue": "'"}]
    # the loader's indexes exist
    idx = psql(pg, db, "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
                       "WHERE indexname LIKE '%_symbol_ts_idx'")
    assert idx.split(",") == sorted(f"{t}_symbol_ts_idx" for t in
                                    ("trades", "bbo_quotes", "l2_snapshots", "order_flow", "historical_bars",
                                     "heartbeats"))


def _load_sh(export: Path, pg: dict, db: str) -> subprocess.CompletedProcess:
    """Run the generated load.sh as written, from another working directory."""
    return subprocess.run([str(export / "load.sh"), *_conn(pg, db)], cwd="/", check=True,
                          capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------- tests
def test_postgres_copy_loads_and_matches_archive(archive, pg, db, tmp_path):
    dest = tmp_path / "pgcopy"
    files = export_postgres(archive, dest=dest, mode="copy")
    assert {f.name for f in files} >= {"schema.sql", "indexes.sql", "load.sql", "load.sh"}
    assert all(f.exists() for f in files)
    assert not (dest / "timescaledb.sql").exists()
    copy_files = sorted(dest.glob("data/*/*.copy"))
    assert {p.parent.name for p in copy_files} == {"trades", "bbo_quotes", "l2_snapshots", "order_flow",
                                                   "historical_bars", "heartbeats"}
    # COPY text format: one line per row, however many newlines the strings hold
    odd_trades = (dest / "data" / "trades").glob("*ODD.X.copy")
    assert [len(p.read_bytes().splitlines()) for p in odd_trades] == [3]
    _load_sh(dest, pg, db)
    _assert_matches_archive(archive, pg, db)


def test_sql_insert_loads_and_matches_archive(archive, pg, db, tmp_path):
    dest = tmp_path / "pginsert"
    export_postgres(archive, dest=dest, mode="insert", options={"insert_batch": 100})
    sql_files = sorted(dest.glob("data/*/*.sql"))
    assert sql_files and not list(dest.glob("data/*/*.copy"))
    aapl = (dest / "data" / "trades" / "0001_AAPL.sql").read_text()
    n = _duck(archive, "SELECT count(*) AS n FROM trades WHERE symbol = 'AAPL'")[0]["n"]
    assert aapl.count("INSERT INTO trades") == -(-n // 100)        # batches of 100 rows
    # psql -f load.sql from the export directory, the other documented way
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *_conn(pg, db), "-f", "load.sql"],
                   cwd=dest, check=True, capture_output=True, text=True, timeout=300)
    _assert_matches_archive(archive, pg, db)


def test_timescaledb_profile_loads_into_plain_postgres_with_notice(archive, pg, db, tmp_path):
    dest = tmp_path / "tsdb"
    export_postgres(archive, dest=dest, types=["Trade", "l2_snapshots"], timescale=True,
                    options={"chunk_interval": "6 hours"})
    script = (dest / "timescaledb.sql").read_text()
    assert "create_hypertable('trades', 'ts', chunk_time_interval => INTERVAL '6 hours'" in script
    assert "add_compression_policy('l2_snapshots', INTERVAL '7 days'" in script
    assert "pg_available_extensions WHERE name = 'timescaledb'" in script
    assert psql(pg, db, "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") == "0"
    done = _load_sh(dest, pg, db)
    for table in ("trades", "l2_snapshots"):
        assert (f"NOTICE:  mdcsql: TimescaleDB extension not available on this server: {table} loaded as a "
                f"plain PostgreSQL table") in done.stderr
        assert _pg_stats(pg, db, table) == _archive_stats(archive, table)
    assert psql(pg, db, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == "2"


def test_filters_symbols_and_time_range(archive, pg, db, tmp_path):
    dest = tmp_path / "slice"
    export_postgres(archive, dest=dest, symbols=["MSFT"], types=["Trade"], start="2024-01-02T00:00:01Z",
                    end="2024-01-02T00:00:02Z", mode="insert")
    _load_sh(dest, pg, db)
    want = _duck(archive, "SELECT count(*) AS n, sum(price)::VARCHAR AS p FROM trades WHERE symbol = 'MSFT' "
                          "AND ts >= TIMESTAMP_NS '2024-01-02 00:00:01' AND ts < TIMESTAMP_NS '2024-01-02 00:00:02'")[0]
    assert want["n"] > 0
    got = pg_json(pg, db, "SELECT count(*) AS n, sum(price) AS p, count(DISTINCT symbol) AS syms FROM trades")[0]
    assert (got["n"], got["p"], got["syms"]) == (want["n"], Decimal(want["p"]), 1)


def test_failed_load_leaves_no_rows(archive, pg, db, tmp_path):
    """The data loads in one transaction: a damaged data file fails the load and leaves nothing."""
    dest = tmp_path / "broken"
    export_postgres(archive, dest=dest, types=["Trade"])
    victim = dest / "data" / "trades" / "0002_MSFT.copy"
    victim.write_text(victim.read_text() + "not\ta\tvalid\trow\n")
    with pytest.raises(subprocess.CalledProcessError) as err:
        _load_sh(dest, pg, db)
    assert "ERROR" in err.value.stderr and "COPY trades" in err.value.stderr
    assert psql(pg, db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'trades'") == "0"


# ---------------------------------------------------------------- bad input (no server needed)
def test_destination_must_be_new_or_empty(archive, tmp_path):
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(MdcsqlError, match="not an empty directory"):
        export_postgres(archive, dest=dest, types=["Trade"])
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]
    assert not list(tmp_path.glob(".taken.partial-*"))


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "csv"}, "unknown PostgreSQL export mode"),
    ({"types": ["Trades!"]}, "unknown event type"),
    ({"options": {"chunk_interval": "1 day'; DROP TABLE x; --"}}, "not a PostgreSQL interval"),
    ({"options": {"chunk_intervall": "1 day"}}, "unknown PostgreSQL export option"),
    ({"options": {"insert_batch": 0}}, "insert_batch"),
])
def test_bad_arguments_are_clear_errors(archive, tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        export_postgres(archive, dest=tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_nul_in_a_string_is_a_clear_error(archive, tmp_path):
    """PostgreSQL text cannot hold NUL: the writer names the column instead of writing bad data."""
    from mdcsql.reader import Reader
    with Reader(archive) as reader:
        schema = reader.schema("Trade")
        rows = reader.read("Trade", ODD).to_pylist()
    rows[0]["venue"] = "a\x00b"
    writer = PostgresWriter(tmp_path, options=PgOptions())
    try:
        with pytest.raises(MdcsqlError, match="column venue holds a NUL character"):
            writer.add("Trade", pa.Table.from_pylist(rows, schema=schema), name=ODD)
    finally:
        writer.close()


# ---------------------------------------------------------------- through the export registry
@pytest.mark.parametrize("fmt", ["PostgresCopy", "SqlInsert"])
def test_registry_formats_with_timescaledb_profile(archive, pg, db, tmp_path, fmt):
    """`mdcsql export --profile TimescaleDB` path: the profile's options reach the writer, the
    result loads as written, and export metadata lists the loader files."""
    from mdcsql.export.exporter import run_export
    from mdcsql.export.profiles import load_profile
    from mdcsql.export.request import ExportRequest
    options = load_profile("TimescaleDB").options.model_dump()
    assert options["include_hypertable"] and options["chunk_interval"] == "1 day"
    request = ExportRequest.build(format=fmt, destination=tmp_path / "out", options=options)
    result = run_export(archive, request)
    export = Path(result.path)
    assert {"load.sql", "load.sh", "schema.sql", "indexes.sql", "timescaledb.sql"} <= set(
        p.name for p in export.iterdir())
    assert "INTERVAL '1 day'" in (export / "timescaledb.sql").read_text()
    listed = json.loads((export / "export_metadata.json").read_text())
    assert "load.sql" in json.dumps(listed)
    if fmt == "PostgresCopy":               # the COPY files are read back for counts and verify
        from mdcsql.export.fmt_postgres import count_copy
        want = {(r["symbol"], r["day"]): r["n"] for r in _duck(
            archive, "SELECT symbol, strftime(ts, '%Y-%m-%d') AS day, count(*) AS n FROM events GROUP BY ALL")}
        assert count_copy(sorted(export.glob("data/*/*.copy"))) == want
    done = _load_sh(export, pg, db)
    assert "TimescaleDB extension not available on this server: trades loaded as a plain" in done.stderr
    _assert_matches_archive(archive, pg, db)
