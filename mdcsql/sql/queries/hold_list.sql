-- Legal holds as mirrored from their notices; $all = true includes released ones.
SELECT hold_id, active, reason, paths, symbols, type, source, date_from, date_to,
       created_at, created_by, released_at, released_by, release_reason
FROM legal_holds
WHERE active OR $all
ORDER BY hold_id;
