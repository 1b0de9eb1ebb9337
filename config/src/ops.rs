//! `[cdr]`, `[metrics]` and `[admin]`: the operations side (issue 17). All off by default.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[cdr]`: where CDRs are stored besides the JSON-lines file (`node.cdr_path`), which is the
/// spool the store is fed from.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdrStore {
    /// `none` (the JSON-lines file only), `sqlite` or `postgres`.
    pub store: StoreKind,
    /// The SQLite database file (`store = "sqlite"`).
    pub sqlite_path: PathBuf,
    /// The PostgreSQL connection string (`store = "postgres"`), e.g.
    /// `host=127.0.0.1 port=5432 user=xtrunk dbname=xtrunk`.
    pub postgres: Option<String>,
    /// Most CDRs per commit.
    pub batch_max: u32,
    /// How often the writer looks for new CDRs in the spool, ms.
    pub poll_ms: u32,
}

impl Default for CdrStore {
    fn default() -> Self {
        Self {
            store: StoreKind::None,
            sqlite_path: PathBuf::from("/var/lib/xtrunk/cdr.sqlite"),
            postgres: None,
            batch_max: 500,
            poll_ms: 100,
        }
    }
}

/// The CDR store's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// No store: the JSON-lines file only.
    None,
    /// An embedded SQLite file (WAL).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// `[metrics]`: the Prometheus endpoint (`GET /metrics`), served by the sidecar's control thread.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsCfg {
    /// Listen address, e.g. `127.0.0.1:9465`; none = off.
    pub listen: Option<SocketAddr>,
}

impl crate::Config {
    pub(crate) fn validate_ops(&self, v: &mut crate::validate::Validator) {
        let c = &self.cdr;
        if c.store != StoreKind::None && self.node.cdr_path.is_none() {
            v.add("cdr.store", "needs node.cdr_path (the spool the store is fed from)");
        }
        if c.store == StoreKind::Postgres && c.postgres.as_deref().map_or(true, |s| s.trim().is_empty()) {
            v.add("cdr.postgres", "must be set when cdr.store = \"postgres\"");
        }
        if c.store == StoreKind::Sqlite && c.sqlite_path.as_os_str().is_empty() {
            v.add("cdr.sqlite_path", "must not be empty");
        }
        if !(1..=100_000).contains(&c.batch_max) {
            v.add("cdr.batch_max", format!("must be 1..=100000, got {}", c.batch_max));
        }
        if !(1..=60_000).contains(&c.poll_ms) {
            v.add("cdr.poll_ms", format!("must be 1..=60000, got {}", c.poll_ms));
        }
    }
}
