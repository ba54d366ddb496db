-- Forget the file rows listed in the registered Arrow table `catalog_gone` (column: path).
DELETE FROM files WHERE path IN (SELECT path FROM catalog_gone);
