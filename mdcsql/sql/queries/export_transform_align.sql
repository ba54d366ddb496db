-- Time alignment (mdcsql.export.transforms.TimeAlign): rows of `transform_input` sampled onto a
-- regular grid of $step nanoseconds per symbol, each grid point stamped at its bucket START and
-- carrying the last row (by ts, then input order __row) of its bucket, or the first when
-- $take_last is false. With $fill, every grid point between a symbol's first and last bucket is
-- present and an empty one repeats the previous values (as-of sampling, `filled` = true).
-- Input: ts (TIMESTAMP_NS), symbol, any other columns, __row (input order). Values are bound.
WITH bucketed AS (
    SELECT *, epoch_ns(ts) // $step * $step AS __bucket
    FROM transform_input
),
picked AS (
    SELECT *
    FROM bucketed
    QUALIFY row_number() OVER (
        PARTITION BY symbol, __bucket
        ORDER BY CASE WHEN $take_last THEN -epoch_ns(ts) ELSE epoch_ns(ts) END,
                 CASE WHEN $take_last THEN -__row ELSE __row END) = 1
),
grid AS (
    SELECT symbol, unnest(CASE WHEN $fill THEN range(min(__bucket), max(__bucket) + $step, $step)
                               ELSE list(__bucket) END) AS __bucket
    FROM picked
    GROUP BY symbol
)
SELECT
    g.symbol,
    make_timestamp_ns(g.__bucket) AS ts,
    last_value(COLUMNS(p.* EXCLUDE (symbol, ts, __bucket, __row)) IGNORE NULLS)
        OVER (PARTITION BY g.symbol ORDER BY g.__bucket),
    p.__bucket IS NULL AS filled
FROM grid AS g
LEFT JOIN picked AS p USING (symbol, __bucket)
ORDER BY g.symbol, g.__bucket;
