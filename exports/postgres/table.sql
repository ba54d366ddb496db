-- {{table}}: one row per archived event (mdcsql PostgreSQL export). Times: ts/recv_ts are
-- floored to the microsecond (PostgreSQL's resolution); ts_ns/recv_ts_ns keep the exact ns.
CREATE TABLE IF NOT EXISTS {{table}} (
    ts          timestamptz NOT NULL,   -- event time, UTC, floored to the microsecond
    ts_ns       bigint      NOT NULL,   -- the exact event time: nanoseconds since 1970-01-01 UTC
    recv_ts     timestamptz,            -- receive time, floored to the microsecond
    recv_ts_ns  bigint,                 -- the exact receive time in nanoseconds
    symbol      text        NOT NULL,
    source      text        NOT NULL,
    seq         bigint,                 -- the source's sequence number, when it sends one
{{columns}}
);
COMMENT ON COLUMN {{table}}.ts IS 'event time UTC, floored to microseconds (PostgreSQL resolution); ts_ns holds the exact nanoseconds';
COMMENT ON COLUMN {{table}}.ts_ns IS 'exact event time: nanoseconds since 1970-01-01 UTC';
