"""The Arrow batch path: `normalize_table`, `encode_table` and `arrow_schema`.

The vectorised twin of the per-event path in events.py: a `pyarrow.Table` of one event type is
validated column-wise (pyarrow.compute) into the same canonical record that `normalize` builds,
with the same rules and the same first error, and `encode_table` writes the same bytes as `encode`
per row. It is a separate module only to keep events.py to one concept; import the public names
from `mdcsql.events`, which re-exports them. The rules are documented in docs/events.md.
"""

from __future__ import annotations

import builtins
import io

import pyarrow as pa
import pyarrow.compute as pc

from mdcsql.errors import InputError

# ---- schemas ------------------------------------------------------------------------------------
_REQUIRED = {  # fields that are never null
    "Trade": ("price", "size", "side"), "BboQuote": (), "L2Snapshot": ("bids", "asks"),
    "OrderFlow": ("order_id", "action", "side", "size"), "HistoricalBar": ("open", "high", "low", "close", "interval"),
    "Heartbeat": (),
}


def arrow_schema(type: str) -> pa.Schema:
    """The canonical Arrow columns of one event type, in canonical order."""
    if type not in FIELDS:
        raise InputError(f"unknown event type {_short(type)} (expected one of: {', '.join(EVENT_TYPES)})",
                         field="type")
    cols = [pa.field("type", pa.string(), False), pa.field("symbol", pa.string(), False),
            pa.field("source", pa.string(), False), pa.field("ts", pa.int64(), False),
            pa.field("recv_ts", pa.int64()), pa.field("seq", pa.int64())]
    for f in FIELDS[type]:
        if f in ("bids", "asks"):
            t = pa.list_(pa.list_(pa.string()))
        elif f == "conditions":
            t = pa.list_(pa.string())
        else:
            t = pa.string()
        cols.append(pa.field(f, t, f not in _REQUIRED[type]))
    return pa.schema(cols, metadata={"mdcsql.event_type": type, "mdcsql.schema_version": "1"})


# ---- Arrow batches ------------------------------------------------------------------------------
# Vectorised twins of the per-event rules in events.py. An error names the row and field the
# per-event path would report first: the earliest row, and within it the earliest check in
# canonical order.
ISO_TS_NAMED_RE = (r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):"
                   r"(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?(?:(?P<z>[Zz])|(?P<sg>[+-])(?P<oh>[0-9]{2}):?"
                   r"(?P<om>[0-9]{2}))?")
_KINDS = {"price": "price", "size": "size", "side": "side", "trade_id": "opt_id", "venue": "opt_text",
          "conditions": "conditions", "bid_price": "opt_price", "ask_price": "opt_price", "bid_size": "opt_size",
          "ask_size": "opt_size", "bids": "levels", "asks": "levels", "order_id": "id", "action": "action",
          "open": "price", "high": "price", "low": "price", "close": "price", "volume": "opt_size",
          "interval": "interval", "status": "opt_text"}


class _FirstError:
    def __init__(self) -> None:
        self.key: tuple | None = None
        self.field: str | None = None
        self.message = ""

    def check(self, bad, order: float, field: str, message, rows=None) -> None:
        """`bad` flags rows (null = fine), or elements whose row numbers are `rows`."""
        if bad is None or len(bad) == 0:
            return
        bad = pc.fill_null(bad, False)
        if not pc.any(bad).as_py():
            return
        if rows is None:
            i = row = pc.index(bad, True).as_py()
        else:
            idx = pc.indices_nonzero(bad)
            at = pc.take(rows, idx)
            row = pc.min(at).as_py()
            i = idx[pc.index(at, row).as_py()].as_py()
        if self.key is None or (row, order) < self.key:
            self.key, self.field = (row, order), field
            self.message = message(i) if callable(message) else message

    def raise_first(self) -> None:
        if self.key is not None:
            raise InputError(self.message, line=self.key[0] + 1, field=self.field)


def _why(validate, arr: pa.Array, i: int, default: str) -> str:
    try:
        validate(arr[i].as_py())
    except InputError as e:
        return e.reason
    except Exception:     # a value Python cannot represent (e.g. an out-of-range timestamp)
        pass
    return default


def _plain_array(col) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        if pa.types.is_dictionary(col.type):
            col = pa.chunked_array([c.dictionary_decode() for c in col.chunks], col.type.value_type)
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    t = col.type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return col.cast(pa.string())
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return col.cast(pa.list_(t.value_type))
    if pa.types.is_fixed_size_list(t):
        return col.cast(pa.list_(t.value_type))
    return col


