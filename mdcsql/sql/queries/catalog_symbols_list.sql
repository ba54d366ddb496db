-- Registered symbols, by symbol.
SELECT symbol, canonical, aliases, asset_class, exchange, currency, isin, figi, sedol
FROM symbols
ORDER BY symbol;
