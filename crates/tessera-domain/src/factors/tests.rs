//! Unit tests of the factor rules with a fake clock (see `tessera-testkit` for the store side).
