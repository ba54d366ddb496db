-- 003_symbol_mappings: date-ranged symbol aliases (like Databento symbology and Lean map files),
-- and the `symbol_aliases` view that the `resolve_symbol` macro and mdcsql.registry resolve with.
-- Like the other registries, the rows are exported to _catalog/symbols.json ("mappings") on every
-- change and re-imported from there when the catalog is recreated (invariant 1).

-- `alias` means `canonical` on the UTC days [valid_from, valid_to): start inclusive, end exclusive,
-- valid_to NULL = open-ended, valid_from 0001-01-01 = since ever. Mappings of one alias and one
-- source scope never overlap (checked by mdcsql.registry: DuckDB has no exclusion constraint).
CREATE TABLE symbol_mappings (
    alias       VARCHAR NOT NULL CHECK (alias <> ''),
    canonical   VARCHAR NOT NULL CHECK (canonical <> ''),
    valid_from  DATE NOT NULL,
    valid_to    DATE CHECK (valid_to IS NULL OR valid_to > valid_from),
    source      VARCHAR CHECK (source IS NULL OR source <> ''),   -- only events of this source; NULL = every source
    note        VARCHAR                                           -- provenance, e.g. 'Lean map file fb.csv'
);

-- Every alias -> canonical the registry knows, with its validity, in resolution order:
-- `precedence` 0 = a dated mapping, 1 = an undated alias from the `symbols` table (its `aliases` list,
-- or a row whose `canonical` differs from its key). resolve_symbol() takes the first match,
-- source-specific mappings before those for every source, then by precedence.
CREATE VIEW symbol_aliases AS
SELECT alias, canonical, valid_from, valid_to, source, note, 0 AS precedence
FROM symbol_mappings
UNION ALL
SELECT DISTINCT a.alias, coalesce(s.canonical, s.symbol), DATE '0001-01-01', CAST(NULL AS DATE),
       CAST(NULL AS VARCHAR), 'symbols.aliases of ' || s.symbol, 1
FROM symbols AS s, unnest(s.aliases) AS a(alias)
WHERE a.alias IS NOT NULL AND a.alias <> coalesce(s.canonical, s.symbol)
UNION ALL
SELECT symbol, canonical, DATE '0001-01-01', CAST(NULL AS DATE), CAST(NULL AS VARCHAR),
       'symbols.canonical of ' || symbol, 1
FROM symbols
WHERE canonical IS NOT NULL AND canonical <> symbol;
