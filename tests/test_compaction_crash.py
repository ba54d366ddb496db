"""Compaction never loses or duplicates a row: kill -9 of a real `mdcsql compact` process at every
step of a transition and at random instants, then a rerun; and two compactions racing.

The fault points are the lifecycle transition's (``MDCSQL_FAULT``, mdcsql.lifecycle.transition):
before_journal (outputs written and verified, nothing decided), after_journal, after_swap,
after_lineage and mid_delete (decided: the rerun rolls forward).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import pytest

from compaction_data import collect_rounds, content, data_files, tmp_files
from conftest import PYTHON, python_env
from mdcsql.archive import Archive
from mdcsql.catalog import Catalog

FAULTS = ("before_journal", "after_journal", "after_swap", "after_lineage", "mid_delete")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash-src") / "arch"
    collect_rounds(root, rounds=3, events=2000, symbols=["AAPL", "MSFT", "IBM"])
    return root, content(root), data_files(root)


@pytest.fixture
def arch(source, tmp_path):
    root = tmp_path / "arch"
    shutil.copytree(source[0], root)
    return root


def _compact(root, *extra, fault: str | None = None) -> subprocess.Popen:
    env = python_env()
    env.pop("MDCSQL_FAULT", None)
    if fault:
        env["MDCSQL_FAULT"] = fault
    return subprocess.Popen([PYTHON, "-m", "mdcsql", "compact", str(root), "--max-file-age", "0", "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _check_final(root, before, n_inputs: int) -> None:
    """Every row exactly once, one file per partition, no leftovers, lineage and catalog consistent."""
    assert content(root) == before
    files = data_files(root)
    assert len(files) * 3 == n_inputs and not any(".p2." in f or ".p3." in f for f in files)
    assert tmp_files(root) == [] and not (root / "_catalog" / "compaction-tmp").exists()
    assert not list((root / "_catalog" / "transitions").glob("*.json"))
    ids = [json.loads(line)["transition_id"] for line in (root / "_catalog" / "lineage.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == len(files)
    with Catalog.open(root, read_only=True) as cat:
        assert [r[0] for r in cat.execute("SELECT path FROM files ORDER BY path").rows] == files


@pytest.mark.parametrize("fault", FAULTS)
def test_kill_at_each_step_then_rerun(arch, source, fault):
    _, before, inputs = source
    p = _compact(arch, fault=fault)
    _, err = p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, err
    journals = list((arch / "_catalog" / "transitions").glob("*.json"))
    assert len(journals) == (0 if fault == "before_journal" else 1)
    if fault == "before_journal":                  # nothing decided: the inputs are all there
        assert data_files(arch) == inputs
    # a collector starting before the rerun first finishes the journalled transition (under the
    # lifecycle lock, mdcsql.ingest.recovery._lifecycle_first), then runs its own seal recovery:
    # that must find nothing of the compaction's to remove (tmp files live under _catalog/)
    assert Archive.open(arch).recover().tmp_removed == 0
    assert not list((arch / "_catalog" / "transitions").glob("*.json"))
    p = _compact(arch)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    doc = json.loads(out)
    assert doc["recovered"]["finished"] == 0        # nothing left for the rerun to finish
    _check_final(arch, before, len(inputs))


def test_kill_with_preserved_originals_leaves_no_stray_copies(arch, source):
    _, before, inputs = source
    p = _compact(arch, "--preserve-originals", fault="before_journal")
    p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL
    stray = [d.name for d in (arch / "_catalog" / "preserved").iterdir()]
    assert len(stray) == 1                         # linked before the commit that never happened
    p = _compact(arch, "--preserve-originals")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    kept = {d.name for d in (arch / "_catalog" / "preserved").iterdir()}
    assert stray[0] not in kept and kept == {m["transition_id"] for m in json.loads(out)["merges"]}
    _check_final(arch, before, len(inputs))


def test_repeated_kills_at_random_instants(arch, source):
    _, before, inputs = source
    kills = 0
    for delay in [0.5 + 0.2 * i for i in range(14)]:   # finer than a run lasts on a fast machine
        p = _compact(arch)
        time.sleep(delay)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate(timeout=300)
        if p.returncode == 0:
            break                                      # the job got through: nothing left to kill
        assert not list(set(data_files(arch)) - set(inputs) - {f.replace(".p2.", ".").replace(".p3.", ".") for f in inputs})
    assert kills >= 3, "the job finished before it could be killed; give it more data"
    p = _compact(arch)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    _check_final(arch, before, len(inputs))


def test_two_compactions_racing(arch, source):
    _, before, inputs = source
    procs = [_compact(arch), _compact(arch)]
    docs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        docs.append(json.loads(out))
    # the lifecycle lock serializes them: the second plans from the tree the first left
    assert sorted(d["files_processed"] for d in docs) == [0, len(inputs)]
    assert sum(d["files_created"] for d in docs) == len(inputs) // 3
    _check_final(arch, before, len(inputs))
