"""Compaction and splitting on real archives: every row is kept exactly once (a checksum of every
typed view before and after), outputs are verified and indexed, the guard and the thresholds are
respected, the CLI reports and refuses bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess

import pytest

from compaction_data import collect_rounds, content, data_files, tmp_files, to_cold, to_tier
from conftest import PYTHON, python_env
from mdcsql.archive import Archive
from mdcsql.catalog import Catalog
from mdcsql.durable import read_json
from mdcsql.errors import ConfigError, NotFoundError
from mdcsql.ingest.seal import manifest_path
from mdcsql.lifecycle import compaction_io as cio
from mdcsql.lifecycle.compaction import DefragOptions, compact, plan_merges, split
from mdcsql.lifecycle.holds import add_hold
from mdcsql.lifecycle.parquet import fingerprint

NOW = DefragOptions(max_file_age=0)


@pytest.fixture(scope="module")
def parts_archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("src") / "arch"
    collect_rounds(root, rounds=3, events=1500)
    return root


@pytest.fixture
def arch(parts_archive, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(parts_archive, root)
    return root


def _mdcsql(*args, check=True):
    p = subprocess.run([PYTHON, "-m", "mdcsql", *map(str, args)], capture_output=True, text=True, env=python_env())
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_merges_parts_into_part_one_keeping_every_row(arch):
    before_files = data_files(arch)
    assert any(".p3." in f for f in before_files)
    before = content(arch)
    res = compact(arch, options=NOW)
    after_files = data_files(arch)
    assert not any(".p2." in f or ".p3." in f for f in after_files)
    assert len(after_files) * 3 == len(before_files)
    assert content(arch) == before
    assert res.files_processed == len(before_files) and res.files_created == len(after_files)
    assert res.bytes_before == sum(m["bytes"] for m in res.merges) and 0 < res.bytes_after < res.bytes_before
    assert res.compression_improvement == pytest.approx(1 - res.bytes_after / res.bytes_before)
    assert res.events == sum(c[0] for c in before.values()) and not res.errors and not tmp_files(arch)
    # the merged file: input lines byte-exact, in (ts, seq) order, its manifest right
    rel = "live/AAPL/Trade/2024-01-02~sim~equity.jsonl.gz"
    raw = gzip.decompress((arch / rel).read_bytes())
    m = read_json(manifest_path(arch / rel))
    assert m["raw_sha256"] == hashlib.sha256(raw).hexdigest() and m["raw_bytes"] == len(raw)
    assert m["sha256"] == hashlib.sha256((arch / rel).read_bytes()).hexdigest()
    keys = [cio.key_of(line) for line in raw.splitlines()]
    assert keys == sorted(keys) and m["event_count"] == len(keys) and m["part"] == 1
    assert m["lineage"]["operation"] == "compaction" and len(m["lineage"]["inputs"]) == 3
    # the catalog's files table is current, and mdcsql verify agrees with every manifest
    with Catalog.open(arch, read_only=True) as cat:
        rows = cat.execute("SELECT path, event_count, state FROM files ORDER BY path").rows
    assert [r[0] for r in rows] == after_files and all(r[2] == "sealed" for r in rows)
    assert "all agree" in _mdcsql("verify", arch).stdout
    lineage = [json.loads(line) for line in (arch / "_catalog" / "lineage.jsonl").read_text().splitlines()]
    assert len(lineage) == len(after_files) and {r["operation"] for r in lineage} == {"compaction"}
    # a second run finds nothing more to do
    again = compact(arch, options=NOW)
    assert again.files_processed == 0 and data_files(arch) == after_files


def test_dry_run_lists_merges_and_reasons_changes_nothing(arch):
    snapshot = {f: (arch / f).stat().st_mtime_ns for f in data_files(arch)}
    res = compact(arch, options=NOW, dry_run=True)
    assert res.dry_run and len(res.merges) == len(snapshot) // 3
    m = res.merges[0]
    assert len(m["inputs"]) == 3 and m["output"] == m["inputs"][0] and "smaller than 1048576 bytes" in m["reason"]
    assert {f: (arch / f).stat().st_mtime_ns for f in data_files(arch)} == snapshot
    assert not (arch / "_catalog" / "lineage.jsonl").exists()
    out = _mdcsql("compact", arch, "--dry-run", "--max-file-age", "0").stdout
    assert "would merge 3 files -> live/AAPL/Trade/2024-01-02~sim~equity.jsonl.gz" in out


def test_age_and_size_thresholds(arch):
    a = Archive.open(arch)
    young, skipped = plan_merges(a, DefragOptions(max_file_age="7d"), as_of=None)
    assert young == [] and skipped and all("sealed after" in s["reason"] for s in skipped)
    # --as-of in the future makes the same files old enough
    later, _ = plan_merges(a, DefragOptions(max_file_age="7d"), as_of="2099-01-01")
    assert len(later) == len(data_files(arch)) // 3
    assert plan_merges(a, DefragOptions(max_file_age=0, min_file_size_bytes=100), as_of=None)[0] == []
    # MaxFileBytes bounds a merged file: at most two of these small files fit
    sizes = sorted((arch / f).stat().st_size for f in data_files(arch) if "AAPL/Trade" in f)
    capped, _ = plan_merges(a, DefragOptions(max_file_age=0, max_file_bytes=sizes[0] + sizes[1] + 1), as_of=None)
    trade = [m for m in capped if "AAPL/Trade" in m.output]
    assert len(trade) == 1 and len(trade[0].inputs) == 2


def test_max_files_per_merge_batches_by_part(tmp_path):
    root = tmp_path / "arch"
    collect_rounds(root, rounds=5, events=300, symbols=["AAPL"])
    before = content(root)
    compact(root, options=DefragOptions(max_file_age=0, max_files_per_merge=2))
    trade = sorted(f for f in data_files(root) if "/Trade/" in f)
    assert trade == ["live/AAPL/Trade/2024-01-02~sim~equity.jsonl.gz", "live/AAPL/Trade/2024-01-02~sim~equity.p3.jsonl.gz",
                     "live/AAPL/Trade/2024-01-02~sim~equity.p5.jsonl.gz"]
    assert content(root) == before
    compact(root, options=DefragOptions(max_file_age=0, max_files_per_merge=3))
    assert sorted(f for f in data_files(root) if "/Trade/" in f) == ["live/AAPL/Trade/2024-01-02~sim~equity.jsonl.gz"]
    assert content(root) == before


def test_target_compression_rewrites_codec_of_warm_files(arch):
    to_tier(arch, "warm")
    before = content(arch)
    res = _mdcsql("compact", arch, "--max-file-age", "0", "--target-compression", "zstd-9", "--json")
    doc = json.loads(res.stdout)
    assert doc["files_created"] == len(data_files(arch)) and doc["options"]["target_compression"] == "zstd-9"
    assert all(f.startswith("warm/") and f.endswith(".jsonl.zst") for f in data_files(arch))
    m = read_json(manifest_path(arch / data_files(arch)[0]))
    assert (m["codec"], m["compression_level"]) == ("zstd", 9)
    assert content(arch) == before


def test_hot_files_merge_in_place_only(arch):
    """Hot files keep their name and codec (TargetCompression is for warm/cold) and are not split:
    a collector's recovery must never meet a compacted hot file it does not know."""
    res = compact(arch, options=DefragOptions(max_file_age=0, target_compression="zstd-9"))
    assert res.files_created == 8 and all(f.endswith(".jsonl.gz") for f in data_files(arch))
    big = split(arch, max_bytes=1000)
    assert big.files_processed == 0 and all("migrated to warm" in s["reason"] for s in big.skipped)


