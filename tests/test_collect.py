"""The collection loop: sources run side by side; one failing never stops or loses another's events."""

from __future__ import annotations

from archive_contents import stored_events
from mdcsql.archive import Archive
from mdcsql.collect import collect
from mdcsql.sources.base import Source
from mdcsql.sources.sim import SimSource

START = 1_705_312_800 * 10**9   # 2024-01-15T10:00:00Z


class Exploding(Source):
    """Yields a few good events, then a bad one (rejected by validation), then raises."""

    id = "flaky"
    kind = "live"

    def batches(self):
        for i in range(1, 4):
            yield [{"type": "Trade", "symbol": "ZZZ", "ts": START + i, "seq": i, "price": "1.00", "size": "1"}]
        raise ConnectionError("feed went away")


def test_a_failing_source_does_not_stop_the_others(tmp_path):
    archive = Archive.init(tmp_path / "a")
    good = SimSource(["AAPL", "MSFT"], seed=5, start_ns=START)
    summary = collect(archive, [Exploding(), good], events=20_000)
    assert summary["failed"] == ["flaky"]
    assert "ConnectionError: feed went away" in summary["sources"]["flaky"]["failure"]
    assert summary["sources"]["flaky"]["events_appended"] == 3
    stored = stored_events(tmp_path / "a")
    assert sum(1 for e in stored if e["source"] == "flaky") == 3        # acknowledged before the failure: kept
    assert sum(1 for e in stored if e["source"] == "sim") == summary["events"] - 3 > 10_000


def test_the_event_budget_is_shared_and_exact(tmp_path):
    archive = Archive.init(tmp_path / "b")
    sources = [SimSource(["AAPL"], seed=1, start_ns=START, source_id="s1"),
               SimSource(["MSFT"], seed=2, start_ns=START, source_id="s2")]
    summary = collect(archive, sources, events=5_000)
    assert summary["events"] == 5_000 == len(stored_events(tmp_path / "b"))
    assert not summary["failed"]
