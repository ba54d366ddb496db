    bid_price   numeric,                -- exact decimals, as archived
    bid_size    numeric,
    ask_price   numeric,
    ask_size    numeric,
    venue       text
