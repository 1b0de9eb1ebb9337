//! The shared-memory file: header validation, roles, takeover, corruption, and the two-process
//! test (a child process re-executes this test binary as the signaling side).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use xtrunk_ring::msg::{Command, Event, SessionId};
use xtrunk_ring::shm::{ABI_VERSION, HEADER_REGION};
use xtrunk_ring::spsc::CONTROL_SIZE;
use xtrunk_ring::wire::{self, DecodeError, SLOT_SIZE};
use xtrunk_ring::{Error, Shm};

const CHILD_MODE: &str = "XTRUNK_RING_TEST_CHILD";
const CHILD_PATH: &str = "XTRUNK_RING_TEST_PATH";
const CHILD_COUNT: &str = "XTRUNK_RING_TEST_COUNT";

/// A unique file under /dev/shm, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> Self {
        let dir = if Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        Self(PathBuf::from(format!("{dir}/xtrunk-ring-test-{}-{name}", std::process::id())))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

#[test]
fn not_found_names_the_path() {
    let e = Shm::attach("/dev/shm/xtrunk-ring-test-does-not-exist").unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert_eq!(e.to_string(), "ring not found at /dev/shm/xtrunk-ring-test-does-not-exist — is the datapath running?");
}

#[test]
fn bad_capacity_refused() {
    let p = TempPath::new("cap");
    assert!(matches!(Shm::create(&p.0, 1000, 16), Err(Error::Capacity(1000))));
    assert!(matches!(Shm::create(&p.0, 16, 0), Err(Error::Capacity(0))));
}

#[test]
fn round_trip_through_the_file() {
    let p = TempPath::new("rt");
    let dp = Shm::create(&p.0, 64, 32).unwrap();
    assert_eq!(dp.datapath_pid(), Some(std::process::id() as i32));
    let sig = Shm::attach(&p.0).unwrap();
    assert_eq!((sig.commands_capacity(), sig.events_capacity()), (64, 32));
    assert!(!sig.is_stale());
    let (mut crx, mut etx) = dp.datapath_end().unwrap();
    let (mut ctx, mut erx) = sig.signaling_end().unwrap();

    ctx.try_send(&Command::Dump { token: 9 }).unwrap();
    assert_eq!(crx.try_recv(), Some(Ok(Command::Dump { token: 9 })));
    etx.try_send(&Event::DumpDone { token: 9, count: 0 }).unwrap();
    assert_eq!(erx.try_recv(), Some(Ok(Event::DumpDone { token: 9, count: 0 })));
    // Full is back-pressure.
    for i in 0..32 {
        etx.try_send(&Event::Created(SessionId(i + 1))).unwrap();
    }
    assert_eq!(etx.try_send(&Event::Created(SessionId(99))), Err(xtrunk_ring::Full));
    assert_eq!(erx.recv_batch(100, |r| assert!(r.is_ok())), 32);
    assert_eq!(erx.try_recv(), None);
}

#[test]
fn wrong_role_refused() {
    let p = TempPath::new("role");
    let dp = Shm::create(&p.0, 8, 8).unwrap();
    let sig = Shm::attach(&p.0).unwrap();
    assert!(matches!(dp.signaling_end(), Err(Error::WrongRole { have: "datapath", want: "signaling" })));
    assert!(matches!(sig.datapath_end(), Err(Error::WrongRole { have: "signaling", want: "datapath" })));
}

#[test]
fn bad_magic_refused() {
    let p = TempPath::new("magic");
    let _dp = Shm::create(&p.0, 8, 8).unwrap();
    patch(&p.0, 0, b"NOTARING");
    let e = Shm::attach(&p.0).unwrap_err();
    assert!(matches!(e, Error::BadMagic { found, .. } if &found == b"NOTARING"), "{e}");
}

#[test]
fn abi_version_mismatch_refused() {
    let p = TempPath::new("abi");
    let _dp = Shm::create(&p.0, 8, 8).unwrap();
    patch(&p.0, 8, &(ABI_VERSION + 1).to_ne_bytes());
    let e = Shm::attach(&p.0).unwrap_err();
    assert!(matches!(e, Error::AbiVersion { ours, theirs, .. } if ours == ABI_VERSION && theirs == ABI_VERSION + 1));
    assert!(e.to_string().contains(&format!("ABI version {}", ABI_VERSION + 1)), "{e}");
}

