//! The journal of answered calls: what a restarted sidecar needs to *continue* them.
//!
//! # Format
//! One JSON object per line in `<node.shm_path>.calls`: `{"add":{...}}` (an upsert: the full
//! state of one answered call, written when it is answered and again whenever its dialog state
//! changes — a CSeq we send, a CSeq we receive, a target refresh, a completed re-INVITE/UPDATE, a
//! transfer), `{"remove":id}` when it ends. The last `add` of an id wins; a `remove` drops it.
//!
//! # Cost
//! Append-only: the shell hands every operation produced by one I/O round to
//! [`Journal::apply_all`], which serializes them into one buffer and issues **one** `write(2)`.
//! The file is compacted (live entries written to `<file>.tmp`, renamed over the file) when it holds
//! more than [`COMPACT_MIN`] lines and four times as many lines as live calls, so compaction costs at
//! most a quarter of the appends it follows (amortized O(1) per record), and on every
//! [`Journal::open`] (which also drops a torn last line left by a crash mid-write).
//!
//! The file (and its `.tmp`) is mode 0600: its SDP copies may carry SDES keys. Neither is ever
//! opened through a symbolic link ([`crate::files`]); the `.tmp` is created with `O_EXCL` after
//! removing whatever a crash left there.
//!
//! # Durability (fsync policy)
//! **No fsync.** A record is in the kernel's page cache once `write(2)` returns, so it survives the
//! death of the process at any instant (the requirement: `kill -9` of the sidecar). `rename(2)` is
//! atomic for other processes in the same way, so a crash during compaction leaves either the old
//! or the new file, both complete. A host crash is not covered, on purpose: the file lives next to
//! the session ring (normally on tmpfs, `/dev/shm`) and the datapath's sessions die with the host
//! anyway, so there would be nothing to resume. The shell writes the journal *before* it sends
//! the messages of the same round, so a record is never behind what the peers have seen.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cdr::Cdr;

/// The file is compacted once it holds at least this many lines (and 4× the live calls).
pub const COMPACT_MIN: usize = 4096;

/// One dialog: enough to continue it (send and answer in-dialog requests, rewrite re-offers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLeg {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Our From (as UAC) / To (as UAS) header value, tag included.
    pub local_hdr: String,
    /// The peer's header value, tag included.
    pub remote_hdr: String,
    /// Our last CSeq on this dialog.
    pub cseq: u32,
    /// The peer's last CSeq on this dialog (0 = none seen).
    #[serde(default)]
    pub remote_cseq: u32,
    /// Remote target URI (the peer's Contact).
    pub target: String,
    /// Route set, in the order Route headers are written.
    pub routes: Vec<String>,
    /// `UDP`/`TCP`.
    pub transport: String,
    /// Our listener address (selects the socket; our Via/Contact host derives from it).
    pub local: String,
    /// Where in-dialog requests go.
    pub remote: String,
    /// Trunk name (resolved against the configuration on recovery).
    #[serde(default)]
    pub trunk: String,
    /// Relay port facing this leg.
    #[serde(default)]
    pub port: u16,
    /// Our SDP origin on this leg: (session id, version).
    #[serde(default)]
    pub origin: (u64, u64),
    /// The last SDP we sent this leg.
    #[serde(default)]
    pub local_sdp: Option<String>,
    /// The last SDP this leg sent us.
    #[serde(default)]
    pub remote_sdp: Option<String>,
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
    /// The called number.
    #[serde(default)]
    pub user: String,
    /// The CDR so far (Call-IDs, trunks, numbers, start and answer times).
    #[serde(default)]
    pub cdr: Option<Cdr>,
}

/// A change to the journal.
// `Add` is large, but ops only pass through a short queue between the core and the file.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalOp {
    /// Call answered, or its dialog state changed (an upsert).
    Add(JournalEntry),
    /// Call ended.
    Remove(u64),
    /// Forget everything.
    Reset,
}

/// Counters of the journal's I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records appended.
    pub records: u64,
    /// `write(2)` calls for appends.
    pub writes: u64,
    /// Bytes appended.
    pub bytes: u64,
    /// Compactions done.
    pub compactions: u64,
}

/// The journal file, open for appending, with the live lines kept for compaction.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Live call → its last `add` line (newline included).
    live: HashMap<u64, String>,
    /// Lines in the file.
    lines: usize,
    buf: Vec<u8>,
    /// I/O counters.
    pub stats: JournalStats,
}