def test_parquet_parts_of_a_cold_partition_merge(arch):
    cold = to_cold(arch)
    assert len(cold) == 24 and any(".p3.parquet" in c for c in cold)
    before = content(arch)
    trades = sorted(arch / c for c in cold if "AAPL/Trade" in c)
    fp = fingerprint(trades, "Trade")
    res = compact(arch, options=NOW)
    assert res.files_processed == 24 and res.files_created == 8 and not res.errors
    assert all(f.startswith("cold/") and ".p2." not in f and ".p3." not in f for f in data_files(arch))
    merged = arch / "cold/live/AAPL/Trade/2024-01-02~sim~equity.parquet"
    assert fingerprint([merged], "Trade") == fp
    m = read_json(manifest_path(merged))
    assert m["format"] == "parquet" and m["event_count"] == fp[0] and m["fingerprint"] == fp[1]
    assert (m["codec"], m["compression_level"]) == ("zstd", 12)          # the cold tier's codec
    assert content(arch) == before


def test_split_jsonl_into_ts_ranges(arch):
    compact(arch, options=NOW)
    to_tier(arch, "warm")
    rel = "warm/live/AAPL/BboQuote/2024-01-02~sim~equity.jsonl.gz"
    size = (arch / rel).stat().st_size
    before = content(arch)
    res = split(arch, [rel], max_bytes=size // 3)
    assert res.files_processed == 1 and res.files_created >= 3 and not res.errors
    outs = res.splits[0]["outputs"]
    assert outs[0]["path"] == rel and outs[1]["path"].endswith(".p2.jsonl.gz")
    assert all(a["last_ts"] < b["first_ts"] for a, b in zip(outs, outs[1:]))        # disjoint ts ranges
    assert sum(o["event_count"] for o in outs) == read_json(manifest_path(arch / rel))["lineage"]["inputs"][0]["event_count"]
    assert content(arch) == before
    assert "all agree" in _mdcsql("verify", arch).stdout
    # a file not above the limit is left alone and said so
    small = split(arch, [rel], max_bytes=10**9)
    assert small.files_processed == 0 and "not larger than" in small.skipped[0]["reason"]


def test_split_parquet_into_ts_ranges(arch):
    to_cold(arch)
    compact(arch, options=NOW)
    rel = "cold/live/MSFT/BboQuote/2024-01-02~sim~equity.parquet"
    fp = fingerprint([arch / rel], "BboQuote")
    before = content(arch)
    out = _mdcsql("split", arch, rel, "--max-bytes", (arch / rel).stat().st_size // 2).stdout
    assert f"split {rel} into" in out
    parts = sorted(arch / f for f in data_files(arch) if "MSFT/BboQuote" in f)
    assert len(parts) >= 2 and fingerprint(parts, "BboQuote") == fp
    assert content(arch) == before


def test_preserve_originals_keeps_verified_copies(arch):
    shas = {f: hashlib.sha256((arch / f).read_bytes()).hexdigest() for f in data_files(arch)}
    res = compact(arch, options=DefragOptions(max_file_age=0, preserve_originals=True))
    assert len(res.preserved) == len(res.merges)
    kept = {}
    for d in res.preserved:
        base = arch / d
        for p in base.rglob("*"):
            if p.is_file() and not p.name.endswith(".manifest.json"):
                kept[p.relative_to(base).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
                assert manifest_path(p).exists()
    assert kept == shas
    # preserved copies are not data of the archive: the views do not see them twice
    assert content(arch)["trades"][2] == 0


def test_held_partition_is_refused_others_merge(arch):
    before = content(arch)
    add_hold(arch, "case-1", reason="litigation", symbols=["MSFT"], by="counsel")
    msft = {f: (arch / f).read_bytes() for f in data_files(arch) if "/MSFT/" in f}
    res = compact(arch, options=NOW)
    assert len(res.refused) == 4 and all("legal hold case-1" in r["reason"] for r in res.refused)
    assert res.files_processed == 12 and not res.errors
    assert {f: (arch / f).read_bytes() for f in data_files(arch) if "/MSFT/" in f} == msft
    assert not any("/AAPL/" in f and ".p2." in f for f in data_files(arch))
    assert (arch / "_catalog" / "refusals.jsonl").read_text().count("case-1") >= 4
    assert content(arch) == before
    cli = _mdcsql("compact", arch, "--max-file-age", "0")
    assert cli.stdout.count("refused:") == 4


def test_hot_tier_waits_for_a_running_collector(arch):
    a = Archive.open(arch)
    w = a.writer("sim")                  # holds the archive's write lock, as a collector does
    try:
        res = compact(arch, options=NOW)
    finally:
        w.flush()
        a.close(seal=False)
    assert res.files_processed == 0 and res.skipped and "hot tier skipped" in res.skipped[-1]["reason"]


def test_damaged_input_is_not_compacted(arch):
    rel = "live/AAPL/Trade/2024-01-02~sim~equity.p2.jsonl.gz"
    path = arch / rel
    data = bytearray(path.read_bytes())
    data[-12] ^= 0xFF                    # gzip trailer damaged: bytes no longer match the manifest
    path.write_bytes(bytes(data))
    res = compact(arch, options=NOW)
    assert len(res.errors) == 1 and rel in res.errors[0]["paths"] and "sha256" in res.errors[0]["reason"]
    assert (arch / rel).exists() and res.files_created == 7
    assert any(f.endswith(".p3.jsonl.gz") and "AAPL/Trade" in f for f in data_files(arch))
    cli = _mdcsql("compact", arch, "--max-file-age", "0", check=False)
    assert cli.returncode == 1 and "error:" in cli.stderr


def test_options_and_cli_refuse_bad_input(arch):
    with pytest.raises(ConfigError):
        DefragOptions(max_files_per_merge=1)
    with pytest.raises(ConfigError):
        DefragOptions(target_compression="rar")
    with pytest.raises(NotFoundError, match="not a sealed data file"):
        split(arch, ["live/nope.jsonl"])
    for args, text in ((("--max-file-age", "soon"), "not a duration"), (("--as-of", "yesterday"), "not a date"),
                       (("--target-compression", "lzma"), "unknown codec"), (("--max-files-per-merge", "1"), "1")):
        p = _mdcsql("compact", arch, *args, check=False)
        assert p.returncode == 2 and text in p.stderr
    p = _mdcsql("split", arch, "live/AAPL/Trade/nope.jsonl.gz", check=False)
    assert p.returncode == 1 and p.stderr.startswith("error: not a sealed data file")


def test_from_settings_reads_storage_compaction(tmp_path):
    root = tmp_path / "arch"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"Storage": {"Compaction": {"MinFileSizeBytes": 5000, "MaxFilesPerMerge": 4,
                                                          "MaxFileAge": "2h", "PreserveOriginals": True}}}))
    Archive.init(root, config=cfg)
    opts = DefragOptions.from_settings(Archive.open(root).settings, max_files_per_merge=6)
    assert (opts.min_file_size_bytes, opts.max_files_per_merge, opts.max_file_age_seconds,
            opts.preserve_originals, opts.max_file_bytes) == (5000, 6, 7200, True, 1 << 30)


def test_partition_with_an_unsealed_file_is_left_alone(arch):
    """A half-sealed part (hot copy still beside its sealed copy) is paired by the collector's
    recovery by part number: merging that partition first would make the recovery seal it again."""
    rel = "live/AAPL/Trade/2024-01-02~sim~equity.p2.jsonl.gz"
    (arch / rel.replace(".jsonl.gz", ".jsonl")).write_bytes(gzip.decompress((arch / rel).read_bytes()))
    res = compact(arch, options=NOW)
    assert res.files_created == 7 and any("without a manifest" in s["reason"] for s in res.skipped)
    assert (arch / rel).exists()
