-- TimescaleDB profile for {{table}}: hypertable on ts with chunks of {{chunk_interval}}, then
-- (when asked) native compression segmented by symbol and a policy compressing chunks older than
-- {{compress_after}}. Guarded: on a server without the timescaledb extension (or where it cannot
-- be enabled) the table stays a plain PostgreSQL table and a NOTICE says so; the load goes on.
DO $mdcsql$
DECLARE
    have_ext boolean;
BEGIN
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') INTO have_ext;
    IF NOT have_ext AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            have_ext := true;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'mdcsql: TimescaleDB is installed but could not be enabled (%): {{table}} stays a plain PostgreSQL table', SQLERRM;
        END;
    END IF;
    IF NOT have_ext THEN
        RAISE NOTICE 'mdcsql: TimescaleDB extension not available on this server: {{table}} loaded as a plain PostgreSQL table (no hypertable, no compression policy)';
        RETURN;
    END IF;
    PERFORM create_hypertable('{{table}}', 'ts', chunk_time_interval => INTERVAL '{{chunk_interval}}',
                              if_not_exists => true, migrate_data => true);
    IF {{compress}} THEN
        EXECUTE 'ALTER TABLE {{table}} SET (timescaledb.compress, '
             || 'timescaledb.compress_segmentby = ''symbol'', timescaledb.compress_orderby = ''ts, seq'')';
        PERFORM add_compression_policy('{{table}}', INTERVAL '{{compress_after}}', if_not_exists => true);
    END IF;
    RAISE NOTICE 'mdcsql: TimescaleDB: {{table}} is a hypertable (chunk interval {{chunk_interval}}, compression policy: {{compress}})';
END
$mdcsql$;
