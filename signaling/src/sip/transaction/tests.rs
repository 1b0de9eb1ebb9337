//! Transaction machines on simulated time.
use super::*;
use crate::sip::msg::parse;
use crate::transport::Transport;

fn timers() -> Timers {
    Timers { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
}

fn request(method: Method, branch: &str) -> Message {
    let mut m = Message::request(method.clone(), "sip:bob@127.0.0.2");
    m.push(HName::Via, format!("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{branch}"))
        .push(HName::From, "<sip:a@x>;tag=1")
        .push(HName::To, "<sip:b@y>")
        .push(HName::CallId, "c1")
        .push(HName::CSeq, format!("1 {method}"))
        .push(HName::MaxForwards, "70");
    m
}

fn resp(req: &Message, code: u16) -> Message {
    let mut r = Message {
        start: crate::sip::msg::StartLine::Response { code, reason: "X".into() },
        headers: vec![],
        body: vec![],
    };
    for n in [HName::Via, HName::From, HName::CallId, HName::CSeq] {
        r.push(n.clone(), req.header(&n).unwrap());
    }
    r.push(HName::To, "<sip:b@y>;tag=2");
    r
}

/// Client and server on simulated time; every `k`-th message in either direction is lost.
/// The server answers `finals` (e.g. 180 then 486). Returns (finals the client TU saw,
/// messages sent, time until both tables are empty).
fn run(method: Method, answers: &[u16], k: usize, ack_2xx: bool) -> (Vec<u16>, usize, Duration, Vec<TxEvent>) {
    let t0 = Instant::now();
    let mut now = t0;
    let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let b: SocketAddr = "127.0.0.2:5060".parse().unwrap();
    let mut c = Transactions::new(timers(), Limits::default());
    let mut s = Transactions::new(timers(), Limits::default());
    c.send_request(
        now,
        request(method, "x1"),
        Dest { transport: Transport::Udp, local: a, remote: b },
        Owner::Call(CallKey(1), Purpose::Invite),
    );
    let mut sent = 0;
    let mut seen = Vec::new();
    let mut sevents = Vec::new();
    let mut done_at = None;
    let mut inv_key: Option<TxKey> = None;
    while now < t0 + Duration::from_secs(120) {
        while let Some(t) = c.poll_transmit() {
            sent += 1;
            if sent % k == 0 {
                continue;
            }
            let m = parse(&t.data).unwrap();
            match s.on_request(now, &m, Dest { transport: Transport::Udp, local: b, remote: a }, false) {
                Incoming::New(key) => {
                    inv_key = Some(key.clone());
                    for code in answers {
                        s.respond(now, &key, &resp(&m, *code));
                    }
                    s.set_owner(&key, Owner::Call(CallKey(9), Purpose::Answer2xx));
                }
                Incoming::Ack => {
                    // ACK for 2xx: the TU stops the 2xx retransmissions.
                    if let (true, Some(key)) = (ack_2xx, &inv_key) {
                        s.ack_2xx(now, key);
                    }
                }
                Incoming::Absorbed => {}
                Incoming::Refused(o) => panic!("refused: {o:?}"),
            }
        }
        while let Some(t) = s.poll_transmit() {
            sent += 1;
            if sent % k == 0 {
                continue;
            }
            c.on_response(now, parse(&t.data).unwrap());
        }
        while let Some(ev) = c.poll_event() {
            match ev {
                TxEvent::Response { msg, key, .. } => {
                    let code = msg.code().unwrap();
                    seen.push(code);
                    if (200..300).contains(&code) && msg.cseq().unwrap().method == Method::Invite {
                        // The TU ACKs every 2xx (end-to-end ACK, new branch).
                        let inv = c.client_request(&key).unwrap().clone();
                        let mut ack = build_ack(&inv, &msg);
                        ack.set(HName::Via, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack");
                        c.out.push_back(Transmit {
                            dest: Dest { transport: Transport::Udp, local: a, remote: b },
                            data: ack.to_bytes(),
                        });
                    }
                }
                e => seen.push(if matches!(e, TxEvent::Timeout { .. }) { 408 } else { 0 }),
            }
        }
        while let Some(ev) = s.poll_event() {
            sevents.push(ev);
        }
        if c.len() == (0, 0) && s.len() == (0, 0) && done_at.is_none() {
            done_at = Some(now - t0);
            break;
        }
        now += Duration::from_millis(10);
        c.on_timeout(now);
        s.on_timeout(now);
    }
    (seen, sent, done_at.unwrap_or(Duration::MAX), sevents)
}

#[test]
fn invite_non2xx_lossless() {
    let (seen, _, done, _) = run(Method::Invite, &[180, 486], 1_000_000, true);
    assert_eq!(seen, vec![180, 486]);
    // Timer D (32 s) on the client, timer I (T4) on the server.
    assert!(done >= Duration::from_secs(32) && done < Duration::from_secs(34), "{done:?}");
}

#[test]
fn invite_non2xx_lossy() {
    for k in [2, 3, 4, 5, 7] {
        let (seen, _, done, _) = run(Method::Invite, &[180, 486], k, true);
        assert_eq!(seen.iter().filter(|c| **c == 486).count(), 1, "k={k}: {seen:?}");
        assert!(!seen.contains(&408), "k={k}: {seen:?}");
        assert!(done < Duration::from_secs(60), "k={k}");
    }
}

#[test]
fn non_invite_lossy_and_timeout() {
    // (k = 2 would lose every response: requests and responses strictly alternate.)
    for k in [3, 4, 5, 7] {
        let (seen, _, _, _) = run(Method::Options, &[200], k, true);
        assert_eq!(seen, vec![200], "k={k}");
    }
    // Everything lost: timer F → timeout after 64·T1.
    let (seen, _, done, _) = run(Method::Options, &[200], 1, true);
    assert_eq!(seen, vec![408]);
    assert!(done >= Duration::from_secs(32) && done < Duration::from_secs(33));
}

#[test]
fn invite_2xx_retransmitted_until_ack() {
    for k in [3, 4, 5, 7, 1_000_000] {
        let (seen, _, _, sev) = run(Method::Invite, &[180, 200], k, true);
        assert!(seen.contains(&200), "k={k}: {seen:?}");
        assert!(sev.is_empty(), "k={k}: no ACK timeout expected: {sev:?}");
    }
    // The TU never sees the ACK: 2xx retransmitted, then AckTimeout after 64·T1.
    let (_, sent, _, sev) = run(Method::Invite, &[200], 1_000_000, false);
    assert!(
        matches!(sev.as_slice(), [TxEvent::AckTimeout { owner: Owner::Call(CallKey(9), Purpose::Answer2xx) }]),
        "{sev:?}"
    );
    assert!(sent > 8, "2xx retransmissions expected, {sent} messages");
}

#[test]
fn server_match_is_branch_sent_by_method_and_source() {
    let mut t = Transactions::new(timers(), Limits::default());
    let now = Instant::now();
    let at = |remote: &str| Dest {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: remote.parse().unwrap(),
    };
    let a = request(Method::Options, "shared");
    assert!(matches!(t.on_request(now, &a, at("127.0.0.1:5060"), false), Incoming::New(_)));
    // The same branch from another client (another sent-by): a transaction of its own (§17.2.3).
    let mut b = a.clone();
    b.set(HName::Via, "SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKshared");
    assert!(matches!(t.on_request(now, &b, at("10.0.0.9:5070"), false), Incoming::New(_)));
    // A copy of the first client's Via from a third address is not its retransmission.
    assert!(matches!(t.on_request(now, &a, at("198.51.100.7:5060"), false), Incoming::New(_)));
    // The real retransmission is absorbed; sent-by compares case-insensitively, 5060 = no port.
    assert_eq!(t.on_request(now, &a, at("127.0.0.1:5060"), false), Incoming::Absorbed);
    let mut c = request(Method::Options, "p");
    c.set(HName::Via, "SIP/2.0/UDP Host.Example;branch=z9hG4bKp");
    let first = t.on_request(now, &c, at("10.0.0.1:5060"), false);
    c.set(HName::Via, "SIP/2.0/UDP host.example:5060;branch=z9hG4bKp");
    assert!(matches!(first, Incoming::New(_)));
    assert_eq!(t.on_request(now, &c, at("10.0.0.1:5060"), false), Incoming::Absorbed);
    assert_eq!(t.len().0, 4);
}

#[test]
fn server_table_is_bounded_per_source_in_total_and_in_bytes() {
    // Outsiders together may hold a quarter of the total: 3.
    let limits = Limits { total: 12, per_source: 3, bytes: 4096 };
    let mut t = Transactions::new(timers(), limits);
    let now = Instant::now();
    let from = |ip: &str| Dest {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: format!("{ip}:5060").parse().unwrap(),
    };
    let opt = |b: &str| request(Method::Options, b);
    for i in 0..3 {
        assert!(matches!(t.on_request(now, &opt(&format!("a{i}")), from("10.0.0.1"), false), Incoming::New(_)));
    }
    assert_eq!(t.on_request(now, &opt("a3"), from("10.0.0.1"), false), Incoming::Refused(Overload::Source));
    assert_eq!(t.on_request(now, &opt("d"), from("10.0.0.2"), false), Incoming::Refused(Overload::Source));
    // A trunk's address is bound by the total only.
    for i in 0..9 {
        assert!(matches!(t.on_request(now, &opt(&format!("b{i}")), from("10.0.1.1"), true), Incoming::New(_)));
    }
    assert_eq!(t.on_request(now, &opt("c"), from("10.0.1.1"), true), Incoming::Refused(Overload::Total));
    assert_eq!(t.len().0, 12);
    // A response too big for the byte budget is sent and not kept (the transaction ends).
    let big = opt("a0");
    let k = server_key(&big, &Method::Options, "10.0.0.1".parse().unwrap()).unwrap();
    let mut r = resp(&big, 200);
    r.body = vec![b'x'; 8192];
    t.respond(now, &k, &r);
    assert!(t.poll_transmit().is_some());
    assert_eq!(t.len().0, 11);
    // Answered transactions age out, and the per-source counts go with them.
    for b in ["a1", "a2"] {
        let k = server_key(&opt(b), &Method::Options, "10.0.0.1".parse().unwrap()).unwrap();
        t.respond(now, &k, &resp(&opt(b), 200));
    }
    t.on_timeout(now + Duration::from_secs(64));
    assert_eq!(t.len().0, 9, "the trunk's unanswered ones wait for the TU");
    assert_eq!(t.server_footprint().1, 0, "no outsider holds anything");
    assert!(matches!(t.on_request(now, &opt("a9"), from("10.0.0.1"), false), Incoming::New(_)));
}

#[test]
fn a_stateless_final_keeps_no_transaction_and_its_ack_goes_to_the_tu() {
    let now = Instant::now();
    let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let b: SocketAddr = "127.0.0.2:5060".parse().unwrap();
    let dest = Dest { transport: Transport::Udp, local: b, remote: a };
    let mut s = Transactions::new(timers(), Limits::default());
    let inv = request(Method::Invite, "ch1");
    let Incoming::New(k) = s.on_request(now, &inv, dest, true) else { panic!("new") };
    s.respond_stateless(&k, &resp(&inv, 407));
    assert!(s.poll_transmit().is_some_and(|t| t.data.starts_with(b"SIP/2.0 407")));
    assert_eq!(s.len().0, 0, "no server transaction kept");
    assert_eq!(s.poll_timeout(), None, "no timer armed");
    let mut ack = request(Method::Ack, "ch1");
    ack.headers.retain(|h| h.name != HName::CSeq);
    ack.push(HName::CSeq, "1 ACK");
    assert_eq!(s.on_request(now, &ack, dest, true), Incoming::Ack);
    // A retransmitted INVITE is a new request (challenged afresh by the TU).
    assert!(matches!(s.on_request(now, &inv, dest, true), Incoming::New(_)));
}
