//! The thin I/O shell: UDP and TCP sockets on one mio `Poll` (TCP connections in [`crate::tcp`]),
//! the clock, the datapath port, the CDR and journal files. Everything else happens in [`Core`].

use std::fs::File;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use xtrunk_config::{Config, Host};
use xtrunk_ring::msg::{Command, Event};

use crate::b2bua::Core;
use crate::cdr::EndReason;
use crate::cdr_file::CdrSink;
use crate::journal::{self, Journal, JournalOp};
use crate::media::MediaPort;
use crate::metrics::Metrics;
use crate::tcp::TcpConns;
use crate::transport::{Dest, Transmit, Transport};
pub use crate::udp::UDP_BUFFER_BYTES;

/// What a server looked like when it stopped (tests assert on it).
#[derive(Debug, Clone)]
pub struct Summary {
    /// Free media ports.
    pub ports_free: usize,
    /// Pool size.
    pub ports_total: usize,
    /// Calls still up.
    pub active_calls: usize,
    /// Sessions whose Delete was not confirmed.
    pub pending_deletes: usize,
    /// Counters.
    pub metrics: Metrics,
    /// TCP connections still open.
    pub tcp_open: usize,
}

/// The sidecar: sockets bound, not yet running.
pub struct Server<M: MediaPort> {
    poll: Poll,
    udp: Vec<(Token, UdpSocket, SocketAddr)>,
    tcp: Vec<(Token, TcpListener, SocketAddr)>,
    conns: TcpConns,
    core: Core,
    media: M,
    cdr: CdrSink<File>,
    /// `node.cdr_path`, reopened on SIGHUP (log rotation).
    cdr_path: Option<PathBuf>,
    journal: Option<Journal>,
    journal_ops: Vec<JournalOp>,
    journal_path: std::path::PathBuf,
    /// The file to re-read when the flag is raised (SIGHUP).
    reload: Option<(PathBuf, Arc<AtomicBool>)>,
    media_lost: Option<Arc<AtomicBool>>,
    /// Raised: return from [`Server::run`] at once, calls left as they are (journaled).
    detach: Option<Arc<AtomicBool>>,
    /// UDP sockets not drained in their last turn (edge-triggered: no new event will come).
    udp_busy: Vec<bool>,
    /// Publishing for the control thread (`/metrics`), when it runs.
    ops: Option<Ops>,
    /// Raised (SIGUSR2): reopen the CDR file.
    reopen: Option<Arc<AtomicBool>>,
    /// The resolver of trunk domains, started when the first one is configured.
    dns: Option<crate::dns::DnsThread>,
    /// Since when the loop has been behind its input (`crate::overload::Load::behind`).
    load: crate::overload::LoadMeter,
    /// Test knob ([`Server::slow_calls`]): the pause after each call started.
    slow_calls: Duration,
}

/// The shell's side of `/metrics`: where to publish, the CDR-derived counts, when last.
struct Ops {
    out: crate::ops::Published,
    requests: crate::ops::RequestQueue,
    ended: crate::ops::EndedCounter,
    last: Instant,
    reloads: u64,
    reloads_refused: u64,
}

/// How long a stopping sidecar waits for its BYEs to be answered and its sessions deleted
/// (the supervisor's own grace is 5 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Datagrams handled per batch before the round's journal, transmissions and CDRs are flushed.
const UDP_BATCH: usize = 64;
/// Batches read from one UDP socket per poll round; a socket not drained by then is served
/// again next round (after the others, the timers and the datapath's events), so a flood on
/// one socket delays, but never starves, everything else.
const UDP_TURN_BATCHES: usize = 4;