#[test]
fn size_table_mismatch_names_the_struct() {
    let p = TempPath::new("sizes");
    let _dp = Shm::create(&p.0, 8, 8).unwrap();
    // Size table: static header at 12, header region at 16, control block at 20, then the wire
    // structs in wire order: Slot at 24, WireAddr at 28, WireKeys at 32, WireLeg at 36.
    patch(&p.0, 24, &1024u32.to_ne_bytes());
    let e = Shm::attach(&p.0).unwrap_err();
    assert!(matches!(e, Error::SizeMismatch { what: "Slot", ours: 512, theirs: 1024, .. }), "{e}");
    assert!(e.to_string().ends_with("size of Slot is 1024 in the file, 512 in this build"), "{e}");
    patch(&p.0, 24, &(SLOT_SIZE as u32).to_ne_bytes());
    patch(&p.0, 36, &180u32.to_ne_bytes());
    let e = Shm::attach(&p.0).unwrap_err();
    assert!(matches!(e, Error::SizeMismatch { what: "WireLeg", theirs: 180, .. }), "{e}");
}

#[test]
fn truncated_file_refused() {
    let p = TempPath::new("trunc");
    let _dp = Shm::create(&p.0, 8, 8).unwrap();
    std::fs::OpenOptions::new().write(true).open(&p.0).unwrap().set_len(8192).unwrap();
    assert!(matches!(Shm::attach(&p.0), Err(Error::Truncated { len: 8192, .. })));
    std::fs::write(&p.0, b"tiny").unwrap();
    assert!(matches!(Shm::attach(&p.0), Err(Error::Truncated { len: 4, .. })));
}

#[test]
fn corrupt_slot_in_file_rejected_counted_and_flow_continues() {
    let p = TempPath::new("corrupt");
    let dp = Shm::create(&p.0, 8, 8).unwrap();
    let sig = Shm::attach(&p.0).unwrap();
    let (mut crx, _etx) = dp.datapath_end().unwrap();
    let (mut ctx, _erx) = sig.signaling_end().unwrap();
    ctx.try_send(&Command::Delete(SessionId(1))).unwrap();
    ctx.try_send(&Command::Delete(SessionId(2))).unwrap();
    // Flip one body byte of slot 0 of the commands ring, behind the ring's back.
    let slot0 = (HEADER_REGION + CONTROL_SIZE) as u64;
    patch(&p.0, slot0 + 16, &[0xee]);
    assert!(matches!(crx.try_recv(), Some(Err(DecodeError::Checksum { .. }))));
    assert_eq!(crx.rejected(), 1);
    assert_eq!(crx.try_recv(), Some(Ok(Command::Delete(SessionId(2)))));
    ctx.try_send(&Command::Delete(SessionId(3))).unwrap();
    assert_eq!(crx.try_recv(), Some(Ok(Command::Delete(SessionId(3)))));
    assert_eq!(crx.rejected(), 1);
}

#[test]
fn second_signaling_refused_in_process() {
    let p = TempPath::new("second");
    let _dp = Shm::create(&p.0, 8, 8).unwrap();
    let first = Shm::attach(&p.0).unwrap();
    let e = Shm::attach(&p.0).unwrap_err();
    assert!(matches!(e, Error::RoleTaken { role: "signaling", .. }), "{e}");
    // Dropping the first handle releases the role.
    drop(first);
    Shm::attach(&p.0).unwrap();
}

#[test]
fn second_datapath_refused_and_stale_file_replaced() {
    let p = TempPath::new("dp");
    let dp = Shm::create(&p.0, 8, 8).unwrap();
    let sig = Shm::attach(&p.0).unwrap();
    // Our own process recreating counts as a restart (same pid and start time cannot be a second
    // live datapath of another process); a live *other* datapath is covered by the child tests.
    drop(dp);
    // Datapath gone (role released): signaling notices, attach refuses.
    assert!(sig.is_stale());
    assert!(matches!(Shm::attach(&p.0), Err(Error::DatapathNotRunning { .. })));
    // A new datapath replaces the file: new inode, fresh rings.
    let _dp2 = Shm::create(&p.0, 16, 16).unwrap();
    assert!(sig.is_stale());
    drop(sig);
    assert_eq!(Shm::attach(&p.0).unwrap().commands_capacity(), 16);
}

