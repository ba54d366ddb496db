-- Mirror new lineage records (one row per input x output) from the staged Arrow table.
INSERT INTO lineage
SELECT seq, transition_id, operation, input_path, input_sha256, input_events, output_path,
       output_sha256, output_events, CAST(parameters AS JSON), CAST("at" AS TIMESTAMP)
FROM incoming_lineage;