def _dec_array(arr: pa.Array, field: str) -> tuple[pa.Array, pa.Array | None]:
    """Decimal text of every element (null stays null) and a mask of the elements that are not numbers."""
    import polars as pl
    t, n = arr.type, len(arr)
    if pa.types.is_null(t):
        return pa.nulls(n, pa.string()), None
    if pa.types.is_string(t):
        out = arr
    elif pa.types.is_integer(t) or pa.types.is_decimal(t):
        out = arr.cast(pa.string())      # decimals keep their scale: 187.10 stays "187.10"
    elif pa.types.is_floating(t):
        arr = arr.cast(pa.float64())     # shortest repr, as Python's repr(float) gives
        out = pl.from_arrow(arr).cast(pl.String).to_arrow().cast(pa.string())
    else:
        return pa.nulls(n, pa.string()), arr.is_valid()
    # Canonical text passes as is; everything else (exponents, "+1", NaN, junk) takes the per-event path.
    fast = pc.and_kleene(pc.match_substring_regex(out, f"^(?:{PLAIN_DECIMAL_RE})$"),
                         pc.less_equal(pc.binary_length(out), MAX_DECIMAL_CHARS))
    slow = pc.and_kleene(arr.is_valid(), pc.invert(pc.fill_null(fast, False)))
    if not pc.any(slow).as_py():
        return out, None
    results, failed = [], []     # a Python loop over the non-canonical values only
    for v in pc.filter(arr, slow).to_pylist():
        try:
            results.append(decimal_text(v, field))
            failed.append(False)
        except InputError:
            results.append(None)
            failed.append(True)
    out = pc.replace_with_mask(out, slow, pa.array(results, pa.string()))
    if not any(failed):
        return out, None
    return out, pc.replace_with_mask(pa.repeat(False, n), slow, pa.array(failed, pa.bool_()))


def _strings(arr, n: int, field: str, order: float, errs: _FirstError, validate, ints: bool = False) -> pa.Array:
    """A string column (ints converted when `ints`); other types are an error on every non-null row."""
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, pa.string())
    if pa.types.is_string(arr.type):
        return arr
    if ints and pa.types.is_integer(arr.type):
        return arr.cast(pa.string())
    errs.check(arr.is_valid(), order, field, lambda i: _why(validate, arr, i, f"{field} has the wrong type"))
    return pa.nulls(n, pa.string())


