-- Forget every legal_holds row (they are re-read from the hold notices).
DELETE FROM legal_holds;
