    price       numeric,                -- exact decimal, as archived
    size        numeric,
    side        text,                   -- buy, sell, unknown
    trade_id    text,
    venue       text,
    conditions  text[]