impl<M: MediaPort> Server<M> {
    /// Binds every `[[sip.listen]]` (port 0 = any; the bound port is advertised). TLS listeners
    /// are skipped with a warning (no TLS shell yet).
    pub fn bind(cfg: &Config, media: M) -> anyhow::Result<Self> {
        let poll = Poll::new()?;
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        let mut listeners = Vec::new();
        for (i, l) in cfg.sip.listen.iter().enumerate() {
            let tok = Token(i);
            match l.transport {
                xtrunk_config::Transport::Udp => {
                    let mut s =
                        crate::udp::bind(l.addr).with_context(|| format!("sip.listen[{i}]: bind udp {}", l.addr))?;
                    let a = s.local_addr()?;
                    poll.registry().register(&mut s, tok, Interest::READABLE)?;
                    listeners.push((Transport::Udp, a));
                    udp.push((tok, s, a));
                }
                xtrunk_config::Transport::Tcp | xtrunk_config::Transport::Tls => {
                    let tr = Transport::from(l.transport);
                    // Same port as a UDP listener bound with port 0 when asked for port 0.
                    let addr = if l.addr.port() == 0 {
                        listeners
                            .iter()
                            .find(|(_, a): &&(Transport, SocketAddr)| a.ip() == l.addr.ip())
                            .map_or(l.addr, |(_, a)| *a)
                    } else {
                        l.addr
                    };
                    let mut s =
                        TcpListener::bind(addr).with_context(|| format!("sip.listen[{i}]: bind {tr:?} {addr}"))?;
                    let a = s.local_addr()?;
                    poll.registry().register(&mut s, tok, Interest::READABLE)?;
                    listeners.push((tr, a));
                    tcp.push((tok, s, a));
                }
            }
        }
        let seed = crate::ids::Seed::from_os().map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
        let snapshot = cfg.resolve_names()?;
        let core = Core::new(Arc::new(snapshot), listeners, Instant::now(), SystemTime::now(), seed);
        // 0600, appending, never through a symbolic link (crate::files).
        let cdr = match &cfg.node.cdr_path {
            Some(p) => Some(crate::files::open_append(p).with_context(|| format!("node.cdr_path: {}", p.display()))?),
            None => {
                log::warn!("node.cdr_path is not set: no CDRs are written (set it to a file to keep them)");
                None
            }
        };
        let mut core = core;
        core.open_registrar(Some(crate::registrar::path_for(&cfg.node.shm_path)), Instant::now());
        let mut conns = TcpConns::new(poll.registry().try_clone()?);
        conns.set_tls(crate::tls::TlsSetup::load(core.config(), core.listeners()).map_err(|e| anyhow::anyhow!(e))?);
        let udp_busy = vec![false; udp.len()];
        Ok(Self {
            poll,
            udp,
            tcp,
            conns,
            core,
            media,
            cdr: CdrSink::new(cdr),
            cdr_path: cfg.node.cdr_path.clone(),
            journal: None,
            journal_ops: Vec::new(),
            journal_path: journal::path_for(&cfg.node.shm_path),
            reload: None,
            media_lost: None,
            udp_busy,
            detach: None,
            ops: None,
            reopen: None,
            dns: None,
            load: crate::overload::LoadMeter::default(),
            slow_calls: Duration::ZERO,
        })
    }

    /// Tells the resolver which trunk domains the running configuration has (starting it for
    /// the first); a resolver that cannot start is logged and those trunks stay without targets.
    fn watch_domains(&mut self) {
        let w = crate::dns::watches(self.core.config());
        if self.dns.is_none() && !w.is_empty() {
            match crate::dns::DnsThread::spawn(&self.core.config().sip.dns) {
                Ok(d) => self.dns = Some(d),
                Err(e) => log::error!("the DNS resolver did not start ({e}); trunk domains stay unresolved"),
            }
        }
        if let Some(d) = &self.dns {
            d.watch(w);
        }
    }

    /// Resolver answers that came in, applied.
    fn dns_answers(&mut self) {
        while let Some(a) = self.dns.as_ref().and_then(crate::dns::DnsThread::try_answer) {
            self.core.apply_dns(a);
        }
    }

    /// Re-reads `path` whenever `flag` is raised (the caller ties it to SIGHUP): a valid file
    /// applies to the next call ([`crate::reload`] says which keys need a restart); an invalid one
    /// is logged with its key paths and the running configuration stays.
    pub fn reload_on(mut self, path: PathBuf, flag: Arc<AtomicBool>) -> Self {
        self.reload = Some((path, flag));
        self
    }

    /// Publishes counters to `out` for a control thread (`/metrics`) and takes its `requests`
    /// (see [`crate::ops`]).
    pub fn publish_to(mut self, out: crate::ops::Published, requests: crate::ops::RequestQueue) -> Self {
        self.ops = Some(Ops {
            out,
            requests,
            ended: crate::ops::EndedCounter::default(),
            last: Instant::now().checked_sub(crate::ops::PUBLISH_EVERY).unwrap_or_else(Instant::now),
            reloads: 0,
            reloads_refused: 0,
        });
        self
    }

