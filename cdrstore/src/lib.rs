//! xtrunk's CDR store (issue 17): the sidecar's CDR file is the spool; one writer thread
//! ([`writer`]) tails it ([`spool`]) and commits batches into SQLite or PostgreSQL ([`db`],
//! same schema, [`row`]) exactly once; [`export`] and [`report`] read the store back
//! (`xtrunk cdr export`, the short-call report).

#![forbid(unsafe_code)]

pub mod db;
pub mod export;
pub mod report;
pub mod row;
pub mod spool;
pub mod writer;

pub use db::{Backend, Filter, Postgres, Sqlite};
pub use row::Row;
pub use writer::Writer;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL said no (or could not be reached).
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// A stored row has a column of the wrong kind.
    #[error("a stored row does not fit the schema")]
    BadRow,
}
