"""The fast content fingerprint (DuckDB ``hash``, labelled by DuckDB version), the source parsed once
by ``convert``, and ``mdcsql verify`` with fingerprints of another algorithm (real files, real archive)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from mdcsql.archive import Archive
from mdcsql.errors import ConfigError
from mdcsql.lifecycle import parquet as P
from mdcsql.lifecycle.codecs import VerificationError
from mdcsql.lifecycle.migrate import migrate
from mdcsql.verify import verify_archive

T0 = 1_705_329_000_000_000_000


def _line(i: int, conditions) -> str:
    return json.dumps({"type": "Trade", "symbol": "AAPL", "source": "sim", "ts": T0 + i * 1_000_003,
                       "recv_ts": None, "seq": i + 1, "price": f"187.{i % 100:02d}", "size": "100",
                       "side": "buy", "trade_id": f"t{i}", "venue": "XNAS", "conditions": conditions})


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_algorithm_is_labelled_with_duckdbs_major_minor():
    major_minor = ".".join(duckdb.__version__.split(".")[:2])
    assert P.FINGERPRINT_ALGO == f"duckdb-hash:{major_minor}"
    assert P.fingerprint_available(P.FINGERPRINT_ALGO) and P.fingerprint_available(P.LEGACY_FINGERPRINT_ALGO)
    assert P.fingerprint_available(None)                  # a manifest without the key: the legacy MD5
    assert not P.fingerprint_available("duckdb-hash:0.9")


def test_list_values_null_empty_and_null_element_all_differ(tmp_path):
    """DuckDB's hash() of a list gives NULL, [] and [NULL] the same value; the fingerprint must not."""
    base = [_line(i, None) for i in range(20)]
    prints = set()
    for k, cond in enumerate([None, [], [None], ["NULL"], [""], ["@"], ["@", "F"], ["F", "@"]]):
        lines = list(base)
        lines[7] = _line(7, cond)
        prints.add(P.fingerprint([_write(tmp_path / f"{k}.jsonl", lines)], "Trade"))
    assert len(prints) == 8


def test_fast_and_legacy_fingerprints_agree_across_jsonl_memory_and_parquet(tmp_path):
    lines = [_line(i, None if i % 3 else ["@", f"c{i % 5}"]) for i in range(500)]
    src = _write(tmp_path / "a.jsonl", lines)
    res = P.convert([src], tmp_path / "a.parquet", "Trade", compression="zstd-12")
    assert res.fingerprint_algo == P.FINGERPRINT_ALGO
    fast = P.fingerprint([src], "Trade")
    assert (res.rows, res.fingerprint) == fast == P.fingerprint([res.path], "Trade")
    assert P.fingerprint_rows(P.read_rows([src], "Trade"), "Trade") == fast
    assert P.fingerprint_rows(P.read_rows([res.path], "Trade"), "Trade") == fast
    legacy = P.fingerprint([src], "Trade", algo=P.LEGACY_FINGERPRINT_ALGO)
    assert legacy == P.fingerprint([res.path], "Trade", algo=P.LEGACY_FINGERPRINT_ALGO)
    assert legacy[0] == fast[0] and legacy[1] != fast[1]
    with pytest.raises(ConfigError, match="duckdb-hash:0.9"):
        P.fingerprint([src], "Trade", algo="duckdb-hash:0.9")


def test_convert_catches_a_typing_bug_although_the_source_is_parsed_once(tmp_path, monkeypatch):
    """The source fingerprint comes from the rows as read (text decimals, cast by DuckDB); a value
    changed by the typing step (parquet_table) is caught by the read-back of the written file."""
    src = _write(tmp_path / "a.jsonl", [_line(i, None) for i in range(50)])
    real = P.parquet_table

    def off_by_a_cent(rows, type_):
        t = real(rows, type_)
        price = t["price"].to_pylist()
        price[10] += price[10].__class__("0.01")
        return t.set_column(t.schema.get_field_index("price"), "price", pa.array(price, t.schema.field("price").type))

    monkeypatch.setattr(P, "parquet_table", off_by_a_cent)
    dst = tmp_path / "a.lc.tmp"
    with pytest.raises(VerificationError, match="fingerprint"):
        P.convert([src], dst, "Trade")
    assert not dst.exists()


