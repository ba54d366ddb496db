"""The policy engine: for every file, what should happen to it at an instant, and why.

Policies come from ``Storage.Policies.<EventType>`` over defaults (the design's "Tiered Retention
Policies": Trade Critical 7/90/365 days and perpetual, Heartbeat Transient 1 day, every other type
Standard with the tiers' ``MaxAgeDays`` — 7/90/365 unless ``Storage.Tiering.Tiers`` says otherwise). Day counts are the *ages* at which data leaves a tier, as in the design's tier table
(hot 0–7 d, warm 7–90 d, cold 90–365 d, archive after): with ``HotTierDays: 7, WarmTierDays: 90,
ColdTierDays: 365`` a file moves hot → warm at 7 days, → cold at 90, → archive at 365. A tier
with 0 days (or left out of ``Storage.Tiering.Tiers``) is skipped. A file's age is counted from the
end of its data (``last_ts``, else the end of its period) to ``as_of``.

End of life: ``RetentionDays`` (per type, else ``Storage.RetentionDays``) deletes a file older
than that; without it, a type with no archive tier is deleted once it outlives its last tier.
Critical data is never deleted: such decisions become "keep" with the reason.

Decisions are pure (nothing changes): ``explain`` is the dry run of every job (invariant 9).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone

from mdcsql.layout import DAY_NS
from mdcsql.lifecycle.tiers import TIER_ORDER, GRANULARITIES, label_of, label_range, tier_specs

__all__ = ["EffectivePolicy", "Decision", "effective_policies", "decide", "explain_rows",
           "ACTIONS", "archive_target"]

ACTIONS = ("keep", "migrate", "delete", "consolidate", "protected")

#: defaults of the design's example (Trade Critical and perpetual, Heartbeat Transient)
_DEFAULTS = {
    "Trade": dict(classification="Critical", hot=7, warm=90, cold=365, archive=True),
    "Heartbeat": dict(classification="Transient", hot=1, warm=0, cold=0, archive=False),
}
_GENERIC = dict(classification="Standard", hot=7, warm=90, cold=365, archive=False)
_DEFAULT_REASON = {"Critical": "Regulatory"}


@dataclass(frozen=True)
class EffectivePolicy:
    type: str
    classification: str
    hot_days: int
    warm_days: int
    cold_days: int
    archive: bool
    archive_reason: str
    retention_days: int | None
    compression: dict          # tier -> codec spec text (None = the tier's own)
    source: str                # "configured" | "default"

    def leave_age(self, tier: str) -> int | None:
        """Age in days at which data leaves ``tier`` (None: never, 0: tier skipped)."""
        return {"hot": self.hot_days, "warm": self.warm_days, "cold": self.cold_days}.get(tier)


def effective_policies(settings, types) -> dict[str, EffectivePolicy]:
    st = settings.storage
    configured = st.policies or {}
    archive_cfg = st.archive
    out = {}
    specs = tier_specs(settings)
    generic = dict(_GENERIC, **{t: specs[t].max_age_days for t in ("hot", "warm", "cold")
                                if specs[t].max_age_days is not None})
    for type_ in types:
        base = dict(_DEFAULTS.get(type_, generic))
        p = configured.get(type_)
        comp = {}
        if p is not None:
            base.update({k: v for k, v in (("classification", p.classification), ("hot", p.hot_tier_days),
                                           ("warm", p.warm_tier_days), ("cold", p.cold_tier_days))
                         if v is not None})
            if "archive_tier" in p.model_fields_set:
                base["archive"] = p.archive_tier == "perpetual"
            if p.compression is not None:
                comp = {t: getattr(p.compression, t) for t in ("hot", "warm", "cold", "archive")}
        reason = (p.archive_reason if p is not None and p.archive_reason else None) \
            or (archive_cfg.reason if archive_cfg is not None and archive_cfg.reason else None) \
            or _DEFAULT_REASON.get(base["classification"], "Historical")
        retention = p.retention_days if p is not None and p.retention_days is not None else st.retention_days
        out[type_] = EffectivePolicy(type_, base["classification"], base["hot"], base["warm"], base["cold"],
                                     base["archive"], reason, retention, comp,
                                     "configured" if p is not None else "default")
    return out


@dataclass
class Decision:
    """What should happen to one file, and why."""

    path: str
    type: str
    tier: str
    classification: str
    age_days: float | None
    action: str                 # one of ACTIONS
    target_tier: str | None
    reason: str
    protected_by: list[str] = field(default_factory=list)
    target_path: str | None = None
    granularity: str | None = None   # archive consolidation target

    def to_dict(self) -> dict:
        return asdict(self)


def _data_end_ns(row: dict) -> int | None:
    last = row.get("last_ts")
    if isinstance(last, int):
        return last + 1
    if isinstance(last, datetime):
        return int(last.replace(tzinfo=timezone.utc).timestamp()) * 1_000_000_000 + last.microsecond * 1000 + 1
    start = row.get("period_start")
    if isinstance(start, datetime):
        start_ns = int(start.replace(tzinfo=timezone.utc).timestamp()) * 1_000_000_000
        partition = row.get("partition")
        span = {"Hourly": DAY_NS // 24, "Daily": DAY_NS, "Monthly": 31 * DAY_NS}.get(partition)
        if partition in ("Weekly", "Yearly", "Monthly") and row.get("period"):
            rng = label_range(row["period"])
            if rng:
                return (rng[1] - date(1970, 1, 1)).days * DAY_NS
        return start_ns + (span or DAY_NS)
    return None


def _next_tier(tier: str, pol: EffectivePolicy, enabled: set[str]) -> str | None:
    """The tier data goes to after ``tier``: the next enabled tier with a non-zero stay."""
    order = list(TIER_ORDER)
    for nxt in order[order.index(tier) + 1:]:
        if nxt not in enabled:
            continue
        if nxt == "archive":
            return "archive" if pol.archive else None
        if (pol.leave_age(nxt) or 0) > 0:
            return nxt
    return None


def archive_target(row: dict, as_of_ns: int) -> str | None:
    """The coarsest archive granularity whose period(s) holding this file's data are complete
    at ``as_of`` (None: not even its day is over)."""
    first, end = row.get("first_ts_ns"), row.get("end_ns")
    if first is None or end is None:
        return None
    d1 = date(1970, 1, 1) + timedelta(days=(end - 1) // DAY_NS)
    for g in reversed(GRANULARITIES):
        last_period_end = label_range(label_of(d1, g))[1]
        if (last_period_end - date(1970, 1, 1)).days * DAY_NS <= as_of_ns:
            return g
    return None


def decide(rows: list[dict], settings, as_of: datetime, *, protections=None) -> list[Decision]:
    """One decision per file row of the catalog's ``files`` table.

    :param protections: path -> list of reasons the file may not be moved or deleted (legal holds,
        WORM), from :func:`mdcsql.lifecycle.planning.protections`.
    """
    as_of_ns = int(as_of.timestamp() * 1_000_000) * 1000
    specs = tier_specs(settings)
    tiering = settings.storage.tiering
    tiering_on = bool(tiering is not None and tiering.enabled)
    listed = [t if isinstance(t, str) else t.name for t in (tiering.tiers or [])] if tiering else []
    enabled = {("archive" if t == "glacier" else t) for t in listed} or set(TIER_ORDER)
    enabled.add("hot")
    policies = effective_policies(settings, sorted({r["type"] for r in rows}))
    protections = protections or {}
    out = []
    for row in rows:
        pol = policies[row["type"]]
        tier = row["tier"]
        end = _data_end_ns(row)
        age = None if end is None else max(0.0, (as_of_ns - end) / DAY_NS)
        d = Decision(row["path"], row["type"], tier, pol.classification,
                     None if age is None else round(age, 3), "keep", None, "")
        prot = protections.get(row["path"], [])
        out.append(d)
        if row.get("state") != "sealed":
            d.reason = (f"{row.get('state')} file: only sealed files move ("
                        + ("still being written" if row.get("state") == "open" else "no valid manifest") + ")")
            continue
        if age is None:
            d.reason = "no time range known (no last_ts, no period): cannot age it"
            continue
        # 1. retention / end of life
        end_of_life = None
        if pol.retention_days is not None and age >= pol.retention_days:
            end_of_life = f"older than RetentionDays {pol.retention_days} ({age:.1f} days)"
        elif pol.retention_days is None and tiering_on and tier != "archive" and not pol.archive:
            last = max((t for t in ("hot", "warm", "cold") if t in enabled and (pol.leave_age(t) or 0) > 0),
                       key=lambda t: pol.leave_age(t), default=None)
            if last is not None and age >= pol.leave_age(last):
                end_of_life = (f"outlived its last tier ({last} until {pol.leave_age(last)} days; "
                               f"{age:.1f} days) and its type has no archive tier")
        if end_of_life:
            if pol.classification == "Critical":
                d.reason = f"{end_of_life}, but {row['type']} is Critical: never deleted"
                continue
            d.action, d.reason = "delete", f"{end_of_life}; classification {pol.classification}"
            if prot:
                d.action, d.protected_by = "protected", prot
                d.reason += " — but protected: " + "; ".join(prot)
            continue
        if not tiering_on:
            d.reason = (f"tiering disabled (Storage.Tiering.Enabled is not true): stays {tier}; "
                        f"age {age:.1f} days")
            continue
        # 2. archive consolidation (daily -> weekly -> monthly -> yearly)
        if tier == "archive":
            g = archive_target({"first_ts_ns": _ns(row.get("first_ts")), "end_ns": end}, as_of_ns)
            have = row.get("partition")
            if g and have in GRANULARITIES and GRANULARITIES.index(g) > GRANULARITIES.index(have):
                d.action, d.granularity, d.target_tier = "consolidate", g, "archive"
                d.reason = f"archive {have} file whose {g.lower()} period is complete: consolidate into {g}"
                if prot:
                    d.action, d.protected_by = "protected", prot
                    d.reason += " — but protected: " + "; ".join(prot)
            else:
                d.reason = f"archived ({have}); perpetual" + ("" if pol.classification != "Critical" else ", Critical")
            continue
        # 3. age-based migration
        leave = pol.leave_age(tier)
        if tier != "hot" and (leave == 0 or tier not in enabled):
            leave = 0     # data sits in a tier the policy skips (e.g. config changed): move on
        if leave is None or age < leave:
            d.reason = f"{tier} until {leave} days ({pol.source} policy of {row['type']}); age {age:.1f} days"
            continue
        nxt = _next_tier(tier, pol, enabled)
        if nxt is None:
            d.reason = f"past {tier}'s {leave} days but no later tier is enabled for {row['type']}; stays"
            continue
        passed = [f"{tier} limit {leave} days"]
        while nxt != "archive" and (pol.leave_age(nxt) or 0) <= age:   # skip tiers it has outlived
            after = _next_tier(nxt, pol, enabled)
            if after is None:
                break
            passed.append(f"{nxt} limit {pol.leave_age(nxt)} days")
            nxt = after
        d.action, d.target_tier = "migrate", nxt
        d.reason = (f"age {age:.1f} days >= {', '.join(passed)} ({pol.source} policy of "
                    f"{row['type']}): {tier} -> {nxt} ({_format_of(specs[nxt])})")
        if nxt == "archive":
            d.granularity = archive_target({"first_ts_ns": _ns(row.get("first_ts")), "end_ns": end},
                                           as_of_ns) or "Daily"
            d.reason += f", {d.granularity.lower()} file, reason {pol.archive_reason}"
        if prot:
            d.action, d.protected_by = "protected", prot
            d.reason += " — but protected: " + "; ".join(prot)
    _apply_tier_size_limits(out, rows, specs, enabled)
    return out


def _format_of(spec) -> str:
    return f"{spec.format}, {spec.codec}" + (f"-{spec.level}" if spec.level is not None else "")


def _ns(value) -> int | None:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return int(value.replace(tzinfo=timezone.utc).timestamp()) * 1_000_000_000 + value.microsecond * 1000
    return None


def _apply_tier_size_limits(decisions: list[Decision], rows: list[dict], specs, enabled) -> None:
    """A tier over its ``MaxSizeGb`` moves its oldest sealed files on early, until it fits."""
    size_of = {r["path"]: r.get("size_bytes") or 0 for r in rows}
    end_of = {r["path"]: _data_end_ns(r) or 0 for r in rows}
    for tier in ("hot", "warm", "cold"):
        limit = specs[tier].max_size_gb
        if not limit:
            continue
        staying = [d for d in decisions if d.tier == tier and d.action == "keep"]
        total = sum(size_of[d.path] for d in decisions if d.tier == tier and d.action in ("keep", "protected"))
        cap = int(limit * 1024 ** 3)
        order = list(TIER_ORDER)
        nxt = next((t for t in order[order.index(tier) + 1:] if t in enabled and t != "archive"), None)
        if nxt is None:
            continue
        for d in sorted(staying, key=lambda d: end_of[d.path]):
            if total <= cap:
                break
            if d.reason.startswith(("open file", "orphan file", "no time range")):
                continue
            d.action, d.target_tier = "migrate", nxt
            d.reason = (f"tier {tier} holds {total / 1024 ** 3:.3f} GB > MaxSizeGb {limit:g}: oldest "
                        f"files move on early ({tier} -> {nxt})")
            total -= size_of[d.path]


def explain_rows(decisions: list[Decision]) -> list[dict]:
    return [d.to_dict() for d in decisions]
