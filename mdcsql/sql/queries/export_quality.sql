-- export_quality: the quality summary of an export from the catalogued files it reads: their
-- events, sequence gaps (missing seq ranges) and duplicates dropped at ingest. Files of the
-- requested types, symbols and sources whose [first_ts, last_ts] overlaps [$start_ns, $end_ns);
-- open files (no statistics yet) count as overlapping.
SELECT coalesce(sum(event_count), 0)                                   AS events,
       coalesce(sum(gap_count), 0)                                     AS gaps,
       coalesce(sum(list_sum([g[2] - g[1] + 1
                              FOR g IN from_json(gaps, '[["BIGINT"]]')])), 0) AS missing,
       coalesce(sum(duplicates_dropped), 0)                            AS duplicates_dropped,
       count(*)                                                        AS files,
       max(sealed_at)                                                  AS latest_sealed_at,
       epoch_ns(max(last_ts))                                          AS latest_ts_ns
FROM files
WHERE list_contains($types::VARCHAR[], type)
  AND ($symbols::VARCHAR[] IS NULL OR list_contains($symbols::VARCHAR[], symbol))
  AND ($sources::VARCHAR[] IS NULL OR list_contains($sources::VARCHAR[], source))
  AND ($start_ns::BIGINT IS NULL OR last_ts IS NULL OR last_ts >= make_timestamp_ns($start_ns::BIGINT))
  AND ($end_ns::BIGINT IS NULL OR first_ts IS NULL OR first_ts < make_timestamp_ns($end_ns::BIGINT))
