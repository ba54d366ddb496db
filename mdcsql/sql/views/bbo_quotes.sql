-- bbo_quotes: one row per BboQuote event, from every tier root and codec of the archive.
-- Written into the catalog by Catalog.sync() (mdcsql/catalog/views.py): the FROM placeholder becomes a union
-- of read_json() calls over the globs of the (tier root, codec) combinations that have files, or an
-- empty relation of the same columns while the archive has no BboQuote file. Decimal text is read
-- as DECIMAL(38,18), exactly; ts / recv_ts are UTC TIMESTAMP_NS; file is relative to the archive
-- root and joins files.path.
CREATE OR REPLACE VIEW bbo_quotes AS
SELECT
    make_timestamp_ns(ts)       AS ts,
    make_timestamp_ns(recv_ts)  AS recv_ts,
    symbol,
    source,
    seq,
    bid_price,
    bid_size,
    ask_price,
    ask_size,
    venue,
    file
FROM {{events}};