# ---- verify: the manifest's algorithm decides what is recomputed -----------------------------------
def _cold_archive(tmp_path: Path) -> Archive:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"Storage": {"Tiering": {"Enabled": True}, "Policies": {
        "Trade": {"Classification": "Standard", "HotTierDays": 1, "WarmTierDays": 2, "ColdTierDays": 100}}}}))
    archive = Archive.init(tmp_path / "a", config=cfg)
    writer = archive.writer("sim")
    writer.append_many([json.loads(_line(i, ["@"] if i % 4 == 0 else None)) for i in range(300)])
    archive.close()
    archive = Archive.open(tmp_path / "a")
    migrate(archive, as_of=datetime.fromtimestamp(T0 / 1e9 + 10 * 86400, tz=timezone.utc))
    return archive


def test_verify_recomputes_the_fast_fingerprint_and_notes_a_foreign_one(tmp_path):
    archive = _cold_archive(tmp_path)
    [mpath] = [p for p in archive.root.glob("cold/**/*.parquet.manifest.json")]
    m = json.loads(mpath.read_text())
    assert m["fingerprint_algo"] == P.FINGERPRINT_ALGO and m["event_count"] == 300
    report = verify_archive(archive)
    assert report.ok and report.notes == [], report.to_dict()

    # a wrong fingerprint under this process's algorithm is a problem
    bad = dict(m, fingerprint=f"{(int(m['fingerprint'], 16) + 1) % (1 << 64):016x}")
    mpath.write_text(json.dumps(bad))
    report = verify_archive(archive)
    assert [p["problem"] for p in report.problems] == ["content"]

    # another DuckDB version's hash: not recomputed, said so, not a failure (sha256 + rows still checked)
    mpath.write_text(json.dumps(dict(bad, fingerprint_algo="duckdb-hash:0.9")))
    report = verify_archive(archive)
    assert report.ok and [n["note"] for n in report.notes] == ["fingerprint not recomputed"]
    assert "duckdb-hash:0.9" in report.notes[0]["detail"] and "notes" in report.to_dict()

    # a manifest written before fingerprint_algo existed holds the legacy MD5 fingerprint
    legacy = P.fingerprint([Path(str(mpath)[:-len(".manifest.json")])], "Trade", algo=P.LEGACY_FINGERPRINT_ALGO)
    old = {k: v for k, v in m.items() if k != "fingerprint_algo"}
    mpath.write_text(json.dumps(dict(old, fingerprint=legacy[1])))
    assert verify_archive(archive).ok
    mpath.write_text(json.dumps(old))                     # the fast value read as MD5: a mismatch
    assert [p["problem"] for p in verify_archive(archive).problems] == ["content"]


def test_ids_are_delta_byte_array_with_a_bloom_filter_and_unsorted_input_is_sorted(tmp_path):
    lines = [_line(i, None) for i in range(20_000)]
    src = _write(tmp_path / "a.jsonl", lines[10_000:] + lines[:10_000])     # out of order
    res = P.convert([src], tmp_path / "a.parquet", "Trade", compression="zstd-12")
    con = duckdb.connect()
    enc = con.execute("SELECT encodings FROM parquet_metadata(?) WHERE path_in_schema = 'trade_id'",
                      [str(res.path)]).fetchone()[0]
    assert "DELTA_BYTE_ARRAY" in enc and "RLE_DICTIONARY" not in enc
    probe = "SELECT bloom_filter_excludes FROM parquet_bloom_probe(?, 'trade_id', ?)"
    assert con.execute(probe, [str(res.path), "t12345"]).fetchone()[0] is False
    assert con.execute(probe, [str(res.path), "no-such-id"]).fetchone()[0] is True
    seqs = [r[0] for r in con.execute("SELECT seq FROM read_parquet(?)", [str(res.path)]).fetchall()]
    assert seqs == list(range(1, 20_001))
    assert (res.rows, res.fingerprint) == P.fingerprint([src], "Trade")
