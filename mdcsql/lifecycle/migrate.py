"""Tier migration: plan the policy engine's moves as transitions, then run them.

hot → warm re-compresses JSONL (``codecs.recompress_jsonl``), → cold converts to typed Parquet
(``parquet.convert``), → archive converts to Parquet zstd-19 *consolidated*: the files of one
(reason, root, type, symbol, source, asset class) that fall into one complete week, month or
year become one file (daily → weekly → monthly → yearly, ``policy.archive_target``). Every step
is a :class:`~mdcsql.lifecycle.transition.Transition`: verified before the swap, journalled,
lineage-recorded, resumable after ``kill -9`` (rerun: every event exactly once).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from mdcsql.errors import MdcsqlError
from mdcsql.ingest.seal import utc_now_iso
from mdcsql.layout import DAY_NS
from mdcsql.lifecycle import codecs, parquet
from mdcsql.lifecycle.policy import Decision, decide
from mdcsql.lifecycle.tiers import archive_relpath, label_of, label_range, parse_any, tier_specs
from mdcsql.lifecycle.transition import Transition, lifecycle_lock, recover_transitions

__all__ = ["Step", "Plan", "MigrationResult", "plan", "migrate", "catalog_rows", "protections"]

_EPOCH = date(1970, 1, 1)


@dataclass
class Step:
    """One transition to run: inputs (catalog rows) -> outputs [(path, ts_range)]."""

    operation: str              # migrate | consolidate
    target_tier: str
    inputs: list[dict]
    outputs: list[tuple[str, tuple[int, int] | None]]
    reason: str
    type: str

    def to_dict(self) -> dict:
        return {"operation": self.operation, "target_tier": self.target_tier, "reason": self.reason,
                "inputs": [r["path"] for r in self.inputs], "outputs": [o for o, _ in self.outputs],
                "events": sum(r.get("event_count") or 0 for r in self.inputs),
                "bytes": sum(r.get("size_bytes") or 0 for r in self.inputs)}


@dataclass
class Plan:
    as_of: datetime
    decisions: list[Decision]
    steps: list[Step]


@dataclass
class MigrationResult:
    steps_done: int = 0
    steps_failed: int = 0
    files_in: int = 0
    files_out: int = 0
    events: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0
    recovered: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "touched"}


# --------------------------------------------------------------------------- inputs of a plan

def catalog_rows(archive) -> list[dict]:
    """Every file row, after a full sync (the plan must see the tree as it is now)."""
    with archive.catalog(timeout=60) as cat:
        cat.sync(archive.layout)
        rows = cat.execute("SELECT * FROM files ORDER BY path").dicts()
    for r in rows:
        for k in ("first_ts", "last_ts"):
            r[k] = _to_ns(r.get(k))
    return rows


def _to_ns(value) -> int | None:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, str):        # exact TIMESTAMP_NS text from Catalog.execute
        from mdcsql.events import parse_ts
        return parse_ts(value)
    if isinstance(value, datetime):
        v = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(v.timestamp()) * 1_000_000_000 + v.microsecond * 1000
    return None


def protections(root: Path, settings, rows: list[dict], as_of) -> dict[str, list[str]]:
    """path -> why it may not be moved or deleted (legal holds, WORM), without logging refusals
    (planning is a dry run; the guard logs when a job actually tries)."""
    from mdcsql.lifecycle.guard import find_protections
    if not rows:
        return {}
    _, found = find_protections(root, rows, as_of=as_of, settings=settings)
    out: dict[str, list[str]] = {}
    for p in found:
        out.setdefault(p.path, []).append(p.detail)
    return out


# --------------------------------------------------------------------------- planning

def plan(archive, *, as_of: datetime, rows: list[dict] | None = None) -> Plan:
    """Decide every file (``policy.decide``) and turn the moves into steps."""
    rows = catalog_rows(archive) if rows is None else rows
    prot = protections(archive.root, archive.settings, rows, as_of)
    decisions = decide(rows, archive.settings, as_of, protections=prot)
    by_path = {r["path"]: r for r in rows}
    steps: list[Step] = []
    taken = set(by_path)
    archive_bound: list[tuple[Decision, dict]] = []
    for d in decisions:
        row = by_path[d.path]
        if d.action == "migrate" and d.target_tier in ("warm", "cold"):
            spec = target_spec(archive.settings, d.type, d.target_tier)
            meta = parse_any(d.path, archive.layout)
            codec = "parquet" if spec.is_parquet else spec.codec
            part = meta.part
            while True:
                out = archive.layout.relpath(meta.key, codec=codec, part=part, tier=d.target_tier)
                if out not in taken:
                    break
                part += 1
            taken.add(out)
            d.target_path = out
            steps.append(Step("migrate", d.target_tier, [row], [(out, None)], d.reason, d.type))
        elif (d.action == "migrate" and d.target_tier == "archive") or d.action == "consolidate":
            archive_bound.append((d, row))
    steps.extend(_archive_steps(archive, archive_bound, rows, prot))
    return Plan(as_of, decisions, steps)


def _periods(row: dict, granularity: str) -> list[str]:
    first, last = row.get("first_ts"), row.get("last_ts")
    d0 = _EPOCH + timedelta(days=first // DAY_NS)
    d1 = _EPOCH + timedelta(days=last // DAY_NS)
    labels, d = [], d0
    while d <= d1:
        lab = label_of(d, granularity)
        if not labels or labels[-1] != lab:
            labels.append(lab)
        d = label_range(lab)[1]
    return labels


def _range_ns(label: str) -> tuple[int, int]:
    a, b = label_range(label)
    return (a - _EPOCH).days * DAY_NS, (b - _EPOCH).days * DAY_NS


def _archive_steps(archive, bound: list[tuple[Decision, dict]], rows: list[dict], prot) -> list[Step]:
    """Group archive-bound files into consolidation transitions (connected by shared periods)."""
    from mdcsql.lifecycle.policy import effective_policies
    pols = effective_policies(archive.settings, sorted({r["type"] for _, r in bound}))
    existing = {r["path"]: r for r in rows if r["tier"] == "archive"}
    groups: dict[tuple, dict] = {}     # (reason, root, type, symbol, source, asset, granularity) -> label -> rows
    for d, row in bound:
        if row.get("first_ts") is None or row.get("last_ts") is None:
            continue
        g = d.granularity or "Daily"
        reason = row["path"].split("/")[1] if row["tier"] == "archive" else pols[row["type"]].archive_reason.lower()
        key = (reason, row["root"], row["type"], row["symbol"], row["source"], row["asset_class"], g)
        for lab in _periods(row, g):
            groups.setdefault(key, {}).setdefault(lab, []).append(row)
    steps = []
    for (reason, root_, type_, symbol, source, asset, g), by_label in sorted(groups.items()):
        # union-find over labels sharing an input file
        parent = {lab: lab for lab in by_label}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        owner: dict[str, str] = {}
        for lab, members in by_label.items():
            for r in members:
                if r["path"] in owner:
                    parent[find(lab)] = find(owner[r["path"]])
                owner[r["path"]] = lab
        comps: dict[str, list[str]] = {}
        for lab in by_label:
            comps.setdefault(find(lab), []).append(lab)
        from mdcsql.layout import PartitionKey
        key = PartitionKey(root_, source, asset, symbol, type_, "")
        for labels in comps.values():
            inputs: dict[str, dict] = {}
            outputs = []
            for lab in sorted(labels):
                for r in by_label[lab]:
                    inputs[r["path"]] = r
                part = 1
                while True:
                    out = archive_relpath(reason, key, lab, part=part)
                    if out in existing and out not in inputs:
                        if prot.get(out):          # a locked file of that period: add a part
                            part += 1
                            continue
                        inputs[out] = existing[out]  # rewrite it with the newcomers
                    break
                outputs.append((out, _range_ns(lab)))
            n = sum(r.get("event_count") or 0 for r in inputs.values())
            steps.append(Step("consolidate" if all(r["tier"] == "archive" for r in inputs.values()) else "migrate",
                              "archive", list(inputs.values()), outputs,
                              f"{len(inputs)} file(s), {n} events -> {g.lower()} archive file(s) "
                              + ", ".join(lab for lab in sorted(labels)), type_))
    return steps


# --------------------------------------------------------------------------- execution

def _manifest(out_rel: str, step: Step, res, *, tier: str, fmt: str, codec: str, level, archive) -> dict:
    meta = parse_any(out_rel, archive.layout)
    src = step.inputs
    first = [r for r in src if r.get("first_seq") is not None]
    sessions = sorted({r["session_id"] for r in src if r.get("session_id")})
    m = {
        "manifest_version": 1, "path": out_rel, "tier": tier, "format": fmt,
        "symbol": meta.key.symbol, "type": meta.key.type, "source": meta.key.source,
        "asset_class": meta.key.asset_class, "period": meta.key.period or None, "part": meta.part,
        "codec": codec, "compression_level": level,
        "sha256": res.sha256, "size_bytes": res.size_bytes, "event_count": res.rows,
        "first_ts": res.first_ts if fmt == "parquet" else min((r["first_ts"] for r in src if r.get("first_ts") is not None), default=None),
        "last_ts": res.last_ts if fmt == "parquet" else max((r["last_ts"] for r in src if r.get("last_ts") is not None), default=None),
        "first_seq": res.first_seq if fmt == "parquet" else (min(r["first_seq"] for r in first) if first else None),
        "last_seq": res.last_seq if fmt == "parquet" else (max(r["last_seq"] for r in first) if first else None),
        "gap_count": src[0].get("gap_count") if len(src) == 1 else None,
        "gaps": None, "duplicates_dropped": sum(r.get("duplicates_dropped") or 0 for r in src),
        "ts_clock": src[0].get("ts_clock"), "schema_version": 1,
        "session_id": sessions[0] if len(sessions) == 1 else None,
        "created_at": min((str(r["created_at"]) for r in src if r.get("created_at")), default=None),
        "sealed_at": utc_now_iso(),
    }
    if m["created_at"] and " " in m["created_at"]:
        m["created_at"] = m["created_at"].replace(" ", "T") + "Z"
    if fmt == "parquet":
        m.update(fingerprint=res.fingerprint, fingerprint_algo=res.fingerprint_algo, row_groups=res.row_groups, column_types=res.column_types,
                 partition=meta.key.period and _granularity(out_rel, archive))
    else:
        m.update(raw_sha256=res.raw_sha256, raw_bytes=res.raw_bytes, partition=archive.layout.partition)
    return m


def _granularity(out_rel: str, archive) -> str:
    from mdcsql.lifecycle.tiers import ARCHIVE_DIR, granularity_of
    if out_rel.startswith(ARCHIVE_DIR + "/"):
        return granularity_of(parse_any(out_rel, archive.layout).key.period)
    return archive.layout.partition


def target_spec(settings, type_: str, tier: str):
    """The tier's spec with the codec of ``Storage.Policies.<type>.Compression.<tier>`` when set
    (the design's "Compression Policy Matrix" per event type)."""
    from dataclasses import replace
    from mdcsql.lifecycle.codecs import parse_codec
    from mdcsql.lifecycle.policy import effective_policies
    spec = tier_specs(settings)[tier]
    wanted = effective_policies(settings, [type_])[type_].compression.get(tier)
    if not wanted:
        return spec
    c = parse_codec(wanted, tier=tier, for_format="parquet" if spec.is_parquet else "jsonl")
    return replace(spec, codec=c.codec, level=c.level,
                   format=spec.format if spec.is_parquet else {"none": "jsonl", "gzip": "jsonl.gz",
                                                               "zstd": "jsonl.zst"}[c.codec])


def run_step(archive, step: Step, *, as_of) -> Transition:
    """Write, verify and commit one step (see :class:`Transition`)."""
    from mdcsql.ingest.integrity import verify_on_read
    spec = target_spec(archive.settings, step.type, step.target_tier)
    root = archive.root
    for r in step.inputs:         # the design's VerifyOnRead: never convert bytes that rotted
        verify_on_read(root, r["path"], settings=archive.settings, etype=r["type"])
    t = Transition(root, step.operation, inputs=[{k: r.get(k) for k in ("path", "sha256", "event_count")}
                                                 for r in step.inputs],
                   parameters={"target_tier": step.target_tier, "format": spec.format, "codec": spec.codec,
                               "level": spec.level, "as_of": as_of.isoformat(), "reason": step.reason})
    try:
        srcs = [root / r["path"] for r in step.inputs]
        written = 0
        for out_rel, rng in step.outputs:
            tmp = t.tmp_path(out_rel)
            if spec.is_parquet:
                res = parquet.convert(srcs, tmp, step.type, compression=spec.codec, level=spec.level,
                                      ts_range=rng)
                fmt = "parquet"
            else:
                res = codecs.recompress_jsonl(srcs[0], tmp, spec.codec, spec.level,
                                              expect_raw_sha256=step.inputs[0].get("raw_sha256"))
                fmt = "jsonl"
            written += res.rows
            t.add_output(out_rel, _manifest(out_rel, step, res, tier=step.target_tier, fmt=fmt,
                                            codec=spec.codec, level=spec.level, archive=archive))
        expected = sum(r.get("event_count") or 0 for r in step.inputs)
        if written != expected:
            raise codecs.VerificationError(
                f"{step.operation}: outputs hold {written} events, inputs {expected} "
                f"({', '.join(r['path'] for r in step.inputs)})")
        t.commit()
    except BaseException:
        t.abort()
        raise
    if step.target_tier == "archive":
        from mdcsql.lifecycle import archive_catalog
        for r in step.inputs:
            if r["tier"] == "archive" and r["path"] not in {o for o, _ in step.outputs}:
                archive_catalog.remove_entry(root, r["path"], settings=archive.settings)
        for out_rel, _ in step.outputs:
            archive_catalog.add_entry(root, out_rel, settings=archive.settings)
    return t


def migrate(archive, *, as_of: datetime, parallel: int = 1, dry_run: bool = False,
            on_progress=None) -> tuple[Plan, MigrationResult]:
    """Plan and (unless ``dry_run``) run every step, ``parallel`` at a time. Holds the lifecycle
    lock, finishes interrupted transitions first, syncs the catalog for what changed."""
    if parallel < 1:
        raise MdcsqlError(f"--parallel must be >= 1, got {parallel}")
    started = time.perf_counter()
    result = MigrationResult()
    with lifecycle_lock(archive.root, what="tier migrate"):
        result.recovered = recover_transitions(archive.root)
        p = plan(archive, as_of=as_of)
        if dry_run:
            result.seconds = time.perf_counter() - started
            return p, result
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = {pool.submit(run_step, archive, s, as_of=as_of): s for s in p.steps}
            for fut in as_completed(futures):
                step = futures[fut]
                try:
                    t = fut.result()
                except MdcsqlError as exc:
                    result.steps_failed += 1
                    result.errors.append(f"{', '.join(r['path'] for r in step.inputs)}: {exc}")
                else:
                    result.steps_done += 1
                    result.files_in += len(step.inputs)
                    result.files_out += len(t.outputs)
                    result.events += sum(r.get("event_count") or 0 for r in step.inputs)
                    result.bytes_before += sum(r.get("size_bytes") or 0 for r in step.inputs)
                    result.bytes_after += sum(o.manifest.get("size_bytes") or 0 for o in t.outputs)
                    result.touched += [r["path"] for r in step.inputs] + [o.path for o in t.outputs]
                if on_progress:
                    on_progress(step)
        if result.touched:
            with archive.catalog(timeout=60) as cat:
                cat.sync(archive.layout)
    result.seconds = time.perf_counter() - started
    return p, result
