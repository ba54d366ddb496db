-- resolve_symbol(sym, ts [, for_source := NULL]): the canonical symbol that `sym` stood for on the
-- UTC day of `ts` (a DATE or a UTC timestamp), or `sym` itself when no alias applies.
-- Mappings scoped to `for_source` win over those for every source; dated mappings over the
-- undated aliases of the `symbols` table (see the `symbol_aliases` view). Not chained: one step.
-- Example: SELECT resolve_symbol('FB', DATE '2020-01-02');            -- META (after a Lean import)
-- Example: SELECT resolve_symbol(symbol, ts) AS canonical, count(*) FROM trades GROUP BY ALL;
CREATE OR REPLACE MACRO resolve_symbol(sym, ts, for_source := NULL) AS coalesce((
    SELECT a.canonical
    FROM symbol_aliases AS a
    WHERE a.alias = sym
      AND a.valid_from <= utc_day(ts)
      AND (a.valid_to IS NULL OR utc_day(ts) < a.valid_to)
      AND (a.source IS NULL OR a.source = for_source)
    ORDER BY a.source IS NULL, a.precedence, a.canonical
    LIMIT 1), sym);