def _ts_col(arr, n: int, field: str, order: float, errs: _FirstError, required: bool) -> pa.Array:
    if arr is None or pa.types.is_null(arr.type):
        if required:
            errs.check(pa.repeat(True, n), order, field, f"missing {field}")
        return pa.nulls(n, pa.int64())
    t = arr.type
    check = (lambda v: parse_ts(v, field))
    if required:
        errs.check(arr.is_null(), order, field, f"missing {field}")
    if pa.types.is_integer(t):
        if t == pa.uint64():
            big = pc.greater(arr, I64_MAX)
            errs.check(big, order, field, lambda i: _why(check, arr, i, "out of range"))
            arr = pc.if_else(big, 0, arr)
        out = arr.cast(pa.int64())
        unit = pc.and_kleene(pc.greater(out, -MIN_INT_TS), pc.less(out, MIN_INT_TS))
        errs.check(unit, order, field, lambda i: _why(check, out, i, "not nanoseconds"))
        return out
    if pa.types.is_timestamp(t):
        mult = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[t.unit]
        raw = arr.cast(pa.int64())
        bad = pc.or_kleene(pc.less(raw, -(-I64_MIN // mult)), pc.greater(raw, I64_MAX // mult))
        errs.check(bad, order, field, f"{field} is outside the int64 nanosecond range (1677..2262)")
        return pc.multiply(pc.if_else(bad, 0, raw), mult)
    if pa.types.is_string(t):
        return _iso_col(arr, field, order, errs)
    errs.check(arr.is_valid(), order, field, lambda i: _why(check, arr, i, f"{field} has the wrong type"))
    return pa.nulls(n, pa.int64())


def _iso_col(arr: pa.Array, field: str, order: float, errs: _FirstError) -> pa.Array:
    ok = pc.fill_null(pc.match_substring_regex(arr, f"^(?:{ISO_TS_RE})$"), False)
    p = pc.extract_regex(pc.if_else(ok, arr, "1970-01-01T00:00:00Z"), ISO_TS_NAMED_RE)

    def num(name: str, width: int = 2, right: bool = False) -> pa.Array:
        pad = pc.utf8_rpad if right else pc.utf8_lpad
        return pc.cast(pad(p.field(name), width=width, padding="0"), pa.int64())

    y, mo, d, h, mi, s = num("y", 4), num("mo"), num("d"), num("h"), num("mi"), num("s")
    frac, oh, om = num("f", 9, right=True), num("oh"), num("om")
    leap = pc.or_kleene(pc.and_kleene(pc.equal(pc.subtract(y, pc.multiply(pc.divide(y, 4), 4)), 0),
                          pc.not_equal(pc.subtract(y, pc.multiply(pc.divide(y, 100), 100)), 0)),
                  pc.equal(pc.subtract(y, pc.multiply(pc.divide(y, 400), 400)), 0))
    month_ok = pc.and_kleene(pc.greater_equal(mo, 1), pc.less_equal(mo, 12))
    dim = pc.add(pc.take(pa.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]), pc.if_else(month_ok, mo, 0)),
                 pc.cast(pc.and_kleene(leap, pc.equal(mo, 2)), pa.int64()))
    # days since the epoch (H. Hinnant's days_from_civil; years are limited to 1677..2262 below)
    y2 = pc.subtract(y, pc.cast(pc.less_equal(mo, 2), pa.int64()))
    era = pc.divide(y2, 400)
    yoe = pc.subtract(y2, pc.multiply(era, 400))
    mp = pc.if_else(pc.greater(mo, 2), pc.subtract(mo, 3), pc.add(mo, 9))
    doy = pc.add(pc.divide(pc.add(pc.multiply(mp, 153), 2), 5), pc.subtract(d, 1))
    doe = pc.add(pc.subtract(pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)), pc.divide(yoe, 100)), doy)
    days = pc.subtract(pc.add(pc.multiply(era, 146097), doe), 719468)
    offset = pc.multiply(pc.add(pc.multiply(oh, 3600), pc.multiply(om, 60)),
                         pc.if_else(pc.equal(p.field("sg"), "+"), -1, 1))
    secs = pc.add(pc.add(pc.add(pc.multiply(days, 86400), pc.multiply(h, 3600)),
                         pc.add(pc.multiply(mi, 60), s)), offset)
    bad = pc.invert(ok)
    for cond in (pc.less(y, 1677), pc.greater(y, 2262), pc.invert(month_ok), pc.less(d, 1), pc.greater(d, dim),
                 pc.greater(h, 23), pc.greater(mi, 59), pc.greater(s, 59), pc.greater(oh, 23), pc.greater(om, 59),
                 pc.greater(secs, 9223372036), pc.less(secs, -9223372037),
                 pc.and_kleene(pc.equal(secs, 9223372036), pc.greater(frac, 854775807)),
                 pc.and_kleene(pc.equal(secs, -9223372037), pc.less(frac, 145224192))):
        bad = pc.or_kleene(bad, cond)
    bad = pc.and_kleene(bad, arr.is_valid())
    errs.check(bad, order, field, lambda i: _why(lambda v: parse_ts(v, field), arr, i, f"invalid {field}"))
    secs = pc.if_else(bad, 0, secs)
    ns = pc.if_else(pc.less(secs, 0),   # keep the intermediate product inside int64 near the lower bound
                    pc.add(pc.multiply(pc.add(secs, 1), 10**9), pc.subtract(frac, 10**9)),
                    pc.add(pc.multiply(secs, 10**9), frac))
    return pc.if_else(arr.is_valid(), ns, pa.scalar(None, pa.int64()))


def _decimal_col(arr, n: int, field: str, order: float, errs: _FirstError, *, required: bool,
                 nonneg: bool) -> pa.Array:
    if arr is None:
        arr = pa.nulls(n)
    validate = (lambda v: _size(v, field)) if nonneg else (lambda v: _price(v, field))
    if required:
        errs.check(arr.is_null(), order, field, f"missing {field}")
    out, bad = _dec_array(arr, field)
    if nonneg:
        neg = pc.starts_with(out, "-")
        bad = neg if bad is None else pc.or_kleene(bad, neg)
    errs.check(bad, order, field, lambda i: _why(validate, arr, i, f"{field} is not a decimal number"))
    return out


