-- export_dedupe: one row per (source, symbol, seq, ts) — seq restarts with a new session of some
-- sources, so equal seqs at different times are different events; rows without a seq are
-- duplicates only when every column is equal. The row kept is the earliest received (then the
-- first file by path). Placeholder row: the view's column list (allow-listed), as one struct.
QUALIFY row_number() OVER (
    PARTITION BY v.source, v.symbol, v.seq, v.ts, CASE WHEN v.seq IS NULL THEN row({{row}}) END
    ORDER BY v.recv_ts, v.file) = 1
