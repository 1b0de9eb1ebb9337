//! Corrupt ring positions (issue #11): a head or tail overwritten behind the ring's back — off
//! by one, far out, or a tail behind the head — must not wedge the ring or flood the log. The
//! rings live in a real file, corrupted with `pwrite` as an outside process would.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use xtrunk_ring::msg::{Command, SessionId};
use xtrunk_ring::shm::HEADER_REGION;
use xtrunk_ring::spsc::{HEAD_OFFSET, RESYNC_GRACE, TAIL_OFFSET};
use xtrunk_ring::{CommandReceiver, CommandSender, Shm};

/// Warnings logged, with the name of the thread (= the test) that logged them.
static LINES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        let thread = std::thread::current().name().unwrap_or("").to_string();
        LINES.lock().unwrap().push((thread, r.args().to_string()));
    }
    fn flush(&self) {}
}

/// Lines this test's thread logged so far.
fn my_lines() -> Vec<String> {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        static CAPTURE: Capture = Capture;
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
    let me = std::thread::current().name().unwrap_or("").to_string();
    LINES.lock().unwrap().iter().filter(|(t, _)| *t == me).map(|(_, l)| l.clone()).collect()
}

/// A ring file with the commands ring's two ends, removed on drop.
struct Rig {
    path: PathBuf,
    tx: CommandSender,
    rx: CommandReceiver,
}

impl Rig {
    fn new(name: &str, capacity: usize) -> Self {
        let _ = my_lines();
        let path = PathBuf::from(format!("/dev/shm/xtrunk-ring-positions-{}-{name}", std::process::id()));
        let dp = Shm::create(&path, capacity, 8).unwrap();
        let sig = Shm::attach(&path).unwrap();
        let (rx, _) = dp.datapath_end().unwrap();
        let (tx, _) = sig.signaling_end().unwrap();
        Self { path, tx, rx }
    }

