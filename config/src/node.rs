//! `[node]`: this host.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[node]`: this host.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Node {
    /// Name used in logs, CDRs and the SIP `Server`/`User-Agent` header.
    pub name: String,
    /// The shared-memory file joining signaling and datapath.
    pub shm_path: PathBuf,
    /// Log level: error, warn, info, debug, trace.
    pub log_level: LogLevel,
    /// Where CDRs are appended as JSON lines; none = not written.
    pub cdr_path: Option<PathBuf>,
    /// Log lines as `text` (default) or `json` (one object per line, with the call's span).
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            name: "xtrunk".into(),
            shm_path: PathBuf::from("/dev/shm/xtrunk"),
            log_level: LogLevel::Info,
            cdr_path: None,
            log_format: LogFormat::Text,
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name `log`/`env_logger` understand.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}
