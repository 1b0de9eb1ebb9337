//! The journal of answered calls, for restart safety.
//!
//! One JSON object per line: `{"add":{...}}` when a call is answered (or its legs change after
//! a transfer), `{"remove":id}` when it ends. A restarted sidecar replays the file, sends BYE on
//! both legs of every call still present (the SIP state needed for that — Call-IDs, tags, CSeq,
//! remote targets, route sets, flows — is all that is kept) and rewrites the file empty.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One dialog, enough to send it a BYE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLeg {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Our From header value for requests (tag included).
    pub local_hdr: String,
    /// Their header value for To (tag included).
    pub remote_hdr: String,
    /// Our last CSeq.
    pub cseq: u32,
    /// Remote target URI.
    pub target: String,
    /// Route set.
    pub routes: Vec<String>,
    /// `UDP`/`TCP`.
    pub transport: String,
    /// Our listener address.
    pub local: String,
    /// Where requests go.
    pub remote: String,
}

/// One answered call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Call id (core-internal).
    pub id: u64,
    /// Datapath session id.
    pub session: u64,
    /// Caller leg, callee leg.
    pub legs: [JournalLeg; 2],
}

/// A change to the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalOp {
    /// Call answered (or replaced after a transfer).
    Add(JournalEntry),
    /// Call ended.
    Remove(u64),
    /// Start over (after recovery).
    Reset,
}

/// The journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Reads the live entries of `path` (missing file = none); malformed lines are skipped.
    pub fn load(path: &Path) -> Vec<JournalEntry> {
        let Ok(f) = File::open(path) else { return Vec::new() };
        let mut live: BTreeMap<u64, JournalEntry> = BTreeMap::new();
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            match serde_json::from_str::<JournalOp>(&line) {
                Ok(JournalOp::Add(e)) => {
                    live.insert(e.id, e);
                }
                Ok(JournalOp::Remove(id)) => {
                    live.remove(&id);
                }
                Ok(JournalOp::Reset) => live.clear(),
                Err(e) => log::warn!("{}: skipping malformed journal line: {e}", path.display()),
            }
        }
        live.into_values().collect()
    }

    /// Opens for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    /// Appends one operation (a `Reset` truncates the file).
    pub fn apply(&mut self, op: &JournalOp) -> std::io::Result<()> {
        if *op == JournalOp::Reset {
            self.file = OpenOptions::new().create(true).write(true).truncate(true).open(&self.path)?;
            self.file = OpenOptions::new().append(true).open(&self.path)?;
            return Ok(());
        }
        let mut line = serde_json::to_string(op).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())
    }
}

/// The journal path for a shm path: `<shm_path>.calls`.
pub fn path_for(shm: &Path) -> PathBuf {
    let mut p = shm.as_os_str().to_owned();
    p.push(".calls");
    PathBuf::from(p)
}
