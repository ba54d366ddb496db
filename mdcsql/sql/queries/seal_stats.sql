-- Statistics of one hot JSONL file, computed when it is sealed.
-- Parameter $file: absolute path of the file. Gaps are missing seq ranges between the distinct seqs present.
WITH ev AS (
    SELECT ts, seq
    FROM read_json($file, format = 'newline_delimited', columns = {ts: 'BIGINT', seq: 'BIGINT'})
),
distinct_seq AS (
    SELECT DISTINCT seq FROM ev WHERE seq IS NOT NULL
),
gaps AS (
    SELECT prev + 1 AS gap_start, seq - 1 AS gap_end
    FROM (SELECT seq, lag(seq) OVER (ORDER BY seq) AS prev FROM distinct_seq)
    WHERE seq - prev > 1
)
SELECT
    (SELECT count(*) FROM ev)                     AS event_count,
    (SELECT min(seq) FROM ev)                     AS first_seq,
    (SELECT max(seq) FROM ev)                     AS last_seq,
    (SELECT min(ts) FROM ev)                      AS first_ts,
    (SELECT max(ts) FROM ev)                      AS last_ts,
    (SELECT coalesce(list([gap_start, gap_end] ORDER BY gap_start), []) FROM gaps) AS gaps
