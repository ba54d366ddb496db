-- Register or replace one symbol.
INSERT OR REPLACE INTO symbols (symbol, canonical, aliases, asset_class, exchange, currency, isin, figi, sedol)
VALUES ($symbol, $canonical, $aliases, $asset_class, $exchange, $currency, $isin, $figi, $sedol);
