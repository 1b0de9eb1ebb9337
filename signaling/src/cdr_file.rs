//! The CDR file: one JSON line per call, all of a poll round's CDRs in one `write(2)`. A write
//! that fails (a full disk, an I/O error) loses nothing: the lines stay in a bounded backlog
//! and are written, in order, by the next flush that succeeds. Only past [`BACKLOG_MAX`] bytes
//! are CDRs dropped, each one counted and the first logged.

use std::io::Write;

use crate::cdr::Cdr;

/// Bytes of CDR lines kept while the file cannot be written (about 100 000 CDRs).
pub const BACKLOG_MAX: usize = 64 << 20;

/// Where CDRs go; `W` is the file (a test writer in tests).
#[derive(Debug)]
pub struct CdrSink<W: Write> {
    out: Option<W>,
    backlog: Vec<u8>,
    /// Writes are failing (logged once per episode).
    failing: bool,
    /// CDRs written.
    pub written: u64,
    /// CDRs dropped because the backlog was full.
    pub lost: u64,
    queued: u64,
}

impl<W: Write> CdrSink<W> {
    /// A sink writing to `out` (None: CDRs are discarded, as configured).
    pub fn new(out: Option<W>) -> Self {
        Self { out, backlog: Vec::new(), failing: false, written: 0, lost: 0, queued: 0 }
    }

    /// A new file (after a rotation); what is backlogged goes to it.
    pub fn replace(&mut self, out: W) {
        self.out = Some(out);
    }

    /// Queues one CDR line.
    pub fn push(&mut self, cdr: &Cdr) {
        if self.out.is_none() {
            return;
        }
        if self.backlog.len() >= BACKLOG_MAX {
            self.lost += 1;
            if self.lost == 1 || self.lost.is_multiple_of(10_000) {
                log::error!("cdr backlog full ({BACKLOG_MAX} B unwritten): {} CDR(s) lost so far", self.lost);
            }
            return;
        }
        if serde_json::to_writer(&mut self.backlog, cdr).is_ok() {
            self.backlog.push(b'\n');
            self.queued += 1;
        }
    }

    /// Writes what is queued; on failure keeps it for the next call.
    pub fn flush(&mut self) {
        let Some(out) = self.out.as_mut() else { return };
        while !self.backlog.is_empty() {
            match out.write(&self.backlog) {
                Ok(0) => break,
                Ok(n) => {
                    // Whole lines written count as CDRs written.
                    let lines = self.backlog[..n].iter().filter(|b| **b == b'\n').count() as u64;
                    self.written += lines;
                    self.queued -= lines.min(self.queued);
                    self.backlog.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !self.failing {
                        log::error!("cdr write: {e}; keeping the CDRs in memory and retrying");
                        self.failing = true;
                    }
                    return;
                }
            }
        }
        if self.failing && self.backlog.is_empty() {
            log::info!("cdr writes resumed; nothing lost");
            self.failing = false;
        }
    }

    /// The lines not yet written (taken: the last resort at exit is the log).
    pub fn take_backlog(&mut self) -> Vec<u8> {
        self.queued = 0;
        std::mem::take(&mut self.backlog)
    }

    /// CDRs queued and not yet written.
    pub fn pending(&self) -> u64 {
        self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails `fail` writes, then accepts at most `chunk` bytes per write.
    struct Flaky {
        fail: usize,
        chunk: usize,
        got: Vec<u8>,
    }

    impl Write for Flaky {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.fail > 0 {
                self.fail -= 1;
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = b.len().min(self.chunk);
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_loses_no_cdr() {
        let mut s = CdrSink::new(Some(Flaky { fail: 3, chunk: 7, got: Vec::new() }));
        for i in 0..5 {
            s.push(&Cdr { call_id: format!("c{i}"), ..Cdr::default() });
            s.flush();
            if i == 2 {
                assert_eq!((s.pending(), s.written), (3, 0), "three failed flushes keep three CDRs");
            }
        }
        let got = String::from_utf8(s.out.as_ref().unwrap().got.clone()).unwrap();
        let ids: Vec<String> = got.lines().map(|l| serde_json::from_str::<Cdr>(l).unwrap().call_id).collect();
        assert_eq!(ids, ["c0", "c1", "c2", "c3", "c4"], "all, in order, whole lines");
        assert_eq!((s.written, s.pending(), s.lost), (5, 0, 0));
    }

    #[test]
    fn no_file_no_cdrs() {
        let mut s: CdrSink<Flaky> = CdrSink::new(None);
        s.push(&Cdr::default());
        s.flush();
        assert_eq!((s.written, s.pending()), (0, 0));
    }
}