    fn word(&self, off: usize) -> u64 {
        let f = std::fs::File::open(&self.path).unwrap();
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, (HEADER_REGION + off) as u64).unwrap();
        u64::from_le_bytes(b)
    }

    fn set(&self, off: usize, v: u64) {
        let f = std::fs::OpenOptions::new().write(true).open(&self.path).unwrap();
        f.write_all_at(&v.to_le_bytes(), (HEADER_REGION + off) as u64).unwrap();
    }

    fn send(&mut self, id: u64) {
        self.tx.try_send(&Command::Delete(SessionId(id))).unwrap();
    }

    /// Everything the consumer hands out now: the ids of good messages, and how many were bad.
    fn drain(&mut self) -> (Vec<u64>, usize) {
        let (mut ok, mut bad) = (Vec::new(), 0);
        while let Some(r) = self.rx.try_recv() {
            match r {
                Ok(Command::Delete(SessionId(id))) => ok.push(id),
                Ok(c) => panic!("unexpected {c:?}"),
                Err(_) => bad += 1,
            }
        }
        (ok, bad)
    }

    /// Keeps trying to send `id` while polling the consumer, until it has been received; returns
    /// how long that took and the bad slots seen on the way.
    fn deliver(&mut self, id: u64) -> (Duration, usize) {
        let t0 = Instant::now();
        let (mut sent, mut bad) = (false, 0);
        while t0.elapsed() < Duration::from_secs(2) {
            if !sent {
                sent = self.tx.try_send(&Command::Delete(SessionId(id))).is_ok();
            }
            let (ok, b) = self.drain();
            bad += b;
            if ok.contains(&id) {
                assert_eq!(ok, vec![id], "nothing else, nothing twice");
                return (t0.elapsed(), bad);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("message {id} not delivered within 2 s; faults {} / {}", self.tx.faults(), self.rx.faults());
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Positions agree again: the next messages flow normally, in order, none lost.
fn flows(r: &mut Rig, first: u64) {
    for id in first..first + 20 {
        r.send(id);
        assert_eq!(r.drain(), (vec![id], 0));
    }
    assert_eq!(r.word(TAIL_OFFSET), r.word(HEAD_OFFSET));
}

#[test]
fn tail_far_ahead_is_waited_out_and_repaired_by_the_producer() {
    let mut r = Rig::new("far", 8);
    r.send(1);
    r.send(2);
    let tail = r.word(TAIL_OFFSET);
    r.set(TAIL_OFFSET, tail + (1 << 40) + 12_345);
    // The consumer does not read a lap of garbage: it waits.
    assert_eq!(r.drain(), (vec![], 0));
    assert_eq!(r.rx.faults().impossible, 1);
    // The producer's next send restores its word: nothing was lost.
    r.send(3);
    assert_eq!(r.drain(), (vec![1, 2, 3], 0));
    assert_eq!(r.tx.faults().repaired, 1);
    assert_eq!((r.rx.faults().impossible, r.rx.faults().resyncs), (1, 0));
    flows(&mut r, 4);
}

#[test]
fn tail_far_ahead_with_an_idle_producer_is_re_based_within_a_second() {
    let mut r = Rig::new("idle", 8);
    r.send(1);
    assert_eq!(r.drain(), (vec![1], 0));
    let tail = r.word(TAIL_OFFSET);
    r.set(TAIL_OFFSET, tail + (1 << 40) + 12_345);
    let t0 = Instant::now();
    while r.rx.faults().resyncs == 0 {
        assert_eq!(r.drain(), (vec![], 0), "no garbage read, nothing replayed");
        assert!(t0.elapsed() < Duration::from_secs(1), "no re-base: {}", r.rx.faults());
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(t0.elapsed() >= RESYNC_GRACE);
    assert_eq!(r.rx.faults().skipped, (1 << 40) + 12_345);
    // The producer meets a head ahead of its tail and re-bases onto it.
    let (took, bad) = r.deliver(2);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(bad, 0);
    assert_eq!((r.tx.faults().repaired, r.tx.faults().resyncs), (1, 1));
    flows(&mut r, 3);
}

#[test]
fn tail_one_ahead_costs_one_rejected_slot() {
    let mut r = Rig::new("plus1", 8);
    for lap in [1..=5, 6..=10] {
        lap.clone().for_each(|id| r.send(id));
        assert_eq!(r.drain().0, lap.collect::<Vec<_>>());
    }
    let tail = r.word(TAIL_OFFSET);
    r.set(TAIL_OFFSET, tail + 1);
    // The slot below the bad tail was never written in this lap: rejected, counted.
    assert_eq!(r.drain(), (vec![], 1));
    assert_eq!(r.rx.rejected(), 1);
    let (took, bad) = r.deliver(11);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(bad, 0);
    assert_eq!((r.tx.faults().repaired, r.tx.faults().resyncs, r.tx.faults().skipped), (1, 1, 1));
    flows(&mut r, 12);
}

#[test]
fn tail_one_behind_the_head_loses_nothing() {
    let mut r = Rig::new("minus1", 8);
    r.send(1);
    assert_eq!(r.drain(), (vec![1], 0));
    let tail = r.word(TAIL_OFFSET);
    r.set(TAIL_OFFSET, tail - 1);
    assert_eq!(r.drain(), (vec![], 0), "no lap of stale slots re-read");
    assert_eq!(r.rx.faults().impossible, 1);
    r.send(2);
    assert_eq!(r.drain(), (vec![2], 0));
    assert_eq!(r.rx.faults().resyncs, 0);
    flows(&mut r, 3);
}

#[test]
fn a_corrupt_head_is_repaired_by_the_polling_consumer() {
    for (name, bad) in [("head-far", 1u64 << 50), ("head-plus1", 1), ("head-behind", u64::MAX - 20)] {
        let mut r = Rig::new(name, 8);
        for id in 1..=8 {
            r.send(id);
        }
        assert_eq!(r.drain().0, (1..=8).collect::<Vec<_>>());
        let head = r.word(HEAD_OFFSET);
        r.set(HEAD_OFFSET, head.wrapping_add(bad));
        let (took, rejected) = r.deliver(9);
        assert!(took < RESYNC_GRACE, "{name}: repaired before any re-base ({took:?})");
        assert_eq!(rejected, 0, "{name}");
        assert_eq!(r.rx.faults().repaired, 1, "{name}");
        assert_eq!(r.tx.faults().resyncs, 0, "{name}");
        flows(&mut r, 10);
    }
}

#[test]
fn a_flood_of_garbage_logs_a_bounded_number_of_lines() {
    let mut r = Rig::new("flood", 8);
    r.send(1);
    assert_eq!(r.drain(), (vec![1], 0));
    // 2000 times a lap of unwritten slots below a bad tail: 16000 rejected slots.
    let t0 = Instant::now();
    for _ in 0..2000 {
        let head = r.word(HEAD_OFFSET);
        r.set(TAIL_OFFSET, head + 8);
        assert_eq!(r.drain(), (vec![], 8));
    }
    assert_eq!(r.rx.rejected(), 16_000);
    let (took, bad) = r.deliver(2);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(bad, 0);
    flows(&mut r, 3);
    let lines = my_lines();
    let secs = t0.elapsed().as_secs() + 1;
    // Per second: 3 lines for rejected slots, 3 for each end's position faults.
    assert!(lines.len() as u64 <= 9 * secs, "{} lines in {secs} s:\n{}", lines.len(), lines.join("\n"));
    assert!(lines.iter().any(|l| l.contains("rejected a corrupt command")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("impossible head/tail")), "{lines:?}");
}

#[test]
fn the_log_says_what_was_suppressed() {
    let mut r = Rig::new("suppressed", 8);
    for _ in 0..10 {
        let head = r.word(HEAD_OFFSET);
        r.set(TAIL_OFFSET, head + 1);
        assert_eq!(r.drain(), (vec![], 1));
    }
    std::thread::sleep(xtrunk_ring::ratelimit::WINDOW);
    let head = r.word(HEAD_OFFSET);
    r.set(TAIL_OFFSET, head + 1);
    r.drain();
    let lines = my_lines();
    let rejects: Vec<_> = lines.iter().filter(|l| l.contains("rejected a corrupt")).collect();
    assert_eq!(rejects.len(), 4, "{lines:?}");
    assert!(rejects[3].contains("(7 similar line(s) suppressed)"), "{}", rejects[3]);
    assert!(rejects[3].contains("11 rejected so far"), "{}", rejects[3]);
}