// ------------------------------------------------------------------------------------------
// Cross-process tests. The child is this test binary, re-executed with `--exact child_entry`.

fn spawn_child(mode: &str, path: &Path, count: u64) -> Child {
    Proc::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .env(CHILD_PATH, path)
        .env(CHILD_COUNT, count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout until a line starting with `READY`.
fn wait_ready(child: &mut Child) {
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("READY ") {
            // Keep draining in the background so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return;
        }
    }
    panic!("child exited before READY: {:?}", child.wait());
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Not a test of its own: the body of the child process (does nothing in a normal run).
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(CHILD_PATH).unwrap());
    let count: u64 = std::env::var(CHILD_COUNT).unwrap().parse().unwrap();
    let shm = Shm::attach(&path).unwrap();
    let (mut tx, _rx) = shm.signaling_end().unwrap();
    println!("READY {}", std::process::id());
    std::io::stdout().flush().unwrap();
    match mode.as_str() {
        "produce" => {
            // Sequence numbers ride in the session id (1-based, never 0).
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut batch = Vec::with_capacity(64);
            let mut next = 1u64;
            while next <= count {
                batch.clear();
                batch.extend((next..=count).take(64).map(|i| Command::Delete(SessionId(i))));
                let mut off = 0;
                while off < batch.len() {
                    let n = tx.send_batch(&batch[off..]);
                    off += n;
                    if n == 0 {
                        assert!(Instant::now() < deadline, "child: consumer stalled");
                        std::thread::yield_now(); // the machine may be oversubscribed
                    }
                }
                next += batch.len() as u64;
            }
        }
        "hold" => {
            for i in 1..=count {
                tx.try_send(&Command::Delete(SessionId(i))).unwrap();
            }
            // Wait until the parent closes our stdin, then die without releasing the role
            // (process::exit runs no destructors): a crashed signaling process.
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
            std::process::exit(0);
        }
        m => panic!("unknown child mode {m}"),
    }
}

#[test]
fn takeover_after_signaling_dies() {
    let p = TempPath::new("takeover");
    let dp = Shm::create(&p.0, 16, 16).unwrap();
    let (mut crx, _etx) = dp.datapath_end().unwrap();
    let mut child = spawn_child("hold", &p.0, 3);
    wait_ready(&mut child);
    // While the child lives, a second signaling is refused, naming the child's pid.
    match Shm::attach(&p.0) {
        Err(Error::RoleTaken { role: "signaling", pid, .. }) => assert_eq!(pid as u32, child.id()),
        other => panic!("expected RoleTaken, got {other:?}"),
    }
    drop(child.stdin.take()); // let it die
    assert!(wait_with_timeout(&mut child, Duration::from_secs(30)).success());
    // Dead (and reaped): the role is taken over, the ring continues where the child left it.
    let sig = Shm::attach(&p.0).unwrap();
    assert_eq!(sig.signaling_pid(), Some(std::process::id() as i32));
    let (mut ctx, _erx) = sig.signaling_end().unwrap();
    ctx.try_send(&Command::Dump { token: 4 }).unwrap();
    let mut got = Vec::new();
    crx.recv_batch(10, |r| got.push(r.unwrap()));
    assert_eq!(
        got,
        vec![
            Command::Delete(SessionId(1)),
            Command::Delete(SessionId(2)),
            Command::Delete(SessionId(3)),
            Command::Dump { token: 4 }
        ]
    );
    assert_eq!(crx.rejected(), 0);
}

