-- events: the columns every event type shares, over all six typed views (one row per event).
-- Select the typed view (trades, bbo_quotes, ...) for the type's own fields.
CREATE OR REPLACE VIEW events AS
SELECT 'Trade' AS type, ts, recv_ts, symbol, source, seq, file FROM trades
UNION ALL
SELECT 'BboQuote' AS type, ts, recv_ts, symbol, source, seq, file FROM bbo_quotes
UNION ALL
SELECT 'L2Snapshot' AS type, ts, recv_ts, symbol, source, seq, file FROM l2_snapshots
UNION ALL
SELECT 'OrderFlow' AS type, ts, recv_ts, symbol, source, seq, file FROM order_flow
UNION ALL
SELECT 'HistoricalBar' AS type, ts, recv_ts, symbol, source, seq, file FROM historical_bars
UNION ALL
SELECT 'Heartbeat' AS type, ts, recv_ts, symbol, source, seq, file FROM heartbeats;
