    bids        jsonb,                  -- [{"price": 187.1, "size": 300}, ...] best first; numbers exact
    asks        jsonb,
    venue       text
