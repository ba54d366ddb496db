-- export_transformed_select: the rows of one event type after the export's transforms
-- (mdcsql.export.transforms.TransformedSelection). Placeholders (double braces): table = the
-- registered Arrow table export_transformed_<view> (view from the allow-list of event views) and
-- columns = expressions over its own columns (names checked against [a-z_][a-z0-9_]*, rendered
-- like export_select.sql's). No values: the selection's filters ran before the transforms.
SELECT {{columns}}
FROM {{table}} AS v