def _choice_col(arr, n: int, field: str, order: float, errs: _FirstError, mapping: dict,
                default: str | None) -> pa.Array:
    validate = (lambda v: _side(v, field)) if default else (lambda v: _flow_action(v))
    arr = _strings(arr, n, field, order, errs, validate)
    idx = pc.index_in(arr, value_set=pa.array(list(mapping), pa.string()))
    out = pc.take(pa.array(list(mapping.values()), pa.string()), idx)
    errs.check(pc.and_kleene(arr.is_valid(), idx.is_null()), order, field, lambda i: _why(validate, arr, i, "invalid"))
    if default is not None:
        return pc.fill_null(out, default)
    errs.check(arr.is_null(), order, field, f"missing {field}")
    return out


def _rebuild_list(outer: pa.Array, values: pa.Array) -> pa.Array:
    lengths = pc.fill_null(pc.list_value_length(outer), 0)
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(lengths.cast(pa.int64()))])
    return pa.ListArray.from_arrays(offsets.cast(pa.int32()), values, mask=outer.is_null())


def _conditions_col(arr, n: int, field: str, order: float, errs: _FirstError) -> pa.Array:
    target = pa.list_(pa.string())
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, target)
    if not pa.types.is_list(arr.type):
        errs.check(arr.is_valid(), order, field, lambda i: _why(_conditions, arr, i, f"{field} has the wrong type"))
        return pa.nulls(n, target)
    flat, rows = arr.flatten(), pc.list_parent_indices(arr)
    vt = flat.type
    if pa.types.is_string(vt) or pa.types.is_integer(vt) or pa.types.is_null(vt):
        errs.check(flat.is_null(), order, field, lambda i: f"{field} must hold strings, got None", rows=rows)
        values = flat.cast(pa.string())
    else:
        errs.check(flat.is_valid(), order, field, lambda i: _why(_conditions, pa.array([flat[i].as_py()]), 0,
                                                                 f"{field} must hold strings"), rows=rows)
        values = pa.nulls(len(flat), pa.string())
    return _rebuild_list(arr, values)


def _levels_col(arr, n: int, field: str, order: float, errs: _FirstError) -> pa.Array:
    target = pa.list_(pa.list_(pa.string()))
    if arr is None or pa.types.is_null(arr.type):
        errs.check(pa.repeat(True, n), order, field, f"missing {field}")
        return pa.nulls(n, target)
    errs.check(arr.is_null(), order, field, f"missing {field}")
    if not pa.types.is_list(arr.type):
        errs.check(arr.is_valid(), order, field, f"{field} must be a list of [price, size] pairs")
        return pa.nulls(n, target)
    inner, inner_rows = arr.flatten(), pc.list_parent_indices(arr)
    if pa.types.is_null(inner.type):
        errs.check(pa.repeat(True, len(inner)), order, field, f"{field} levels must be [price, size] pairs",
                   rows=inner_rows)
        return _rebuild_list(arr, pa.nulls(len(inner), pa.list_(pa.string())))
    inner = _plain_array(inner)
    if not pa.types.is_list(inner.type):
        errs.check(inner.is_valid(), order, field, f"{field} levels must be [price, size] pairs", rows=inner_rows)
        return pa.nulls(n, target)
    lengths = pc.list_value_length(inner)
    errs.check(pc.or_kleene(inner.is_null(), pc.not_equal(lengths, 2)), order, field,
               lambda i: f"{field} level must be a [price, size] pair, got {_short(inner[i].as_py())}", rows=inner_rows)
    values, value_inner = inner.flatten(), pc.list_parent_indices(inner)
    value_rows = pc.take(inner_rows, value_inner)
    starts = pc.subtract(pc.cumulative_sum(pc.fill_null(lengths, 0).cast(pa.int64())),
                         pc.fill_null(lengths, 0).cast(pa.int64()))
    position = pc.subtract(pa.array(range(len(values)), pa.int64()), pc.take(starts, value_inner))
    out, bad = _dec_array(values, field)
    bad = pc.or_kleene(values.is_null(), pc.and_kleene(pc.equal(position, 1), pc.starts_with(out, "-"))) if bad is None else \
        pc.or_kleene(pc.or_kleene(bad, values.is_null()), pc.and_kleene(pc.equal(position, 1), pc.starts_with(out, "-")))
    errs.check(bad, order, field, lambda i: _why(lambda v: _size(v, field) if position[i].as_py() == 1 else
                                                 _price(v, field), values, i, f"{field} has a bad level"),
               rows=value_rows)
    return _rebuild_list(arr, _rebuild_list(inner, out))


