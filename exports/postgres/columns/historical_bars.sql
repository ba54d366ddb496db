    open        numeric,                -- exact decimals, as archived
    high        numeric,
    low         numeric,
    close       numeric,
    volume      numeric,
    "interval"  text                    -- 1m, 1h, 1d, ... (quoted: INTERVAL is a type name)
