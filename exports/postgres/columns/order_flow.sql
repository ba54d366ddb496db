    order_id    text,
    action      text,                   -- add, modify, cancel, fill, clear
    side        text,
    price       numeric,                -- exact decimal; NULL for a cancel/clear without a price
    size        numeric,
    venue       text