def _table_type(col, type: str | None, n: int) -> tuple[str, pa.Array | None]:
    if type is not None and type not in FIELDS:
        raise InputError(f"unknown event type {_short(type)} (expected one of: {', '.join(EVENT_TYPES)})",
                         field="type")
    if col is None or pa.types.is_null(col.type):
        if type is None:
            raise InputError("a table needs a type column or the type argument", line=1 if n else None, field="type")
        return type, None
    if not pa.types.is_string(col.type):
        raise InputError("the type column must hold strings", line=1 if n else None, field="type")
    if type is None:
        if n == 0:
            raise InputError("cannot tell the event type of an empty table: pass type=", field="type")
        type = col[0].as_py()
        if type is None:
            raise InputError("missing type", line=1, field="type")
        if type not in FIELDS:
            raise InputError(f"unknown event type {_short(type)} (expected one of: {', '.join(EVENT_TYPES)})",
                             line=1, field="type")
    return type, col


def normalize_table(table: pa.Table, *, type: str | None = None, source: str | None = None) -> pa.Table:
    """Validate and convert an Arrow batch of ONE event type to its canonical columns (vectorised).

    :param type: the event type when the table has no `type` column (nulls in it take this value).
    :param source: fills a missing `source` column and its nulls.
    :raises InputError: naming the first bad row (line = row + 1) and its field.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise InputError(f"normalize_table takes a pyarrow.Table, not {builtins.type(table).__name__}")
    n = table.num_rows
    names = table.column_names
    if len(set(names)) != len(names):
        dup = next(c for c in names if names.count(c) > 1)
        raise InputError(f"duplicate column {dup!r}", field=dup)
    cols = {c: _plain_array(table.column(c)) for c in names}
    etype, tcol = _table_type(cols.get("type"), type, n)
    fields = COMMON_FIELDS + FIELDS[etype]
    pos = {f: i for i, f in enumerate(fields)}
    errs = _FirstError()
    if tcol is not None:
        fixed = pc.fill_null(tcol, etype) if type is not None else tcol
        errs.check(fixed.is_null(), 0, "type", "missing type")
        errs.check(pc.not_equal(fixed, etype), 0, "type",
                   lambda i: f"a table holds one event type: row has {_short(fixed[i].as_py())}, expected {etype}")
    for c in names:
        if c not in pos:
            errs.check(pa.repeat(True, n), 0.5, c, f"unknown key {c!r} for {etype} (expected: {', '.join(fields)})")
    out = {"type": pc.fill_null(pa.nulls(n, pa.string()), etype)}
    sym = out["symbol"] = _strings(cols.get("symbol"), n, "symbol", 1, errs, lambda v: _text(v, "symbol"))
    errs.check(pc.or_kleene(sym.is_null(), pc.equal(pc.binary_length(sym), 0)), 1, "symbol",
               lambda i: _why(lambda v: _text(v, "symbol"), sym, i, "missing symbol"))
    src = _strings(cols.get("source"), n, "source", 2, errs, lambda v: _text(v, "source"))
    src = out["source"] = src if source is None else pc.fill_null(src, source)
    errs.check(pc.or_kleene(src.is_null(), pc.equal(pc.binary_length(src), 0)), 2, "source",
               lambda i: _why(lambda v: _text(v, "source"), src, i, "missing source"))
    out["ts"] = _ts_col(cols.get("ts"), n, "ts", 3, errs, True)
    out["recv_ts"] = _ts_col(cols.get("recv_ts"), n, "recv_ts", 4, errs, False)
    out["seq"] = _seq_col(cols.get("seq"), n, errs)
    for f in FIELDS[etype]:
        kind, o, a = _KINDS[f], pos[f], cols.get(f)
        if etype == "OrderFlow" and f == "price":
            kind = "opt_price"
            action = out["action"]
            errs.check(pc.and_kleene(_nulls_of(a, n), pc.invert(pc.is_in(action, pa.array(NO_PRICE_ACTIONS)))), o, f,
                       lambda i: f"missing price (only cancel and clear may omit it, action is {action[i].as_py()})")
        if kind in ("price", "size", "opt_price", "opt_size"):
            out[f] = _decimal_col(a, n, f, o, errs, required=kind in ("price", "size"), nonneg=kind.endswith("size"))
        elif kind == "side":
            out[f] = _choice_col(a, n, f, o, errs, SIDES, "unknown")
        elif kind == "action":
            out[f] = _choice_col(a, n, f, o, errs, ACTIONS, None)
        elif kind in ("id", "opt_id"):
            req = kind == "id"
            v = out[f] = _strings(a, n, f, o, errs, lambda x, f=f, req=req: _ident(x, f, req), ints=True)
            bad = pc.equal(pc.binary_length(v), 0)
            errs.check(pc.or_kleene(v.is_null(), bad) if req else bad, o, f,
                       lambda i, f=f, req=req, v=v: _why(lambda x: _ident(x, f, req), v, i, f"missing {f}"))
        elif kind == "opt_text":
            out[f] = _strings(a, n, f, o, errs, lambda x, f=f: _opt_text(x, f))
        elif kind == "interval":
            v = out[f] = _strings(a, n, f, o, errs, lambda x: _bar_interval(x))
            errs.check(pc.invert(pc.fill_null(pc.match_substring_regex(v, f"^(?:{INTERVAL_RE})$"), False)), o, f,
                       lambda i, v=v: _why(_bar_interval, v, i, "invalid interval"))
        elif kind == "conditions":
            out[f] = _conditions_col(a, n, f, o, errs)
        elif kind == "levels":
            out[f] = _levels_col(a, n, f, o, errs)
    if etype == "BboQuote":
        for side in ("bid", "ask"):
            price, size = out[side + "_price"], out[side + "_size"]
            errs.check(pc.and_kleene(price.is_null(), size.is_valid()), pos[side + "_size"] + 0.1, side + "_size",
                       f"{side}_size given without {side}_price")
        errs.check(pc.and_kleene(out["bid_price"].is_null(), out["ask_price"].is_null()), pos["ask_size"] + 0.2,
                   "bid_price", "a BboQuote needs a bid or an ask price (both are null)")
    if etype == "L2Snapshot":
        errs.check(pc.and_kleene(pc.equal(pc.list_value_length(out["bids"]), 0),
                           pc.equal(pc.list_value_length(out["asks"]), 0)), pos["asks"] + 0.1, "bids",
                   "an L2Snapshot needs at least one level (bids and asks are both empty)")
    errs.raise_first()
    return pa.Table.from_arrays([out[f] for f in fields], schema=arrow_schema(etype))


def _nulls_of(arr, n: int) -> pa.Array:
    return pa.repeat(True, n) if arr is None else arr.is_null()


def _seq_col(arr, n: int, errs: _FirstError) -> pa.Array:
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, pa.int64())
    msg = (lambda i: f"seq must be an integer in 0..2**63-1, got {_short(arr[i].as_py())}")
    if not pa.types.is_integer(arr.type):
        errs.check(arr.is_valid(), 5, "seq", msg)
        return pa.nulls(n, pa.int64())
    bad = pc.less(arr, 0)
    if arr.type == pa.uint64():
        bad = pc.greater(arr, I64_MAX)
    errs.check(bad, 5, "seq", msg)
    return pc.if_else(bad, 0, arr).cast(pa.int64())


def encode_table(table: pa.Table) -> bytes:
    """A canonical table (from `normalize_table`) as JSON lines, byte-identical to `encode` per row."""
    import polars as pl
    if table.num_rows == 0:
        return b""
    etype = table.column("type")[0].as_py() if "type" in table.column_names else None
    if etype not in FIELDS or [(f.name, f.type) for f in table.schema] != \
            [(f.name, f.type) for f in arrow_schema(etype)]:
        raise InputError(f"encode_table takes a canonical table (see normalize_table); columns are "
                         f"{', '.join(table.column_names)}")
    buf = io.BytesIO()
    pl.from_arrow(table).write_ndjson(buf)
    return buf.getvalue()


# The per-event helpers and constants the columns are checked against. Imported here, after this
# module's own definitions, so that either module can be imported first: events.py imports this one
# at its end to re-export the public names, and the functions above only look these up when called.
from mdcsql.events import (  # noqa: E402
    ACTIONS, COMMON_FIELDS, EVENT_TYPES, FIELDS, I64_MAX, I64_MIN, INTERVAL_RE, ISO_TS_RE, MAX_DECIMAL_CHARS,
    MIN_INT_TS, NO_PRICE_ACTIONS, PLAIN_DECIMAL_RE, SIDES, _bar_interval, _conditions, _flow_action, _ident,
    _opt_text, _price, _short, _side, _size, _text, decimal_text, parse_ts,
)
