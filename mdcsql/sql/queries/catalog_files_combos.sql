-- The (tier root, event type, codec) combinations that have at least one file: what the views glob.
SELECT DISTINCT root, type, codec FROM files ORDER BY ALL;