    /// Pauses the loop for `d` after each datagram that started a call: a call path that
    /// waits on something synchronous (a shared store's round trip), for the overload tests
    /// (never set by the binaries).
    pub fn slow_calls(mut self, d: Duration) -> Self {
        self.slow_calls = d;
        self
    }

    /// Ends every call with [`EndReason::MediaLost`] and stops when `flag` is raised (the
    /// supervisor raises it, with SIGUSR1, when the datapath died).
    pub fn media_lost_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.media_lost = Some(flag);
        self
    }

    fn maybe_reload(&mut self) {
        if self.reopen.as_ref().is_some_and(|f| f.swap(false, Ordering::Relaxed)) {
            self.reopen_cdr();
        }
        let Some((_, flag)) = &self.reload else { return };
        if !flag.swap(false, Ordering::Relaxed) {
            return;
        }
        self.reopen_cdr();
        let Some((path, _)) = &self.reload else { return };
        let mut new = match Config::load(path).and_then(|c| c.snapshot(Host::this())) {
            Ok(s) => s,
            Err(e) => {
                log::error!("reload refused, the running configuration stays: {e}");
                if let Some(o) = &mut self.ops {
                    o.reloads_refused += 1;
                }
                return;
            }
        };
        if let Some(o) = &mut self.ops {
            o.reloads += 1;
        }
        let kept = crate::reload::keep_restart_only(self.core.config(), &mut new);
        crate::dns::keep_resolved(self.core.config(), &mut new);
        if !kept.is_empty() {
            log::warn!("reload: {} need a restart to change; running values kept", kept.join(", "));
        }
        log::info!(
            "reloaded {}: {} trunk(s), {} route(s); calls in progress keep their configuration",
            path.display(),
            new.trunks.len(),
            new.routes.len()
        );
        self.core.reload(Arc::new(new));
        match crate::tls::TlsSetup::load(self.core.config(), self.core.listeners()) {
            Ok(t) => self.conns.set_tls(t),
            Err(e) => log::error!("reload: {e}; TLS keeps the certificates it had"),
        }
        self.watch_domains();
    }

    /// Reopens `node.cdr_path` (SIGHUP after logrotate moved the file away: the next CDRs go to a
    /// new file at the path). If that fails, CDRs keep going to the file already open.
    fn reopen_cdr(&mut self) {
        let Some(p) = &self.cdr_path else { return };
        match crate::files::open_append(p) {
            Ok(f) => {
                self.cdr.replace(f);
                log::info!("reopened the CDR file {}", p.display());
            }
            Err(e) => log::error!("node.cdr_path: {e}; CDRs keep going to the file already open"),
        }
    }

    /// The bound listener addresses.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.udp
            .iter()
            .map(|(_, _, a)| (Transport::Udp, *a))
            .chain(
                self.tcp
                    .iter()
                    .map(|(_, _, a)| (if self.conns.tls_listener(*a) { Transport::Tls } else { Transport::Tcp }, *a)),
            )
            .collect()
    }

    /// Restart recovery: dump the datapath's sessions, open (and compact) the journal, and let
    /// the core resume the answered calls found in both (see `b2bua/restart.rs`).
    fn recover(&mut self) {
        let token = 0x5151_0000_u64 ^ u64::from(std::process::id());
        let mut sessions = Vec::new();
        let mut sent = false;
        let mut complete = false;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !sent {
                sent = self.media.send(&Command::Dump { token }).is_ok();
            }
            match self.media.poll_event() {
                Some(Event::Session(s)) => sessions.push(s),
                Some(Event::DumpDone { token: t, .. }) if t == token => {
                    complete = true;
                    break;
                }
                Some(ev) => self.core.handle_media_event(Instant::now(), ev),
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        if !complete {
            log::warn!("recovery: no DumpDone from the datapath within 5 s; {} session(s) seen", sessions.len());
        }
        let entries = match Journal::open(&self.journal_path) {
            Ok((j, entries)) => {
                self.journal = Some(j);
                entries
            }
            Err(e) => {
                log::warn!("journal {}: {e}; restart safety off", self.journal_path.display());
                Journal::load(&self.journal_path)
            }
        };
        if !sessions.is_empty() || !entries.is_empty() {
            log::info!(
                "recovery: {} datapath session(s), {} journaled call(s) (dump took {:?})",
                sessions.len(),
                entries.len(),
                started.elapsed()
            );
        }
        self.core.recover(Instant::now(), &sessions, &entries);
        if !sessions.is_empty() || !entries.is_empty() {
            let m = &self.core.metrics;
            log::info!("recovery: {} call(s) resumed, {} ended", m.calls_recovered, m.calls_released_on_restart);
        }
    }

    /// Runs until `stop` is set (or the datapath is reported lost), then ends every call —
    /// BYE both ways, CDRs written — within [`SHUTDOWN_GRACE`].
    pub fn run(mut self, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
        self.recover();
        self.watch_domains();
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; 65_536];
        self.flush();
        let lost = |s: &Self| s.media_lost.as_ref().is_some_and(|f| f.load(Ordering::Relaxed));
        let detached = |s: &Self| s.detach.as_ref().is_some_and(|f| f.load(Ordering::Relaxed));
        while !stop.load(Ordering::Relaxed) && !lost(&self) {
            if detached(&self) {
                log::warn!("leaving {} call(s) journaled for the next sidecar", self.core.active_calls());
                return Ok(self.summary());
            }
            self.maybe_reload();
            self.turn(&mut events, &mut buf)?;
        }
        let why = if lost(&self) { EndReason::MediaLost } else { EndReason::Shutdown };
        let calls = self.core.active_calls();
        log::info!("stopping ({why}): ending {calls} call(s)");
        self.core.shutdown(Instant::now(), why);
        self.flush();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.core.drained() && Instant::now() < deadline {
            self.turn(&mut events, &mut buf)?;
        }
        if !self.core.drained() {
            log::warn!(
                "stopping: {} call(s) and {} delete(s) unfinished after {SHUTDOWN_GRACE:?}",
                self.core.active_calls(),
                self.core.pending_deletes()
            );
        }
        self.core.abandon_media();
        self.flush();
        if self.cdr.pending() > 0 {
            // The file cannot take them: the log (the supervisor's stderr) is the last resort.
            log::error!("{} CDR(s) could not be written to the CDR file; they follow:", self.cdr.pending());
            eprint!("{}", String::from_utf8_lossy(&self.cdr.take_backlog()));
        }
        Ok(self.summary())
    }

    /// One poll round: I/O, timers, datapath events, then everything out.
    fn turn(&mut self, events: &mut Events, buf: &mut [u8]) -> anyhow::Result<()> {
        let now = Instant::now();
        let busy = self.conns.busy() || self.udp_busy.iter().any(|b| *b);
        let mut timeout = Duration::from_millis(if busy { 0 } else { 5 });
        if let Some(t) = self.core.poll_timeout() {
            timeout = timeout.min(t.saturating_duration_since(now));
        }
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
        self.load.round_begins(Instant::now());
        let mut served = vec![false; self.udp.len()];
        for ev in events.iter() {
            let tok = ev.token();
            if let Some(i) = self.udp.iter().position(|(t, _, _)| *t == tok) {
                served[i] = true;
                self.read_udp(i, buf);
            } else if let Some(i) = self.tcp.iter().position(|(t, _, _)| *t == tok) {
                self.accept(i);
            } else {
                self.conns.on_event(ev, &mut self.core);
            }
        }
        for (i, served) in served.into_iter().enumerate() {
            if self.udp_busy[i] && !served {
                self.read_udp(i, buf);
            }
        }
        self.serve_tcp();
        self.dns_answers();
        let now = Instant::now();
        self.core.handle_timeout(now);
        while let Some(ev) = self.media.poll_event() {
            self.core.handle_media_event(now, ev);
        }
        self.flush();
        // Behind: a UDP socket was left with input for the next round (a TCP connection left
        // with input is its own budget at work: `crate::overload`).
        let behind = self.load.round_ends(now, self.udp_busy.iter().any(|b| *b));
        self.report_load(now, behind);
        self.publish(now);
        Ok(())
    }

    /// Hands the control thread a fresh snapshot (at most every [`crate::ops::PUBLISH_EVERY`];
    /// skipped, never waited for, while a scrape holds the lock).
    fn publish(&mut self, now: Instant) {
        let Some(o) = &mut self.ops else { return };
        if now.duration_since(o.last) < crate::ops::PUBLISH_EVERY {
            return;
        }
        let (mut end, mut list) = (Vec::new(), false);
        if let Ok(mut r) = o.requests.try_lock() {
            end = std::mem::take(&mut r.end_calls);
            list = r.list_calls;
        }
        if let Ok(mut snap) = o.out.try_lock() {
            *snap = crate::ops::OpsSnapshot {
                metrics: self.core.metrics.clone(),
                active: self.core.active_by_trunk(),
                ended: o.ended.snapshot(),
                reloads: o.reloads,
                reloads_refused: o.reloads_refused,
                calls: if list { self.core.active_cdrs(crate::ops::MAX_LISTED) } else { Vec::new() },
                targets: self.core.target_health(),
                registrations: self.core.registrations(),
                shared: self.core.admission.store.shared_status(),
            };
            o.last = now;
        }
        if end.is_empty() {
            return;
        }
        for id in end {
            let found = self.core.end_by_call_id(now, &id);
            log::info!("admin: end call {id}: {}", if found { "ending" } else { "no such call" });
        }
        self.flush();
    }

    fn summary(&self) -> Summary {
        let p = self.core.ports();
        Summary {
            ports_free: p.capacity() - p.in_use(),
            ports_total: p.capacity(),
            active_calls: self.core.active_calls(),
            pending_deletes: self.core.pending_deletes(),
            metrics: self.core.metrics.clone(),
            tcp_open: self.conns.len(),
        }
    }

    /// Drains the socket (edge-triggered: until `WouldBlock`), flushing once per batch of up to
    /// [`UDP_BATCH`] datagrams: one journal `write(2)` and one CDR `write(2)` per batch, and the
    /// journal still reaches the file before the batch's messages leave.
    fn read_udp(&mut self, i: usize, buf: &mut [u8]) {
        let local = self.udp[i].2;
        self.udp_busy[i] = true;
        for _ in 0..UDP_TURN_BATCHES {
            let mut handled = 0;
            let mut errors = 0;
            let mut drained = false;
            while handled < UDP_BATCH {
                match self.udp[i].1.recv_from(buf) {
                    Ok((n, from)) => {
                        let dest = Dest { transport: Transport::Udp, local, remote: from };
                        let started = self.core.metrics.calls_started;
                        self.core.handle_input(Instant::now(), dest, &buf[..n]);
                        if !self.slow_calls.is_zero() && self.core.metrics.calls_started != started {
                            std::thread::sleep(self.slow_calls);
                        }
                        handled += 1;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        drained = true;
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // An ICMP error for something we sent (IP_RECVERR): read the error
                        // queue for the destinations it names.
                        log::debug!("udp recv: {e}");
                        crate::icmp::fail_unreachable(&self.udp[i].1, &mut self.core);
                        errors += 1;
                        if errors > 8 {
                            drained = true;
                            break;
                        }
                    }
                }
            }
            if handled > 0 {
                self.flush();
                self.media_events();
            }
            if drained {
                self.udp_busy[i] = false;
                break;
            }
            // A long round is seen while it lasts, not only at its end.
            let now = Instant::now();
            let behind = self.load.left_input(now);
            self.report_load(now, behind);
        }
    }

    /// Hands the core the load (`crate::overload`): `behind`, and the ring's fill.
    fn report_load(&mut self, now: Instant, behind: Duration) {
        let ring_fill_pct = self.media.fill_pct().unwrap_or(0);
        self.core.handle_load(now, crate::overload::Load { behind, ring_fill_pct });
    }

    /// The datapath's events (a new call's `Created` sends its callee-side INVITE).
    fn media_events(&mut self) {
        let mut any = false;
        while let Some(ev) = self.media.poll_event() {
            self.core.handle_media_event(Instant::now(), ev);
            any = true;
        }
        if any {
            self.flush();
        }
    }

    fn accept(&mut self, i: usize) {
        let (_, listener, local) = &self.tcp[i];
        self.conns.accept(i, listener, *local, &mut self.core);
    }

    /// One turn for each queued TCP connection (up to [`crate::tcp::ROUND_TURNS`]), the core flushed
    /// after each (so a peer's responses are queued before its next turn looks at them); idle
    /// connections closed.
    fn serve_tcp(&mut self) {
        for i in self.conns.take_accepts() {
            self.accept(i);
        }
        self.conns.sweep(Instant::now(), &mut self.core);
        for _ in 0..self.conns.round() {
            let Some(tok) = self.conns.pop() else { break };
            self.conns.turn(tok, &mut self.core);
            self.flush();
        }
    }

    fn send(&mut self, t: Transmit) {
        match t.dest.transport {
            Transport::Udp => {
                let sock = self.udp.iter().find(|(_, _, a)| *a == t.dest.local).or(self.udp.first());
                if let Some((_, s, _)) = sock {
                    if let Err(e) = s.send_to(&t.data, t.dest.remote) {
                        log::debug!("udp send to {}: {e}", t.dest.remote);
                    }
                }
            }
            Transport::Tcp | Transport::Tls => self.conns.send(t, &mut self.core),
        }
    }

    /// Writes the core's pending journal operations with one `write(2)`.
    fn flush_journal(&mut self) {
        self.journal_ops.clear();
        while let Some(op) = self.core.poll_journal() {
            self.journal_ops.push(op);
        }
        if self.journal_ops.is_empty() {
            return;
        }
        match &mut self.journal {
            Some(j) => {
                if let Err(e) = j.apply_all(&self.journal_ops) {
                    log::warn!("journal write: {e}");
                }
            }
            None => log::debug!("journal not open; {} operation(s) lost", self.journal_ops.len()),
        }
    }

    /// All of the round's CDRs with one write(2); kept on failure (see `cdr_file`).
    fn flush_cdrs(&mut self) {
        let mut any = false;
        while let Some(cdr) = self.core.poll_cdr() {
            self.cdr.push(&cdr);
            if let Some(o) = &mut self.ops {
                o.ended.count(&cdr);
            }
            any = true;
        }
        if any || self.cdr.pending() > 0 {
            self.cdr.flush();
        }
    }

    fn flush(&mut self) {
        // Transport errors can produce more output: loop until quiet.
        for _ in 0..4 {
            let mut any = false;
            // CDRs before the journal: a call's `remove` never reaches the file before its CDR,
            // so a kill -9 in between replays the call (a duplicate the CDR store drops by its
            // key) rather than losing its CDR. Then the journal: a record is on file before the
            // messages it describes leave.
            self.flush_cdrs();
            self.flush_journal();
            while let Some(t) = self.core.poll_transmit() {
                any = true;
                self.send(t);
            }
            while let Some(c) = self.core.poll_media() {
                if self.media.send(&c).is_err() {
                    self.core.unpoll_media(c);
                    break;
                }
            }
            self.flush_cdrs();
            self.flush_journal();
            if !any {
                break;
            }
        }
    }
}