/// ≥ 10,000,000 messages from a child process, none lost, none reordered, none rejected.
#[test]
fn two_processes_ten_million_in_order() {
    let n: u64 = std::env::var("XTRUNK_RING_TEST_MESSAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let p = TempPath::new("tenmillion");
    let dp = Shm::create(&p.0, 1024, 16).unwrap();
    let (mut crx, _etx) = dp.datapath_end().unwrap();
    let start = Instant::now();
    let mut child = spawn_child("produce", &p.0, n);
    let deadline = start + Duration::from_secs(120);
    let mut expect = 1u64;
    let mut bad = None;
    while expect <= n {
        let got = crx.recv_batch(256, |r| match r {
            Ok(Command::Delete(SessionId(i))) if i == expect => expect += 1,
            other => {
                bad.get_or_insert(format!("at {expect}: {other:?}"));
                expect += 1;
            }
        });
        if got == 0 {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("timed out after {:?} at message {expect} of {n}", start.elapsed());
            }
            if let Some(status) = child.try_wait().unwrap() {
                // Drain what is left, then stop if the child died early.
                if crx.is_empty() {
                    panic!("child exited ({status}) after {} of {n} messages", expect - 1);
                }
            }
            std::thread::yield_now(); // the machine may be oversubscribed
        }
    }
    assert_eq!(bad, None);
    assert_eq!(crx.rejected(), 0);
    assert_eq!(crx.try_recv(), None);
    assert!(wait_with_timeout(&mut child, Duration::from_secs(30)).success());
    eprintln!("two_processes: {n} messages in {:?}", start.elapsed());
}

#[test]
fn decode_error_is_counted_not_trusted_via_wire() {
    // Reference for readers: a slot stamped for another position is a Sequence error.
    let s = wire::encode_command(&Command::Delete(SessionId(1)), 7);
    assert_eq!(wire::check_seq(&s, 8), Err(DecodeError::Sequence { expected: 8, got: 7 }));
}

#[test]
fn created_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let p = TempPath::new("mode");
    let _dp = Shm::create(&p.0, 8, 8).unwrap();
    let md = std::fs::symlink_metadata(&p.0).unwrap();
    assert!(md.file_type().is_file());
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
}

#[test]
fn planted_symlink_refused_and_its_target_untouched() {
    let p = TempPath::new("symlink");
    let victim = TempPath::new("symlink-victim");
    std::fs::write(&victim.0, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim.0, &p.0).unwrap();
    let e = Shm::create(&p.0, 8, 8).unwrap_err();
    assert!(matches!(e, Error::NotOurs { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&*p.0.to_string_lossy()) && msg.contains("symbolic link"), "{msg}");
    let e = Shm::attach(&p.0).unwrap_err();
    assert!(matches!(e, Error::NotOurs { .. }), "{e}");
    assert_eq!(std::fs::read(&victim.0).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&p.0).unwrap().file_type().is_symlink(), "the link itself is left alone");
    // A directory is refused too.
    let d = TempPath::new("dir");
    std::fs::create_dir(&d.0).unwrap();
    assert!(matches!(Shm::create(&d.0, 8, 8), Err(Error::NotOurs { .. })));
    std::fs::remove_dir(&d.0).unwrap();
}

#[test]
fn stale_temporary_symlink_is_removed_not_followed() {
    let p = TempPath::new("staletmp");
    let victim = TempPath::new("staletmp-victim");
    std::fs::write(&victim.0, b"precious").unwrap();
    let tmp = PathBuf::from(format!("{}.tmp.{}", p.0.display(), std::process::id()));
    std::os::unix::fs::symlink(&victim.0, &tmp).unwrap();
    let _dp = Shm::create(&p.0, 8, 8).unwrap();
    assert_eq!(std::fs::read(&victim.0).unwrap(), b"precious");
    assert!(!tmp.exists());
}

#[test]
fn verify_reports_a_deleted_replaced_or_corrupt_file() {
    let p = TempPath::new("verify");
    let dp = Shm::create(&p.0, 8, 8).unwrap();
    dp.verify().unwrap();
    patch(&p.0, 0, b"XXXX");
    assert!(matches!(dp.verify(), Err(Error::BadMagic { .. })));
    std::fs::remove_file(&p.0).unwrap();
    assert!(matches!(dp.verify(), Err(Error::NotFound { .. })));
    std::fs::write(&p.0, b"other").unwrap();
    assert!(matches!(dp.verify(), Err(Error::Replaced { .. })));
}
