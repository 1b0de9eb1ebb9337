//! The spool: the sidecar's CDR file (`node.cdr_path`, JSON lines) read from where the store's
//! last commit ended. The sidecar writes each CDR there with `write(2)` before the call leaves
//! its journal, so a CDR is on file whatever instant the sidecar dies at; the store commits
//! rows and the spool position in one transaction, so a row is never inserted twice from the
//! file, and the table's key drops the copy a crash can make (a journaled call replayed as
//! `sidecar_restart` after its CDR was written). Rotation (logrotate moves the file, SIGHUP
//! makes the sidecar open a new one) is followed: the old file is read to its end first.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use xtrunk_signaling::cdr::Cdr;

use crate::db::SpoolPos;
use crate::row::Row;

/// Bytes read per batch at most.
const CHUNK: usize = 1 << 20;

/// A reader of the CDR file, by position.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    pos: u64,
    buf: Vec<u8>,
    /// Lines that did not parse as a CDR (skipped, logged).
    pub bad_lines: u64,
}

/// One batch read from the spool.
#[derive(Debug, Default)]
pub struct Batch {
    /// The CDRs, in file order.
    pub rows: Vec<Row>,
    /// Where the batch ends.
    pub end: SpoolPos,
    /// Did the batch consume anything (rows or skipped lines)?
    pub progressed: bool,
}

impl Spool {
    /// The spool at `path`, resuming at `start` when it names this file (same inode and not
    /// past its end), else from the beginning. The file may not exist yet.
    pub fn open(path: &Path, start: Option<SpoolPos>) -> Self {
        let mut s = Self { path: path.to_path_buf(), file: None, inode: 0, pos: 0, buf: Vec::new(), bad_lines: 0 };
        if let Some((f, ino, len)) = s.open_path() {
            s.file = Some(f);
            s.inode = ino;
            s.pos = match start {
                Some((i, p)) if i == ino && p <= len => p,
                _ => 0,
            };
        }
        s
    }

    fn open_path(&self) -> Option<(File, u64, u64)> {
        let f = File::open(&self.path).ok()?;
        let m = f.metadata().ok()?;
        Some((f, m.ino(), m.len()))
    }

    /// The position reached.
    pub fn position(&self) -> SpoolPos {
        (self.inode, self.pos)
    }

    /// Reads up to `max` complete lines from the current position (nothing moves until
    /// [`Spool::advance`]).
    pub fn read(&mut self, max: usize) -> Batch {
        let mut b = Batch { end: self.position(), ..Batch::default() };
        let Some(f) = &self.file else {
            self.follow();
            return b;
        };
        self.buf.resize(CHUNK, 0);
        let n = match f.read_at(&mut self.buf, self.pos) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("cdr spool {}: {e}", self.path.display());
                0
            }
        };
        let mut used = 0;
        for line in self.buf[..n].split_inclusive(|c| *c == b'\n') {
            if b.rows.len() >= max || line.last() != Some(&b'\n') {
                break;
            }
            used += line.len();
            match serde_json::from_slice::<Cdr>(line) {
                Ok(c) => b.rows.push(Row::from(&c)),
                Err(e) => {
                    self.bad_lines += 1;
                    log::warn!("cdr spool {} at byte {}: not a CDR ({e}); skipped", self.path.display(), self.pos);
                }
            }
        }
        if used == 0 {
            self.follow();
            b.end = self.position();
            return b;
        }
        b.progressed = true;
        b.end = (self.inode, self.pos + used as u64);
        b
    }

    /// Moves to the end of a committed batch.
    pub fn advance(&mut self, to: SpoolPos) {
        if to.0 == self.inode {
            self.pos = to.1;
        }
    }

    /// At the end of the open file: switch to a new file at the path (rotated), or start over
    /// if the file was truncated.
    fn follow(&mut self) {
        let Some((f, ino, len)) = self.open_path() else { return };
        if self.file.is_none() || ino != self.inode {
            log::info!("cdr spool: reading {} (inode {ino}) from the start", self.path.display());
            self.file = Some(f);
            self.inode = ino;
            self.pos = 0;
        } else if len < self.pos {
            log::warn!("cdr spool {}: truncated below {}; reading from the start", self.path.display(), self.pos);
            self.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn line(id: &str) -> String {
        let mut s = serde_json::to_string(&Cdr { call_id: id.into(), ..Cdr::default() }).unwrap();
        s.push('\n');
        s
    }

    fn ids(b: &Batch) -> Vec<&str> {
        b.rows.iter().map(|r| r.call_id.as_str()).collect()
    }

    #[test]
    fn torn_lines_wait_rotation_is_followed_and_positions_resume() {
        let dir = std::env::temp_dir().join(format!("xtrunk-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cdr.jsonl");
        let mut f = std::fs::File::create(&p).unwrap();
        let (a, b) = (line("a"), line("b"));
        f.write_all(a.as_bytes()).unwrap();
        f.write_all(&b.as_bytes()[..5]).unwrap();
        let mut s = Spool::open(&p, None);
        let batch = s.read(10);
        assert_eq!(ids(&batch), ["a"], "a torn last line is not read");
        s.advance(batch.end);
        f.write_all(&b.as_bytes()[5..]).unwrap();
        f.write_all(b"not json\n").unwrap();
        let batch = s.read(10);
        assert_eq!((ids(&batch), s.bad_lines), (vec!["b"], 1));
        s.advance(batch.end);
        let at = batch.end;
        // Resuming at a committed position reads nothing again.
        assert!(!Spool::open(&p, Some(at)).read(10).progressed);
        // Rotation: the file moves away, a new one appears; the old one's rest is read first.
        f.write_all(line("c").as_bytes()).unwrap();
        std::fs::rename(&p, dir.join("cdr.jsonl.1")).unwrap();
        std::fs::write(&p, line("d")).unwrap();
        let batch = s.read(10);
        assert_eq!(ids(&batch), ["c"]);
        s.advance(batch.end);
        assert!(!s.read(10).progressed, "end of the old file: switch");
        let batch = s.read(10);
        assert_eq!(ids(&batch), ["d"], "the new file from its start");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
