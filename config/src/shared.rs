//! `[shared]`: the store several edges share admission counters through (#19). Off by
//! default: the counters live in the sidecar's memory and hold for this host only.

use serde::{Deserialize, Serialize};

use crate::validate::Validator;

/// Where admission counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharedKind {
    /// In this sidecar's memory (one host).
    #[default]
    None,
    /// A Redis-protocol server (Redis 7, Valkey): every edge pointing at it shares channels,
    /// CPS buckets and rolling caps.
    Redis,
}

/// `[shared]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shared {
    /// `none` (default) or `redis`.
    pub kind: SharedKind,
    /// The server: `redis://[user:password@]host:port[/db]` (`redis://127.0.0.1:6379/0`).
    pub url: String,
    /// Bound on one store round trip (connect, read, write) during call setup, in ms
    /// (default 50). A call never waits longer for the store: past it the edge is degraded.
    pub timeout_ms: u32,
    /// A live call's lease in seconds (default 30): refreshed every third of it while the call
    /// lives, so a dead edge's calls stop counting within this long.
    pub lease_ttl_secs: u32,
    /// While the store is unreachable, this edge admits this percentage of each limit on its
    /// own (default 50: two edges; set 100/N for N edges).
    pub share_pct: u8,
    /// After a failure, seconds before the store is tried again (default 5; degraded meanwhile).
    pub retry_secs: u32,
    /// Prefix of every key (several fleets on one server); default `xtrunk:`.
    pub prefix: String,
    /// This edge's SIP address as the other edges reach it (calls for a PBX registered here
    /// come to it); default the first UDP listener's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_address: Option<std::net::SocketAddr>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            kind: SharedKind::None,
            url: String::new(),
            timeout_ms: 50,
            lease_ttl_secs: 30,
            share_pct: 50,
            retry_secs: 5,
            prefix: "xtrunk:".into(),
            edge_address: None,
        }
    }
}

impl Shared {
    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn validate(&self, v: &mut Validator) {
        if self.kind == SharedKind::Redis {
            let ok = ["redis://", "rediss://", "unix://", "redis+unix://"].iter().any(|s| self.url.starts_with(s));
            if !ok {
                v.add("shared.url", format!("must be redis://host:port[/db] (or unix://path), got {:?}", self.url));
            }
        }
        if !(1..=5000).contains(&self.timeout_ms) {
            v.add("shared.timeout_ms", format!("must be 1..=5000, got {}", self.timeout_ms));
        }
        if !(3..=3600).contains(&self.lease_ttl_secs) {
            v.add("shared.lease_ttl_secs", format!("must be 3..=3600, got {}", self.lease_ttl_secs));
        }
        if !(1..=100).contains(&self.share_pct) {
            v.add("shared.share_pct", format!("must be 1..=100, got {}", self.share_pct));
        }
        if !(1..=3600).contains(&self.retry_secs) {
            v.add("shared.retry_secs", format!("must be 1..=3600, got {}", self.retry_secs));
        }
        if self.prefix.len() > 64 || self.prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
            v.add("shared.prefix", "at most 64 characters, no spaces or control characters");
        }
    }
}
