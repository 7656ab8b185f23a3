-- The change feed: one row per change other nodes' caches must hear of, appended in the same
-- transaction as the write, under the change lock (see the PostgreSQL Backend impl), so that
-- positions become visible in increasing order.
CREATE TABLE changes (
    position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind     TEXT   NOT NULL,
    subject  BYTEA  NOT NULL
);
