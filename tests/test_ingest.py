"""The write path on a real archive: acknowledgements, sealing, codecs, dedupe, recovery."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from archive_contents import data_files, stored_events, stream_keys
from conftest import PYTHON, python_env
from mdcsql.archive import Archive
from mdcsql.errors import ArchiveLockedError, InputError
from mdcsql.ingest.seal import manifest_path
from mdcsql.ingest.wal import list_segments
from mdcsql.sources.sim import SimulatedMarket

START = 1_705_276_800 * 10**9   # 2024-01-15T00:00:00Z
DAY = 86_400 * 10**9


def _init(root: Path, **storage) -> Archive:
    cfg = root.parent / f"{root.name}-config.json"
    cfg.write_text(json.dumps({"Storage": storage}))
    return Archive.init(root, config=cfg)


def trade(seq, ts, price="187.10", symbol="AAPL", source="alpaca", size="100"):
    return {"type": "Trade", "symbol": symbol, "source": source, "ts": ts, "seq": seq, "price": price,
            "size": size, "side": "buy"}


def test_acknowledged_events_are_in_hot_files(archive_root):
    archive = _init(archive_root, CompressionCodec="gzip")
    w = archive.writer("alpaca")
    for i in range(1, 101):
        w.append(trade(i, START + i * 1000))
    ack = w.flush()
    assert ack.events == 100 and ack.lsn > 0
    hot = [p for p in data_files(archive_root) if p.suffix == ".jsonl"]
    assert len(hot) == 1
    lines = hot[0].read_bytes().splitlines()
    assert len(lines) == 100
    first = json.loads(lines[0])
    assert first["price"] == "187.10" and first["ts"] == START + 1000 and first["seq"] == 1
    archive.close()


@pytest.mark.parametrize("codec,level,opener", [
    ("gzip", 6, lambda p: gzip.open(p, "rb").read()),
    ("zstd", 19, lambda p: zstandard.ZstdDecompressor().stream_reader(open(p, "rb")).read()),
    ("none", 0, lambda p: open(p, "rb").read()),
])
def test_seal_writes_the_real_codec_and_a_matching_manifest(archive_root, codec, level, opener):
    import hashlib
    storage = {"CompressionCodec": codec} if codec != "none" else {"Compress": False}
    if codec == "zstd":
        storage["CompressionLevel"] = level
    archive = _init(archive_root, **storage)
    w = archive.writer("alpaca")
    events = [trade(i, START + i * 10**9, price=f"{187 + i / 100:.2f}") for i in range(1, 501)]
    w.append_many(events)
    w.flush()
    hot_bytes = b"".join(p.read_bytes() for p in data_files(archive_root))
    manifests = archive.seal()
    archive.close()
    assert len(manifests) == 1
    m = manifests[0]
    path = archive_root / m["path"]
    assert path.name.endswith({"gzip": ".jsonl.gz", "zstd": ".jsonl.zst", "none": ".jsonl"}[codec])
    raw = opener(path)                      # the codec named by the extension is really inside
    assert raw == hot_bytes
    assert hashlib.sha256(path.read_bytes()).hexdigest() == m["sha256"]
    assert hashlib.sha256(raw).hexdigest() == m["raw_sha256"]
    assert (m["event_count"], m["first_seq"], m["last_seq"]) == (500, 1, 500)
    assert (m["first_ts"], m["last_ts"]) == (START + 10**9, START + 500 * 10**9)
    assert m["codec"] == codec and m["gap_count"] == 0
    assert json.loads(manifest_path(path).read_text()) == m


def test_gaps_and_duplicates_are_counted(archive_root):
    archive = _init(archive_root)
    w = archive.writer("alpaca")
    seqs = [1, 2, 3, 3, 7, 8, 2, 12, 13]             # dup 3, dup 2, gaps 4-6 and 9-11
    for s in seqs:
        w.append(trade(s, START + s * 1000))
    w.append({**trade(None, START + 5), "seq": None})    # no seq: dedupe by ts + content
    w.append({**trade(None, START + 5), "seq": None})
    w.flush()
    assert archive.ingestor().duplicates_dropped == 3
    (m,) = archive.seal()
    archive.close()
    assert m["event_count"] == 8
    assert m["gaps"] == [[4, 6], [9, 11]] and m["gap_count"] == 2
    assert m["duplicates_dropped"] == 3


def test_partition_boundary_seals_the_previous_day_and_late_data_gets_a_new_part(archive_root):
    archive = _init(archive_root, DatePartition="Daily")
    w = archive.writer("alpaca")
    w.append(trade(1, START + 10))
    w.append(trade(2, START + DAY + 10))       # next day: the first day's file is sealed
    w.flush()
    sealed = archive.ingestor().sealed
    assert [m["period"] for m in sealed] == ["2024-01-15"]
    w.append(trade(3, START + 20))             # late event for the sealed day → part 2
    w.flush()
    archive.close()
    parts = sorted((archive.layout.parse(p.relative_to(archive_root).as_posix()).key.period,
                    archive.layout.parse(p.relative_to(archive_root).as_posix()).part)
                   for p in data_files(archive_root))
    assert parts == [("2024-01-15", 1), ("2024-01-15", 2), ("2024-01-16", 1)]


def test_a_second_writer_process_is_refused(archive_root):
    archive = _init(archive_root)
    archive.writer("alpaca").append(trade(1, START))
    code = ("import sys\nfrom mdcsql.archive import Archive\nfrom mdcsql.errors import ArchiveLockedError\n"
            f"try:\n    Archive.open({str(archive_root)!r}).ingestor()\nexcept ArchiveLockedError as e:\n"
            "    print('LOCKED', e); sys.exit(3)\n")
    proc = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=python_env())
    assert proc.returncode == 3, proc.stderr
    assert f"pid {os.getpid()}" in proc.stdout
    archive.close()


def test_torn_wal_tail_is_quarantined_with_a_record(archive_root):
    archive = _init(archive_root)
    w = archive.writer("alpaca")
    w.append_many([trade(i, START + i) for i in range(1, 11)])
    w.flush()
    archive.close(seal=False)
    (_, seg), *_ = list_segments(archive_root / "_wal")[-1:]
    with open(seg, "ab") as f:
        f.write(b"MDW1\x10\x00\x00\x00garbage-half-frame")
    report = Archive.open(archive_root).recover()
    assert len(report.quarantined) == 1
    q = report.quarantined[0]
    assert q["reason"].startswith("torn write-ahead log tail") and q["bytes"] == 26 and q["file"].startswith("_wal/")
    assert (archive_root / q["data_file"]).read_bytes().endswith(b"garbage-half-frame")
    assert json.loads((archive_root / q["data_file"].replace(".bin", ".json")).read_text())["offset"] == q["offset"]
    assert len(stored_events(archive_root)) == 10
    again = Archive.open(archive_root).recover()          # recovery is idempotent
    assert again.clean and len(stored_events(archive_root)) == 10


def test_torn_line_in_a_hot_file_is_cut_into_quarantine(archive_root):
    archive = _init(archive_root)
    w = archive.writer("alpaca")
    w.append_many([trade(i, START + i) for i in range(1, 6)])
    archive.close(seal=False)
    (hot,) = data_files(archive_root)
    with open(hot, "ab") as f:                  # e.g. a foreign writer died mid-line
        f.write(b'{"type":"Trade","symbol":"AA')
    report = Archive.open(archive_root).recover()
    assert [q["reason"] for q in report.quarantined] == ["torn last line (no newline) in a hot file"]
    assert hot.read_bytes().endswith(b"\n") and len(hot.read_bytes().splitlines()) == 5


def test_interrupted_seal_states_converge(archive_root):
    archive = _init(archive_root, CompressionCodec="zstd")
    w = archive.writer("alpaca")
    w.append_many([trade(i, START + i) for i in range(1, 51)])
    archive.close(seal=False)
    (hot,) = data_files(archive_root)
    # crash after writing the compressed temp file: a .tmp leftover
    tmp = hot.with_name(hot.name.replace(".jsonl", ".jsonl.zst.tmp"))
    tmp.write_bytes(b"partial")
    # crash after the rename but before the manifest: a compressed file with no manifest
    orphan = hot.with_name(hot.name.replace(".jsonl", ".jsonl.zst"))
    orphan.write_bytes(zstandard.ZstdCompressor().compress(hot.read_bytes()[:100]))
    report = Archive.open(archive_root).recover()
    assert report.tmp_removed == 2 and not tmp.exists() and not orphan.exists()
    assert hot.exists()
    # crash after the manifest but before the hot file was deleted: a seal, then the hot copy comes back
    hot_copy = hot.read_bytes()
    a = Archive.open(archive_root)
    a.seal()
    a.close()
    hot.write_bytes(hot_copy)
    report = Archive.open(archive_root).recover()
    assert report.seals_completed == 1 and not hot.exists()
    assert stream_keys(stored_events(archive_root)) == {("alpaca", "AAPL", "Trade", i): 1 for i in range(1, 51)}


def test_batch_table_path_writes_the_same_bytes_as_per_event(tmp_path):
    market = SimulatedMarket(["AAPL", "MSFT"], seed=3, start_ns=START, events_per_second=50)
    trades = [e for e in market.take(3000) if e["type"] == "Trade"]
    a = _init(tmp_path / "a")
    a.writer("sim").append_many(trades)
    a.close(seal=False)
    b = _init(tmp_path / "b")
    cols = {k: [t[k] for t in trades] for k in trades[0]}
    b.writer("sim").append_table(pa.table(cols), type="Trade")
    b.close(seal=False)
    files_a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in data_files(tmp_path / "a")}
    files_b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in data_files(tmp_path / "b")}
    assert files_a == files_b and len(files_a) == 2


def test_bad_event_is_rejected_and_nothing_stored_is_lost(archive_root):
    archive = _init(archive_root)
    w = archive.writer("alpaca")
    w.append(trade(1, START))
    with pytest.raises(InputError) as err:
        w.append(trade(2, START + 1, size="-5"))
    assert err.value.field == "size"
    w.flush()
    archive.close()
    assert [e["seq"] for e in stored_events(archive_root)] == [1]


def test_hostile_symbols_stay_inside_the_root(archive_root):
    archive = _init(archive_root, NamingConvention="Hierarchical")
    w = archive.writer("alpaca")
    hostile = ["BRK/B", "BRK.B", "../x", "..", "^GSPC", "ES=F", "EUR/USD", "a b", "日本"]
    for i, s in enumerate(hostile):
        w.append(trade(1, START + i, symbol=s))
    archive.close()
    files = data_files(archive_root)
    assert len(files) == len(hostile)
    for f in files:
        assert archive_root.resolve() in f.resolve().parents
    assert sorted(e["symbol"] for e in stored_events(archive_root)) == sorted(hostile)


def test_seal_also_seals_hot_files_a_crashed_collector_left(archive_root):
    archive = _init(archive_root)
    archive.writer("alpaca").append_many([trade(i, START + i) for i in range(1, 21)])
    archive.close(seal=False)                              # as after kill -9 + recovery: hot files remain
    assert [p.suffix for p in data_files(archive_root)] == [".jsonl"]
    reopened = Archive.open(archive_root)
    (m,) = reopened.seal()
    reopened.close()
    assert m["event_count"] == 20 and m["path"].endswith(".jsonl.gz")
    assert [p.name.endswith(".jsonl.gz") for p in data_files(archive_root)] == [True]
    assert Archive.open(archive_root).recover().clean
