//! `[cdr]` and `[control]`: the operations side (issue 17). All off by default.

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

/// `[control]`: the sidecar's control thread, a small HTTP server: `GET /metrics`
/// (Prometheus) and the admin API (`/api/v1/...`, bearer token). Off by default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    /// Listen address, e.g. `127.0.0.1:9465`; none = no control thread.
    pub listen: Option<SocketAddr>,
    /// A file holding the admin API's bearer token (one line, at least 16 characters); none =
    /// the admin API is off (404).
    pub admin_token_file: Option<PathBuf>,
    /// Allow `listen` (and `datapath_listen`) on an address other than loopback.
    pub allow_remote: bool,
    /// The datapath process's own `GET /metrics` (socket backend: packets, drops by reason,
    /// sessions; AF_XDP: per worker/queue frames and drops, XDP verdicts, XSK drops), on a thread
    /// that is no relay core; none = off.
    pub datapath_listen: Option<SocketAddr>,
}

impl crate::Config {
    pub(crate) fn validate_ops(&self, v: &mut crate::validate::Validator) {
        let c = &self.cdr;
        if c.store != StoreKind::None && self.node.cdr_path.is_none() {
            v.add("cdr.store", "needs node.cdr_path (the spool the store is fed from)");
        }
        if c.store == StoreKind::Postgres && c.postgres.as_deref().is_none_or(|s| s.trim().is_empty()) {
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
        for (key, addr) in
            [("control.listen", self.control.listen), ("control.datapath_listen", self.control.datapath_listen)]
        {
            if let Some(a) = addr.filter(|a| !a.ip().is_loopback() && !self.control.allow_remote) {
                v.add(key, format!("{a} is not loopback; set control.allow_remote = true to serve it"));
            }
        }
        if self.control.admin_token_file.is_some() && self.control.listen.is_none() {
            v.add("control.admin_token_file", "needs control.listen");
        }
    }
}