/// Parses a file: the live entries with their lines, and the number of lines.
fn read(path: &Path) -> (BTreeMap<u64, (JournalEntry, String)>, usize) {
    let mut live = BTreeMap::new();
    let f = match crate::files::open_read(path) {
        Ok(Some(f)) => f,
        Ok(None) => return (live, 0),
        Err(e) => {
            log::warn!("journal: {e}");
            return (live, 0);
        }
    };
    let mut n = 0;
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        n += 1;
        match serde_json::from_str::<JournalOp>(&line) {
            Ok(JournalOp::Add(e)) => {
                live.insert(e.id, (e, line + "\n"));
            }
            Ok(JournalOp::Remove(id)) => {
                live.remove(&id);
            }
            Ok(JournalOp::Reset) => live.clear(),
            Err(e) => log::warn!("{}: skipping malformed journal line {n}: {e}", path.display()),
        }
    }
    (live, n)
}

impl Journal {
    /// Reads the live entries of `path` (missing file = none); malformed lines are skipped.
    pub fn load(path: &Path) -> Vec<JournalEntry> {
        read(path).0.into_values().map(|(e, _)| e).collect()
    }

    /// Opens `path` after a (re)start: reads its live entries, compacts the file to exactly
    /// them (atomically) and opens it for appending. Returns the journal and the entries.
    pub fn open(path: &Path) -> std::io::Result<(Self, Vec<JournalEntry>)> {
        let (live, _) = read(path);
        let mut entries = Vec::with_capacity(live.len());
        let mut lines = HashMap::with_capacity(live.len());
        for (id, (e, line)) in live {
            entries.push(e);
            lines.insert(id, line);
        }
        let file = crate::files::open_append(path)?;
        let mut j = Self {
            path: path.to_path_buf(),
            file,
            live: lines,
            lines: 0,
            buf: Vec::new(),
            stats: JournalStats::default(),
        };
        j.compact()?;
        Ok((j, entries))
    }

    /// Calls live in the journal.
    pub fn live(&self) -> usize {
        self.live.len()
    }

    /// Appends one operation.
    pub fn apply(&mut self, op: &JournalOp) -> std::io::Result<()> {
        self.apply_all(std::slice::from_ref(op))
    }

    /// Appends operations with one `write(2)`; compacts when the file has grown enough.
    pub fn apply_all(&mut self, ops: &[JournalOp]) -> std::io::Result<()> {
        self.buf.clear();
        for op in ops {
            match op {
                JournalOp::Reset => {
                    // Everything before is void: drop what is buffered too.
                    self.buf.clear();
                    self.live.clear();
                    self.lines = usize::MAX / 2; // forces the compaction below
                    continue;
                }
                JournalOp::Add(e) => {
                    let start = self.buf.len();
                    serde_json::to_writer(&mut self.buf, op).map_err(std::io::Error::other)?;
                    self.buf.push(b'\n');
                    // serde_json writes UTF-8: the lossy path never replaces anything.
                    let line = std::str::from_utf8(&self.buf[start..])
                        .map_or_else(|_| String::from_utf8_lossy(&self.buf[start..]).into_owned(), str::to_string);
                    self.live.insert(e.id, line);
                }
                JournalOp::Remove(id) => {
                    if self.live.remove(id).is_none() {
                        continue; // never journaled: nothing to undo
                    }
                    serde_json::to_writer(&mut self.buf, op).map_err(std::io::Error::other)?;
                    self.buf.push(b'\n');
                }
            }
            self.lines = self.lines.saturating_add(1);
            self.stats.records += 1;
        }
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.stats.writes += 1;
            self.stats.bytes += self.buf.len() as u64;
        }
        if self.lines >= COMPACT_MIN && self.lines >= 4 * self.live.len() {
            self.compact()?;
        }
        Ok(())
    }

    /// `fdatasync(2)` on the file: what surviving a host crash would cost (the shell does not).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Rewrites the file with the live lines only: `<path>.tmp`, then `rename(2)` over the file.
    fn compact(&mut self) -> std::io::Result<()> {
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut out = Vec::with_capacity(self.live.values().map(String::len).sum());
        for l in self.live.values() {
            out.extend_from_slice(l.as_bytes());
        }
        let mut f = crate::files::create_fresh(&tmp)?;
        f.write_all(&out)?;
        drop(f);
        std::fs::rename(&tmp, &self.path)?;
        self.file = crate::files::open_append(&self.path)?;
        self.lines = self.live.len();
        self.stats.compactions += 1;
        Ok(())
    }
}

