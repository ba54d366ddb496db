-- Forget every file row (rebuild starts from the tree alone).
DELETE FROM files;