/// What the process's signals ask of a running sidecar, besides stopping.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    /// SIGHUP: re-read this configuration file.
    pub reload: Option<(PathBuf, Arc<AtomicBool>)>,
    /// SIGUSR1 from the supervisor: the datapath died; end every call (BYE, CDR), then stop.
    pub media_lost: Option<Arc<AtomicBool>>,
    /// The ring was re-created: stop at once, leaving every call journaled for the next sidecar.
    pub detach: Option<Arc<AtomicBool>>,
    /// Publish counters here for the control thread (`/metrics`), and take its requests.
    pub ops: Option<(crate::ops::Published, crate::ops::RequestQueue)>,
    /// SIGUSR2: reopen the CDR file (after logrotate moved it), nothing else.
    pub reopen: Option<Arc<AtomicBool>>,
}

/// Runs the sidecar until `stop` is set: binds the listeners, recovers after a restart, serves,
/// and on the way out ends every call (see [`Server::run`]) unless `flags.detach` was raised.
pub fn run(cfg: &Config, media: impl MediaPort + 'static, stop: Arc<AtomicBool>, flags: Flags) -> anyhow::Result<()> {
    let mut server = Server::bind(cfg, media)?;
    if let Some((path, flag)) = flags.reload {
        server = server.reload_on(path, flag);
    }
    if let Some(flag) = flags.media_lost {
        server = server.media_lost_on(flag);
    }
    server.detach = flags.detach;
    server.reopen = flags.reopen;
    if let Some((out, requests)) = flags.ops {
        server = server.publish_to(out, requests);
    }
    for (t, a) in server.local_addrs() {
        log::info!("sip listening on {t:?} {a}");
    }
    server.run(stop).map(|_| ())
}
