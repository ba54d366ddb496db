"""Duplicate detection per stream (source, symbol, type), cheap enough for the per-event hot path.

Sequenced streams keep no set of seen numbers: only the range seen so far and the *gaps* inside
it.  A seq above the range extends it (a jump records a gap); a seq inside the range is a late
fill if it lies in a gap, and a duplicate otherwise.  In-order events cost one comparison.
Streams without seq fall back to a bounded window of content hashes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict

import numpy as np

MAX_GAPS = 10_000          # gap intervals remembered per stream (up to twice that; oldest forgotten first)
HASH_WINDOW = 100_000      # content hashes remembered per unsequenced stream


class StreamState:
    __slots__ = ("lo", "hi", "gaps", "hashes")

    def __init__(self) -> None:
        self.lo: int | None = None        # smallest seq seen
        self.hi = -1                      # largest seq seen
        self.gaps: list[list[int]] = []   # sorted, disjoint [start, end] ranges of unseen seqs in [lo, hi]
        self.hashes: OrderedDict | None = None

    def admit_seq(self, seq: int) -> bool:
        """True if `seq` is new for this stream (and remember it); False for a duplicate."""
        hi = self.hi
        if seq > hi:
            if self.lo is None:
                self.lo = seq
            elif seq > hi + 1:
                self._add_gap(hi + 1, seq - 1)
            self.hi = seq
            return True
        if seq < self.lo:
            if seq < self.lo - 1:
                self.gaps.insert(0, [seq + 1, self.lo - 1])
            self.lo = seq
            return True
        return self._fill(seq)

    def admit_seqs(self, seqs: np.ndarray) -> np.ndarray | None:
        """Vectorised admit for a batch in arrival order: None when every seq is new, else a keep-mask."""
        if len(seqs) == 0:
            return None
        diffs = np.diff(seqs)
        if seqs[0] > self.hi and (len(diffs) == 0 or diffs.min() > 0):
            if self.lo is None:
                self.lo = int(seqs[0])
            elif seqs[0] > self.hi + 1:
                self._add_gap(self.hi + 1, int(seqs[0]) - 1)
            jumps = np.flatnonzero(diffs > 1)
            if len(jumps):
                starts, ends = (seqs[jumps] + 1).tolist(), (seqs[jumps + 1] - 1).tolist()
                self.gaps.extend([a, b] for a, b in zip(starts, ends))
                self._trim()
            self.hi = int(seqs[-1])
            return None
        return np.fromiter((self.admit_seq(int(s)) for s in seqs), dtype=bool, count=len(seqs))

    def admit_hash(self, key: int) -> bool:
        if self.hashes is None:
            self.hashes = OrderedDict()
        if key in self.hashes:
            return False
        self.hashes[key] = None
        if len(self.hashes) > HASH_WINDOW:
            self.hashes.popitem(last=False)
        return True

    def _add_gap(self, start: int, end: int) -> None:
        self.gaps.append([start, end])
        if len(self.gaps) > 2 * MAX_GAPS:
            self._trim()

    def _trim(self) -> None:
        """Forget the oldest gaps beyond MAX_GAPS (amortised: runs once per MAX_GAPS additions)."""
        if len(self.gaps) > 2 * MAX_GAPS:
            del self.gaps[:len(self.gaps) - MAX_GAPS]

    def _fill(self, seq: int) -> bool:
        gaps = self.gaps
        i = bisect_right(gaps, [seq, float("inf")]) - 1
        if i < 0 or not gaps[i][0] <= seq <= gaps[i][1]:
            return False
        start, end = gaps[i]
        if start == end:
            del gaps[i]
        elif seq == start:
            gaps[i][0] = seq + 1
        elif seq == end:
            gaps[i][1] = seq - 1
        else:
            gaps[i:i + 1] = [[start, seq - 1], [seq + 1, end]]
        return True
