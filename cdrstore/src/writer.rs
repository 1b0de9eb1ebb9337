//! The writer thread: the one thread that writes the store. It tails the spool, commits batches
//! of up to `cdr.batch_max` rows (with the spool position, in one transaction), and reconnects
//! after an error; the SIP loop never waits for it (it only appends to the file).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::db::Backend;
use crate::spool::Spool;
use crate::Error;

/// The writer's counters (read by `/metrics`).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Rows inserted.
    pub inserted: AtomicU64,
    /// CDRs read from the spool that were already stored (replays after a crash).
    pub duplicates: AtomicU64,
    /// Commits.
    pub commits: AtomicU64,
    /// Failed commits or connects.
    pub errors: AtomicU64,
    /// 1 while connected to the store.
    pub connected: AtomicU64,
}

/// A running writer thread.
pub struct Writer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Its counters.
    pub stats: Arc<WriterStats>,
}

/// Opens a backend (called again after an error).
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Backend>, Error> + Send>;

impl Writer {
    /// Starts the thread: `open` connects, `spool` is the CDR file.
    pub fn spawn(open: Opener, spool: PathBuf, batch_max: usize, poll: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(WriterStats::default());
        let (s, st) = (Arc::clone(&stop), Arc::clone(&stats));
        let handle = std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || run(&open, &spool, batch_max.max(1), poll, &s, &st))?;
        Ok(Self { stop, handle: Some(handle), stats })
    }

    /// Commits what the spool holds, then stops.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(open: &Opener, path: &std::path::Path, max: usize, poll: Duration, stop: &AtomicBool, st: &WriterStats) {
    let mut db: Option<Box<dyn Backend>> = None;
    let mut spool: Option<Spool> = None;
    let mut failing = false;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if db.is_none() {
            match open().and_then(|mut b| b.position().map(|p| (b, p))) {
                Ok((b, pos)) => {
                    log::info!("cdr store connected; spool {} resumes at {pos:?}", path.display());
                    spool = Some(Spool::open(path, pos));
                    db = Some(b);
                    st.connected.store(1, Ordering::Relaxed);
                    failing = false;
                }
                Err(e) => {
                    st.errors.fetch_add(1, Ordering::Relaxed);
                    if !failing {
                        log::error!("cdr store: {e}; CDRs stay in {} and are stored when it works", path.display());
                        failing = true;
                    }
                    if stopping {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let (Some(b), Some(sp)) = (db.as_mut(), spool.as_mut()) else { continue };
        let batch = sp.read(max);
        if !batch.progressed {
            if stopping {
                return;
            }
            std::thread::sleep(poll);
            continue;
        }
        match b.commit(&batch.rows, batch.end) {
            Ok(n) => {
                sp.advance(batch.end);
                st.inserted.fetch_add(n as u64, Ordering::Relaxed);
                st.duplicates.fetch_add((batch.rows.len() - n) as u64, Ordering::Relaxed);
                st.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                log::error!("cdr store commit: {e}; reconnecting");
                st.errors.fetch_add(1, Ordering::Relaxed);
                st.connected.store(0, Ordering::Relaxed);
                db = None;
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}