/// The journal path for a shm path: `<shm_path>.calls`.
pub fn path_for(shm: &Path) -> PathBuf {
    let mut p = shm.as_os_str().to_owned();
    p.push(".calls");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn leg(c: &str) -> JournalLeg {
        JournalLeg {
            call_id: c.into(),
            local_tag: "l".into(),
            local_hdr: "<sip:a@h>;tag=l".into(),
            remote_hdr: "<sip:b@h>;tag=r".into(),
            cseq: 1,
            remote_cseq: 2,
            target: "sip:b@127.0.0.1:5062".into(),
            routes: vec![],
            transport: "UDP".into(),
            local: "127.0.0.1:5060".into(),
            remote: "127.0.0.1:5062".into(),
            trunk: "t".into(),
            port: 10_000,
            origin: (1, 2),
            local_sdp: None,
            remote_sdp: None,
        }
    }

    fn entry(id: u64) -> JournalEntry {
        JournalEntry { id, session: id, legs: [leg("a"), leg("b")], user: "1".into(), cdr: None }
    }

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("xtrunk-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn upsert_remove_reopen() {
        let p = tmp("upsert");
        let (mut j, e) = Journal::open(&p).unwrap();
        assert!(e.is_empty());
        let mut e2 = entry(2);
        j.apply_all(&[JournalOp::Add(entry(1)), JournalOp::Add(e2.clone()), JournalOp::Remove(1)]).unwrap();
        assert_eq!(j.stats.writes, 1, "one write per batch");
        e2.legs[0].cseq = 7;
        j.apply(&JournalOp::Add(e2.clone())).unwrap();
        j.apply(&JournalOp::Remove(99)).unwrap(); // unknown: not written
        assert_eq!(j.stats.records, 4);
        drop(j); // a crash: nothing is flushed on drop, writes are already in the file
        assert_eq!(Journal::load(&p), vec![e2.clone()]);
        let (j, e) = Journal::open(&p).unwrap();
        assert_eq!(e, vec![e2]);
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 1, "compacted on open");
        assert_eq!(j.live(), 1);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn torn_last_line_is_dropped_on_open() {
        let p = tmp("torn");
        let (mut j, _) = Journal::open(&p).unwrap();
        j.apply(&JournalOp::Add(entry(1))).unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"add\":{\"id\":2,\"sess").unwrap();
        let (mut j, e) = Journal::open(&p).unwrap();
        assert_eq!(e.len(), 1);
        j.apply(&JournalOp::Add(entry(3))).unwrap();
        assert_eq!(Journal::load(&p).iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 3]);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn private_and_planted_links_refused() {
        use std::os::unix::fs::PermissionsExt;
        let p = tmp("links");
        let victim = tmp("links-victim");
        std::fs::write(&victim, b"precious\n").unwrap();
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        let e = Journal::open(&p).unwrap_err().to_string();
        assert!(e.contains(&*p.to_string_lossy()) && e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
        std::fs::remove_file(&p).unwrap();
        // A link planted at the compaction file is removed, not followed.
        let mut t = p.as_os_str().to_owned();
        t.push(".tmp");
        std::os::unix::fs::symlink(&victim, &t).unwrap();
        let (mut j, _) = Journal::open(&p).unwrap();
        j.apply(&JournalOp::Add(entry(1))).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(std::fs::symlink_metadata(&t).is_err(), "tmp renamed over the journal");
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(&victim);
    }

    #[test]
    fn compacts_when_grown() {
        let p = tmp("compact");
        let (mut j, _) = Journal::open(&p).unwrap();
        for i in 0..(COMPACT_MIN as u64) {
            j.apply_all(&[JournalOp::Add(entry(i)), JournalOp::Remove(i)]).unwrap();
        }
        j.apply(&JournalOp::Add(entry(1_000_000))).unwrap();
        assert!(j.stats.compactions >= 2, "{:?}", j.stats);
        let n = std::fs::read_to_string(&p).unwrap().lines().count();
        assert!(n < COMPACT_MIN, "file has {n} lines");
        assert_eq!(Journal::load(&p).len(), 1);
        j.apply(&JournalOp::Reset).unwrap();
        assert!(Journal::load(&p).is_empty());
        let _ = std::fs::remove_file(&p);
    }
}
