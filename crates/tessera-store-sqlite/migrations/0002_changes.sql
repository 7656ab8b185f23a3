-- The change feed: one row per change other nodes' caches must hear of, appended in the same
-- transaction as the write. AUTOINCREMENT: a position is never reused, even after pruning.
CREATE TABLE changes (
    position INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind     TEXT    NOT NULL,
    subject  BLOB    NOT NULL
) STRICT;
