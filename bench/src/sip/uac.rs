//! `--uac native`: the bench's own caller, one thread and one UDP socket, paced like SIPp's
//! `-r`: INVITE (SDP offer) → 100/180 → 200 → ACK → BYE → 200, a call at a time per Call-ID,
//! RFC 3261 retransmissions (Timer A/E from T1 = 500 ms doubling to T2 = 4 s, given up after
//! 64·T1 = 32 s), every final answer counted by its code.
//!
//! Behind a `407` it sends the ACK and the INVITE again with `Proxy-Authorization` (the
//! signaling crate's digest client, RFC 7616 §3.4). Nonces are used as `--digest-nonce` says:
//! `per-call` answers every call's own challenge (what SIPp does: 3 messages more a call);
//! `reuse` keeps the last nonce and sends the next calls' INVITEs with credentials up front and
//! `nc` + 1 each (RFC 7616 §3.4.5, what a PJSIP or re-based PBX does), so a call is challenged
//! only when the nonce goes stale.
//!
//! Messages from the sidecar are parsed with the signaling crate's parser (fuzzed there).

use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use xtrunk_signaling::auth::client::{self, Creds, Offer};
use xtrunk_signaling::sip::msg::{parse, HName, Message, Method};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// A transaction's life (64·T1) and the longest a call may take from its first INVITE.
const GIVE_UP: Duration = Duration::from_secs(32);

/// How nonces are used behind a challenge.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NonceUse {
    /// Every call answers its own 407 (INVITE, 407, ACK, INVITE with credentials).
    PerCall,
    /// The last nonce is reused with `nc` + 1: calls are challenged only when it goes stale.
    Reuse,
}

/// One run of the caller.
pub(crate) struct Plan {
    pub target: SocketAddr,
    pub rate: u32,
    pub calls: u64,
    /// The most calls in progress at once (SIPp's `-l`).
    pub limit: usize,
    /// Digest user name and password, and how nonces are used; None: no credentials.
    pub digest: Option<(String, String, NonceUse)>,
    /// Called number (SIPp's `-s`) and caller number.
    pub service: String,
    pub caller: String,
}

/// What one run gave.
pub(crate) struct Outcome {
    pub successful: u64,
    pub failed: u64,
    /// Final answers other than 200 and a handled 407, by code; 0 = gave up (no answer).
    pub failures: BTreeMap<u16, u64>,
    /// 407s received.
    pub challenges: u64,
    /// INVITE sent → 200 received, µs.
    pub setup: hdrhistogram::Histogram<u64>,
    /// CPU seconds of this thread over the run.
    pub cpu_secs: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Inviting,
    Bye,
}

struct Call {
    st: St,
    started: Instant,
    cseq: u32,
    branch: u32,
    /// The request retransmitted until answered, and when the current transaction began.
    req: Vec<u8>,
    tx_started: Instant,
    retx: Duration,
    /// Timer generation: stale heap entries are skipped.
    gen: u32,
    /// A provisional answer stopped INVITE retransmissions.
    proceeding: bool,
    challenged: u8,
    to_tag: String,
    /// The ACK of the 200, sent again for each retransmitted 200.
    ack: Vec<u8>,
}

struct Uac<'a> {
    plan: &'a Plan,
    sock: UdpSocket,
    local: SocketAddr,
    run: u32,
    calls: Vec<Option<Call>>,
    active: usize,
    timers: BinaryHeap<std::cmp::Reverse<(Instant, usize, u32)>>,
    nonce: Option<(Offer, u32)>,
    out: Outcome,
}

/// Runs `plan` to the end: every call answered, failed or given up.
pub(crate) fn run(plan: &Plan) -> anyhow::Result<Outcome> {
    let sock = UdpSocket::bind("127.0.0.1:0").context("binding the native UAC's socket")?;
    sock.set_read_timeout(Some(Duration::from_micros(500)))?;
    let local = sock.local_addr()?;
    let cpu0 = thread_cpu();
    let n = usize::try_from(plan.calls).context("--rates × seconds: too many calls")?;
    let mut u = Uac {
        plan,
        sock,
        local,
        run: std::process::id() ^ (local.port() as u32) << 16,
        calls: Vec::with_capacity(n),
        active: 0,
        timers: BinaryHeap::new(),
        nonce: None,
        out: Outcome {
            successful: 0,
            failed: 0,
            failures: BTreeMap::new(),
            challenges: 0,
            setup: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)?,
            cpu_secs: 0.0,
        },
    };
    let t0 = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / f64::from(plan.rate.max(1)));
    let mut buf = vec![0u8; 65_536];
    while u.calls.len() < n || u.active > 0 {
        let now = Instant::now();
        while u.calls.len() < n && u.active < plan.limit && t0 + gap * (u.calls.len() as u32) <= now {
            u.start(now);
        }
        u.fire(now);
        match u.sock.recv_from(&mut buf) {
            Ok((len, _)) => {
                if let Ok(m) = parse(&buf[..len]) {
                    u.handle(&m, Instant::now());
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e).context("native UAC receive"),
        }
    }
    u.out.cpu_secs = thread_cpu() - cpu0;
    Ok(u.out)
}

