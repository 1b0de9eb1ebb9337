//! The socket backend out of file descriptors (its own test binary: it lowers this process's
//! `RLIMIT_NOFILE` for good). A session takes one socket per port; once the limit is reached a
//! Create is refused with `CapacityExhausted` naming the port (the log names the limit), the
//! sessions already made keep working, and a Delete frees descriptors for the next Create.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use xtrunk_datapath::socket::{self, SocketOptions, Stats};
use xtrunk_ring::msg::{Command, ErrorCode, Event, LatchPolicy, LegCrypto, LegSpec, PtMap, SessionId, SessionSpec};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const BASE: u16 = 23400;
const LIMIT: u64 = 96;

fn spec(i: u16) -> SessionSpec {
    let leg = |port: u16| LegSpec {
        local: SocketAddr::new(LO, port),
        remote: Some(SocketAddr::new(LO, 9)),
        remote_rtcp_port: 0,
        rtcp_mux: false,
        latch: LatchPolicy::Strict,
        signal_ip: None,
        pt_map: PtMap::new(),
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    };
    SessionSpec {
        id: SessionId(u64::from(i) + 1),
        legs: [leg(BASE + 4 * i), leg(BASE + 4 * i + 2)],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    }
}

#[test]
fn sessions_past_the_descriptor_limit_are_refused_as_capacity_exhausted() {
    let lim = libc::rlimit { rlim_cur: LIMIT, rlim_max: LIMIT };
    // SAFETY: setrlimit with a valid struct; lowering the limits needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let (cmd, cmd_rx) = mpsc::channel::<Command>();
    let (ev_tx, ev) = mpsc::channel::<Event>();
    let stop = Arc::new(AtomicBool::new(false));
    let opts =
        SocketOptions { bind_ip: LO, port_min: BASE, port_max: BASE + 399, cores: vec![], max_sessions: 100, batch: 8 };
    let st = stop.clone();
    let join = std::thread::spawn(move || socket::run_with_stats(opts, cmd_rx, ev_tx, st, Arc::new(Stats::default())));
    let (mut created, mut refused) = (0u16, None);
    for i in 0..40u16 {
        cmd.send(Command::Create(spec(i))).unwrap();
        match ev.recv_timeout(Duration::from_secs(5)).expect("an answer") {
            Event::Created(_) => created += 1,
            Event::Error { id, code, port } => {
                refused = Some((id, code, port));
                break;
            }
            e => panic!("unexpected {e:?}"),
        }
    }
    let (id, code, port) = refused.expect("the limit must be reached");
    assert_eq!(code, ErrorCode::CapacityExhausted);
    assert_eq!(id, SessionId(u64::from(created) + 1));
    assert!((BASE + 4 * created..BASE + 4 * created + 4).contains(&port), "port {port}");
    assert!(created >= 10 && u64::from(created) * 4 <= LIMIT, "{created} sessions at a limit of {LIMIT}");
    // A Delete gives its sockets back: the refused session fits now.
    cmd.send(Command::Delete(SessionId(1))).unwrap();
    assert!(matches!(ev.recv_timeout(Duration::from_secs(5)), Ok(Event::Deleted { id: SessionId(1), .. })));
    cmd.send(Command::Create(spec(created))).unwrap();
    assert_eq!(ev.recv_timeout(Duration::from_secs(5)), Ok(Event::Created(SessionId(u64::from(created) + 1))));
    stop.store(true, Ordering::Relaxed);
    join.join().unwrap().unwrap();
}
