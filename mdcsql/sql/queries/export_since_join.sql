-- export_since_join: the watermarks of an incremental export, one per (symbol, source): prev_ns,
-- the latest ts the previous run wrote (NULL: a new pair), and new_ns, the latest ts when this run
-- started. Bound as parallel lists. An inner join: a pair that appears after this run took its
-- marks waits for the next run.
JOIN (SELECT unnest($mark_symbols::VARCHAR[]) AS symbol,
             unnest($mark_sources::VARCHAR[]) AS source,
             unnest($mark_prev::BIGINT[]) AS prev_ns,
             unnest($mark_new::BIGINT[]) AS new_ns) AS m
  ON m.symbol = v.symbol AND m.source = v.source
