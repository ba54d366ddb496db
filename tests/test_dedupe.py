"""Duplicate detection: in-order, gaps, late fills, duplicates, and the vectorised batch form."""

import random

import numpy as np

from mdcsql.ingest.dedupe import StreamState


def test_late_fills_are_new_and_repeats_are_duplicates():
    s = StreamState()
    assert [s.admit_seq(q) for q in (10, 11, 15, 12, 12, 15, 9, 9, 14, 13, 13)] == \
        [True, True, True, True, False, False, True, False, True, True, False]
    assert s.gaps == [] and (s.lo, s.hi) == (9, 15)


def test_batch_form_agrees_with_the_per_event_form():
    rng = random.Random(5)
    for _ in range(200):
        seqs = [rng.randint(0, 60) for _ in range(rng.randint(1, 40))]
        if rng.random() < 0.5:
            seqs = sorted(set(seqs))
        a, b = StreamState(), StreamState()
        warm = [rng.randint(0, 30) for _ in range(5)]
        for q in warm:
            a.admit_seq(q)
            b.admit_seq(q)
        expected = [a.admit_seq(q) for q in seqs]
        mask = b.admit_seqs(np.array(seqs, dtype=np.int64))
        got = [True] * len(seqs) if mask is None else mask.tolist()
        assert got == expected
        assert (a.lo, a.hi, a.gaps) == (b.lo, b.hi, b.gaps)


def test_unsequenced_events_dedupe_by_content_hash():
    s = StreamState()
    assert [s.admit_hash(h) for h in (1, 2, 1, 3, 2)] == [True, True, False, True, False]