/// This thread's CPU seconds (user + system).
fn thread_cpu() -> f64 {
    super::cpu_secs(std::path::Path::new("/proc/thread-self/stat")).unwrap_or(0.0)
}

impl Uac<'_> {
    fn uri(&self) -> String {
        format!("sip:{}@{}", self.plan.service, self.plan.target)
    }

    fn start(&mut self, now: Instant) {
        let idx = self.calls.len();
        self.calls.push(Some(Call {
            st: St::Inviting,
            started: now,
            cseq: 1,
            branch: 0,
            req: Vec::new(),
            tx_started: now,
            retx: T1,
            gen: 0,
            proceeding: false,
            challenged: 0,
            to_tag: String::new(),
            ack: Vec::new(),
        }));
        self.active += 1;
        let creds = match (&self.plan.digest, self.nonce.as_mut()) {
            (Some((_, _, NonceUse::Reuse)), Some((offer, nc))) => {
                *nc += 1;
                Some((offer.clone(), *nc))
            }
            _ => None,
        };
        self.invite(idx, creds, now);
    }

    /// Sends the call's INVITE (CSeq and branch as they stand), with credentials if given.
    fn invite(&mut self, idx: usize, creds: Option<(Offer, u32)>, now: Instant) {
        let (local, uri) = (self.local, self.uri());
        let party = Party { local, run: self.run, caller: &self.plan.caller, to: &uri };
        let auth = creds.and_then(|(offer, nc)| {
            let (user, pass, _) = self.plan.digest.as_ref()?;
            let who = Creds { username: user, password: pass };
            Some(client::answer(&offer, who, ("INVITE", &uri), nc, &format!("{idx:x}{nc:x}")))
        });
        let Some(c) = self.calls[idx].as_mut() else { return };
        let sdp = format!(
            "v=0\r\no=bench {idx} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8 0 101\r\n\
             a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n",
            ip = local.ip(),
            port = 6000 + (idx % 1000) * 2,
        );
        let mut m = head(party, ("INVITE", &uri), (idx, c.branch), &c.to_tag, (c.cseq, "INVITE"));
        let _ = write!(m, "Contact: <sip:bench@{local}>\r\nContent-Type: application/sdp\r\n");
        if let Some(a) = auth {
            let _ = write!(m, "Proxy-Authorization: {a}\r\n");
        }
        let _ = write!(m, "Content-Length: {}\r\n\r\n{sdp}", sdp.len());
        c.req = m.into_bytes();
        c.proceeding = false;
        self.transmit(idx, now);
    }

    /// Sends the call's current request and arms its retransmission.
    fn transmit(&mut self, idx: usize, now: Instant) {
        let Some(c) = self.calls[idx].as_mut() else { return };
        c.tx_started = now;
        c.retx = T1;
        c.gen += 1;
        let _ = self.sock.send_to(&c.req, self.plan.target);
        self.timers.push(std::cmp::Reverse((now + T1, idx, c.gen)));
    }

    fn fire(&mut self, now: Instant) {
        while let Some(std::cmp::Reverse((at, idx, gen))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.calls[idx].as_mut().filter(|c| c.gen == gen) else { continue };
            if now.duration_since(c.tx_started) >= GIVE_UP || now.duration_since(c.started) >= GIVE_UP {
                self.finish(idx, Some(0));
                continue;
            }
            if !(c.st == St::Inviting && c.proceeding) {
                let _ = self.sock.send_to(&c.req, self.plan.target);
            }
            c.retx = if c.st == St::Inviting { c.retx * 2 } else { (c.retx * 2).min(T2) };
            self.timers.push(std::cmp::Reverse((now + c.retx, idx, gen)));
        }
    }

    /// The call is over: `failure` None = answered and hung up; Some(code) = failed with it.
    fn finish(&mut self, idx: usize, failure: Option<u16>) {
        if self.calls[idx].take().is_none() {
            return;
        }
        self.active -= 1;
        match failure {
            None => self.out.successful += 1,
            Some(code) => {
                self.out.failed += 1;
                *self.out.failures.entry(code).or_default() += 1;
            }
        }
    }

    fn handle(&mut self, m: &Message, now: Instant) {
        let idx = m.call_id().and_then(|id| id.split('-').next()).and_then(|n| n.parse::<usize>().ok());
        if m.code().is_none() {
            // A request from the sidecar (BYE of a call it ended, OPTIONS): 200, and a BYE ends
            // the call as failed.
            let _ = self.sock.send_to(&ok_to(m), self.plan.target);
            if m.method() == Some(&Method::Bye) {
                if let Some(i) = idx.filter(|&i| i < self.calls.len()) {
                    self.finish(i, Some(1));
                }
            }
            return;
        }
        let (Some(idx), Some(code), Some(cseq)) = (idx, m.code(), m.cseq()) else { return };
        let Some(c) = self.calls.get_mut(idx).and_then(Option::as_mut) else { return };
        match (c.st, &cseq.method) {
            (St::Inviting, Method::Invite) if cseq.seq == c.cseq => {
                if code < 200 {
                    c.proceeding = true;
                    return;
                }
                c.to_tag = m.to_tag().unwrap_or_default().to_owned();
                if code >= 300 {
                    let ack = self.ack(idx, &self.uri());
                    let _ = self.sock.send_to(&ack, self.plan.target);
                    if code == 407 {
                        self.out.challenges += 1;
                    }
                    if code == 407 && self.retry_auth(idx, m, now) {
                        return;
                    }
                    self.finish(idx, Some(code));
                    return;
                }
                self.answered(idx, m, now);
            }
            (St::Bye, Method::Invite) if code == 200 => {
                // Our ACK was lost: the 200 is retransmitted.
                let _ = self.sock.send_to(&c.ack, self.plan.target);
            }
            (St::Bye, Method::Bye) if code >= 200 => self.finish(idx, (code != 200).then_some(code)),
            _ => {}
        }
    }

    /// Behind a 407: the INVITE again with credentials (once, or twice when the second
    /// challenge says stale). False: give up.
    fn retry_auth(&mut self, idx: usize, m: &Message, now: Instant) -> bool {
        let Some((_, offer)) = client::pick(m) else { return false };
        let Some(c) = self.calls[idx].as_mut() else { return false };
        if self.plan.digest.is_none() || c.challenged >= 2 || (c.challenged == 1 && !offer.stale) {
            return false;
        }
        c.challenged += 1;
        c.cseq += 1;
        c.branch += 1;
        c.to_tag.clear();
        let nc = 1;
        self.nonce = Some((offer.clone(), nc));
        self.invite(idx, Some((offer, nc)), now);
        true
    }

    fn answered(&mut self, idx: usize, m: &Message, now: Instant) {
        let remote = m
            .header(&HName::Contact)
            .and_then(|v| Some(v[v.find('<')? + 1..v.find('>')?].to_owned()))
            .unwrap_or_else(|| self.uri());
        let Some(c) = self.calls[idx].as_mut() else { return };
        let _ = self.out.setup.record(now.duration_since(c.started).as_micros().max(1) as u64);
        c.branch += 1;
        let ack = self.ack(idx, &remote);
        let _ = self.sock.send_to(&ack, self.plan.target);
        let to = self.uri();
        let party = Party { local: self.local, run: self.run, caller: &self.plan.caller, to: &to };
        let Some(c) = self.calls[idx].as_mut() else { return };
        c.ack = ack;
        c.st = St::Bye;
        c.cseq += 1;
        c.branch += 1;
        let mut bye = head(party, ("BYE", &remote), (idx, c.branch), &c.to_tag, (c.cseq, "BYE"));
        bye.push_str("Content-Length: 0\r\n\r\n");
        c.req = bye.into_bytes();
        self.transmit(idx, now);
    }

    /// The ACK of the call's current INVITE (same branch for a non-2xx, the next for a 2xx:
    /// the caller bumps `branch` first).
    fn ack(&self, idx: usize, uri: &str) -> Vec<u8> {
        let Some(c) = self.calls[idx].as_ref() else { return Vec::new() };
        let to = self.uri();
        let party = Party { local: self.local, run: self.run, caller: &self.plan.caller, to: &to };
        let mut m = head(party, ("ACK", uri), (idx, c.branch), &c.to_tag, (c.cseq, "ACK"));
        m.push_str("Content-Length: 0\r\n\r\n");
        m.into_bytes()
    }
}

