-- Per exported table ({{table}} from mdcsql's allow-list): the lookup most queries start with.
CREATE INDEX IF NOT EXISTS {{table}}_symbol_ts_idx ON {{table}} (symbol, ts);
