//! Credentials an account proves itself with. Today: passwords.

pub mod password;
