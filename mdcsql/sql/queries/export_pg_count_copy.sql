-- export_pg_count_copy: events per (symbol, UTC day) of PostgresCopy data files $files, read back
-- as written: COPY text format, one row per line, tab-separated, no quoting. column1 is ts_ns,
-- column4 the symbol, COPY-escaped: '\\' goes through chr(0) (never in exported text) so that the
-- \t, \n, \r left are escapes, then back to one backslash.
SELECT replace(replace(replace(replace(replace(column4, '\\', chr(0)), '\t', chr(9)), '\n', chr(10)),
                       '\r', chr(13)), chr(0), '\') AS symbol,
       strftime(make_timestamp_ns(CAST(column1 AS BIGINT)), '%Y-%m-%d') AS day,
       count(*) AS events
FROM read_csv($files::VARCHAR[], header = false, all_varchar = true, delim = '\t', quote = '', escape = '',
              null_padding = false, auto_detect = false,
              columns = {'column0': 'VARCHAR', 'column1': 'VARCHAR', 'column2': 'VARCHAR',
                         'column3': 'VARCHAR', 'column4': 'VARCHAR'},
              strict_mode = false, ignore_errors = false)   -- later columns are not read
GROUP BY ALL ORDER BY symbol, day