/// Who is calling whom: the parts of every request of a call that do not change.
#[derive(Clone, Copy)]
struct Party<'a> {
    local: SocketAddr,
    run: u32,
    caller: &'a str,
    /// The To URI (the called number at the target).
    to: &'a str,
}

/// Request line and the dialog's headers, up to the headers that differ per method.
fn head(
    p: Party<'_>,
    (method, uri): (&str, &str),
    (idx, branch): (usize, u32),
    to_tag: &str,
    (seq, cseq_method): (u32, &str),
) -> String {
    let (local, run) = (p.local, p.run);
    let mut m = String::with_capacity(1024);
    let _ = write!(
        m,
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{run:x}.{idx}.{branch};rport\r\n\
         From: <sip:{caller}@{ip}>;tag={run:x}.{idx}\r\nTo: <{to}>",
        caller = p.caller,
        to = p.to,
        ip = local.ip()
    );
    if !to_tag.is_empty() {
        let _ = write!(m, ";tag={to_tag}");
    }
    let _ = write!(m, "\r\nCall-ID: {idx}-{run:x}@xtrunk-bench\r\nCSeq: {seq} {cseq_method}\r\nMax-Forwards: 70\r\n");
    m
}

/// `200 OK` to a request: its Via, From, To, Call-ID and CSeq back.
fn ok_to(m: &Message) -> Vec<u8> {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for n in [HName::Via, HName::From, HName::To, HName::CallId, HName::CSeq] {
        for v in m.headers_of(&n) {
            let _ = write!(out, "{}: {v}\r\n", n.as_str());
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}
