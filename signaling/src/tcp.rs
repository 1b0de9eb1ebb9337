//! The shell's TCP connections: a table bounded in total, per peer IP, in idle time and in the
//! bytes queued toward a peer; the ACL check at accept; stream framing in O(n); fair reading.
//!
//! Limits come from `[sip]` (`tcp_max_connections`, `tcp_max_per_source`, `tcp_idle_timeout_s`,
//! `tcp_max_write_buffer`, and `max_message_bytes` for the read buffer) of the core's running
//! configuration, read at each use. Every refusal and every close by a limit is counted in
//! [`crate::metrics::TcpMetrics`].
//!
//! Reading is edge-triggered (mio): a connection whose socket was not read to `WouldBlock`, or
//! whose buffer may still hold frames, stays *queued*. The shell serves the queue a few *turns*
//! per poll round ([`ROUND_TURNS`]; a turn is at most [`TURN_FRAMES`] frames and [`TURN_READS`]
//! reads), flushing the core after each, so one pipelining peer cannot starve UDP or the other
//! connections. While bytes wait toward a peer, its turns are skipped: a peer that does not read
//! is not read either; the write that drains its buffer queues it again.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use xtrunk_config::Snapshot;

use crate::b2bua::Core;
use crate::metrics::count;
use crate::sip::msg::{frame_total, ParseError};
use crate::transport::{Dest, Transmit, Transport};

/// Frames handled per turn of one connection.
pub(crate) const TURN_FRAMES: usize = 32;
/// `read(2)`s per turn of one connection.
pub(crate) const TURN_READS: usize = 2;
/// Turns per poll round; then UDP, timers and the datapath get theirs.
pub(crate) const ROUND_TURNS: usize = 16;
/// Connections accepted per listener per round.
const ROUND_ACCEPTS: usize = 128;
/// Largest single `read(2)`.
const READ_CHUNK: usize = 64 * 1024;
/// Tokens of connections start here (listeners use their index in `[[sip.listen]]`).
const FIRST_CONN: usize = 1024;

/// One item taken from a stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// One whole SIP message.
    Frame(&'a [u8]),
    /// An RFC 5626 keep-alive ping (CRLFCRLF), to answer with a CRLF pong.
    Ping,
}

/// Why a stream cannot be framed any further.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// More than `max` bytes without a whole frame (or a Content-Length beyond it).
    Oversize,
    /// An unusable header block (no Content-Length, not UTF-8, ...).
    Bad(ParseError),
}

/// Incremental framing of one stream, O(n) in the bytes received: bytes are appended, frames are
/// taken from a read offset (the buffer is compacted once per append, never per frame), and the
/// search for the end of a header block resumes where the previous one stopped.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    /// First byte not taken yet.
    start: usize,
    /// Bytes after `start` already searched for CRLFCRLF, without success.
    searched: usize,
    /// The length of the frame at `start`, once its header block is complete.
    total: Option<usize>,
    /// CRLFs skipped since the last frame (two make a ping).
    crlfs: u8,
    /// Bytes passed to the header search (the O(n) test reads it).
    #[cfg(test)]
    work: usize,
}

impl Framer {
    /// Bytes received and not taken yet.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends received bytes.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next frame or ping; `Ok(None)`: more bytes needed (then fewer than `max` are
    /// buffered). Leading CRLFs are skipped.
    pub(crate) fn next(&mut self, max: usize) -> Result<Option<Item<'_>>, FrameError> {
        loop {
            let pending = &self.buf[self.start..];
            let total = match self.total {
                Some(t) => t,
                None if self.searched == 0 && pending.starts_with(b"\r\n") => {
                    self.start += 2;
                    self.crlfs += 1;
                    if self.crlfs == 2 {
                        self.crlfs = 0;
                        return Ok(Some(Item::Ping));
                    }
                    continue;
                }
                None if self.searched == 0 && (pending.is_empty() || pending == b"\r") => return Ok(None),
                None => {
                    let from = self.searched.saturating_sub(3);
                    let found = pending[from..].windows(4).position(|w| w == b"\r\n\r\n");
                    #[cfg(test)]
                    {
                        self.work += found.map_or(pending.len() - from, |i| i + 4);
                    }
                    let Some(i) = found else {
                        if pending.len() >= max {
                            return Err(FrameError::Oversize);
                        }
                        self.searched = pending.len();
                        return Ok(None);
                    };
                    let t = frame_total(&pending[..from + i]).map_err(FrameError::Bad)?;
                    if t > max {
                        return Err(FrameError::Oversize);
                    }
                    self.total = Some(t);
                    t
                }
            };
            if pending.len() < total {
                return Ok(None);
            }
            let at = self.start;
            self.start += total;
            self.total = None;
            self.searched = 0;
            self.crlfs = 0;
            return Ok(Some(Item::Frame(&self.buf[at..at + total])));
        }
    }

    /// Frees the buffer of a large message once it is all taken.
    fn trim(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > 2 * READ_CHUNK {
                self.buf = Vec::new();
            }
        }
    }
}

struct Conn {
    stream: TcpStream,
    /// The TLS record layer over `stream`, for a TLS connection ([`crate::tls`]).
    tls: Option<Box<rustls::Connection>>,
    peer: SocketAddr,
    local: SocketAddr,
    rx: Framer,
    /// Bytes waiting toward the peer.
    tx: VecDeque<u8>,
    /// The last byte read or written.
    last_io: Instant,
    /// Input may be waiting: the socket was not read to `WouldBlock`, or frames are buffered.
    ready: bool,
    /// In the service queue.
    queued: bool,
    /// The peer closed its side.
    eof: bool,
    /// A TLS server connection's client certificate was checked against its trunk's
    /// `tls.peer_name` (done once, when the first plaintext arrives: the handshake is over).
    peer_checked: bool,
}

/// How a turn ended.
enum End {
    /// Budget spent: more may be waiting.
    Budget,
    /// A pong waits to be written.
    Pong,
    /// Socket read to `WouldBlock`, nothing buffered that frames.
    Drained,
    /// The peer closed its side after `frames` frames of this turn.
    Eof,
    /// Reset, unframeable or oversize: close now.
    Close,
    /// The TLS handshake or a record failed: close, and fail what was sent over it.
    TlsFailed,
}

/// The table of TCP connections, accepted and outbound.
pub(crate) struct TcpConns {
    registry: Registry,
    conns: HashMap<Token, Conn>,
    by_peer: HashMap<SocketAddr, Token>,
    per_ip: HashMap<IpAddr, usize>,
    queue: VecDeque<Token>,
    /// Listeners (by index) whose backlog may hold more connections.
    accepts: Vec<usize>,
    next_token: usize,
    next_sweep: Instant,
    scratch: Vec<u8>,
    /// Certificates and trust settings of the running configuration.
    tls: crate::tls::TlsSetup,
}

/// May `ip` open a connection to us: some trunk's acl or targets allow it.
fn acl_allows(cfg: &Snapshot, ip: IpAddr) -> bool {
    cfg.trunk_by_acl(ip).is_some() || cfg.trunks.iter().any(|t| t.targets.iter().any(|g| g.addr.ip() == ip))
}

impl TcpConns {
    /// An empty table registering its sockets with `registry`.
    pub(crate) fn new(registry: Registry) -> Self {
        Self {
            registry,
            conns: HashMap::new(),
            by_peer: HashMap::new(),
            per_ip: HashMap::new(),
            queue: VecDeque::new(),
            accepts: Vec::new(),
            next_token: FIRST_CONN,
            next_sweep: Instant::now(),
            scratch: vec![0; READ_CHUNK],
            tls: crate::tls::TlsSetup::default(),
        }
    }

    /// Whether listener `local` serves TLS.
    pub(crate) fn tls_listener(&self, local: SocketAddr) -> bool {
        self.tls.serves(local)
    }

    /// Takes the TLS settings new connections use (start, SIGHUP); open ones keep theirs.
    pub(crate) fn set_tls(&mut self, tls: crate::tls::TlsSetup) {
        self.tls = tls;
    }

    /// Connections open.
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Work is queued: the next poll must not wait.
    pub(crate) fn busy(&self) -> bool {
        !self.queue.is_empty() || !self.accepts.is_empty()
    }

    /// Listeners to accept from again (their backlog was not emptied last round).
    pub(crate) fn take_accepts(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.accepts)
    }

    /// Accepts up to [`ROUND_ACCEPTS`] connections from listener `li` (bound to `local`);
    /// refused ones are closed at once and counted.
    pub(crate) fn accept(&mut self, li: usize, listener: &TcpListener, local: SocketAddr, core: &mut Core) {
        for _ in 0..ROUND_ACCEPTS {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if !self.admit(peer.ip(), core, true) {
                        continue;
                    }
                    match self.tls.accept(local).transpose() {
                        Ok(tls) => {
                            self.insert(stream, peer, local, tls);
                        }
                        Err(e) => log::warn!("tls {peer}: {e}"),
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("tcp accept: {e}");
                    return;
                }
            }
        }
        if !self.accepts.contains(&li) {
            self.accepts.push(li);
        }
    }

    /// Checks the ACL (`inbound` only) and the caps for a new connection with `ip`; counts a
    /// refusal.
    fn admit(&mut self, ip: IpAddr, core: &mut Core, inbound: bool) -> bool {
        let cfg = core.config();
        let (total, per_source) = (cfg.sip.tcp_max_connections, cfg.sip.tcp_max_per_source);
        let allowed = !inbound || acl_allows(cfg, ip);
        let m = &mut core.metrics.tcp;
        if !allowed {
            count(&mut m.refused_acl, "refused: no trunk allows the address", || ip.to_string());
            return false;
        }
        if self.conns.len() >= total {
            count(&mut m.refused_cap_total, "refused: tcp_max_connections open", || format!("{ip}: {total} open"));
            return false;
        }
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= per_source {
            count(&mut m.refused_cap_source, "refused: tcp_max_per_source open", || format!("{ip}: {per_source} open"));
            return false;
        }
        true
    }

    fn insert(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        tls: Option<rustls::Connection>,
    ) -> Option<Token> {
        let tok = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = self.registry.register(&mut stream, tok, Interest::READABLE | Interest::WRITABLE) {
            log::warn!("tcp {peer}: register: {e}");
            return None;
        }
        *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
        self.by_peer.insert(peer, tok);
        // Queued at once: bytes that arrived before the registration are read on the first turn.
        let tls = tls.map(|mut t| {
            crate::tls::limit(&mut t);
            Box::new(t)
        });
        let c = Conn {
            stream,
            tls,
            peer,
            local,
            rx: Framer::default(),
            tx: VecDeque::new(),
            last_io: Instant::now(),
            ready: true,
            queued: true,
            eof: false,
            peer_checked: false,
        };
        self.conns.insert(tok, c);
        self.queue.push_back(tok);
        Some(tok)
    }

    /// Closes `tok`; `failed`: tell the core (its transactions over this flow fail).
    fn close(&mut self, tok: Token, failed: bool, core: &mut Core) {
        let Some(mut c) = self.conns.remove(&tok) else { return };
        let _ = self.registry.deregister(&mut c.stream);
        if self.by_peer.get(&c.peer) == Some(&tok) {
            self.by_peer.remove(&c.peer);
        }
        if let Some(n) = self.per_ip.get_mut(&c.peer.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&c.peer.ip());
            }
        }
        if failed {
            core.handle_transport_error(Instant::now(), c.peer);
        }
    }

    /// A readiness event of connection `ev.token()`.
    pub(crate) fn on_event(&mut self, ev: &Event, core: &mut Core) {
        let tok = ev.token();
        if ev.is_writable() {
            self.write(tok, core);
        }
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            if let Some(c) = self.conns.get_mut(&tok) {
                c.ready = true;
                if !c.queued {
                    c.queued = true;
                    self.queue.push_back(tok);
                }
            }
        }
    }

    /// Turns in this round: one per connection queued now (those queued again during the
    /// round wait for the next), at most [`ROUND_TURNS`].
    pub(crate) fn round(&self) -> usize {
        self.queue.len().min(ROUND_TURNS)
    }

    /// The next queued connection to give a turn.
    pub(crate) fn pop(&mut self) -> Option<Token> {
        self.queue.pop_front()
    }

    /// One turn of `tok`: frames already buffered, then reads, within the turn's budget; each
    /// frame goes to the core. The caller flushes the core's output after it.
    pub(crate) fn turn(&mut self, tok: Token, core: &mut Core) {
        let max = core.config().sip.max_message_bytes;
        let Some(c) = self.conns.get_mut(&tok) else { return };
        c.queued = false;
        if !c.tx.is_empty() {
            // The peer has not read what we sent: its input waits (`write` queues it again).
            return;
        }
        let transport = if c.tls.is_some() { Transport::Tls } else { Transport::Tcp };
        let dest = Dest { transport, local: c.local, remote: c.peer };
        let (mut frames, mut reads) = (0, 0);
        let end = loop {
            match c.rx.next(max) {
                Ok(Some(Item::Frame(f))) => {
                    core.handle_input(Instant::now(), dest, f);
                    frames += 1;
                    if frames >= TURN_FRAMES {
                        break End::Budget;
                    }
                    continue;
                }
                Ok(Some(Item::Ping)) => {
                    c.tx.extend(b"\r\n");
                    break End::Pong;
                }
                Ok(None) => {}
                Err(FrameError::Oversize) => {
                    let m = &mut core.metrics.tcp.closed_oversize_read;
                    count(m, "closed: more than max_message_bytes without a whole frame", || c.peer.to_string());
                    break End::Close;
                }
                Err(FrameError::Bad(e)) => {
                    // Unframeable stream: nothing after this point can be trusted.
                    core.metrics.bad(e.reason, || format!("tcp stream from {}", c.peer));
                    break End::Close;
                }
            }
            c.rx.trim();
            if c.eof {
                break End::Eof;
            }
            if reads >= TURN_READS {
                break End::Budget;
            }
            reads += 1;
            let room = max.saturating_sub(c.rx.buffered()).clamp(1, READ_CHUNK);
            let got = match c.tls.as_deref_mut() {
                Some(t) => crate::tls::read(t, &mut c.stream, &mut self.scratch[..room]),
                None => c.stream.read(&mut self.scratch[..room]),
            };
            match got {
                Ok(0) => c.eof = true,
                Ok(n) => {
                    c.last_io = Instant::now();
                    if let Some(t) =
                        c.tls.as_deref().filter(|t| !c.peer_checked && matches!(t, rustls::Connection::Server(_)))
                    {
                        c.peer_checked = true;
                        if let Err(why) = crate::tls::TlsSetup::check_peer(core.config(), c.peer.ip(), t) {
                            log::warn!("tls {}: {why}", c.peer);
                            core.metrics.tcp.tls_peer_refused += 1;
                            break End::Close;
                        }
                    }
                    c.rx.push(&self.scratch[..n]);
                }
                // NotConnected: an outbound connect in progress (its events come later).
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotConnected) => {
                    c.ready = false;
                    break End::Drained;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::InvalidData && c.tls.is_some() => {
                    // A failed handshake (certificate expired, wrong name, unknown CA) or a bad
                    // record: the reason goes to the log; calls over it fail over.
                    log::warn!("tls {}: {e}", c.peer);
                    core.metrics.tcp.tls_failed += 1;
                    break End::TlsFailed;
                }
                Err(_) => break End::Close,
            }
        };
        match end {
            End::Drained => {}
            End::Pong => self.write(tok, core),
            End::Budget => {
                c.queued = true;
                self.queue.push_back(tok);
            }
            // The responses to this turn's frames still need the connection: close on the next,
            // quiet turn (after they are written).
            End::Eof if frames > 0 => {
                c.queued = true;
                self.queue.push_back(tok);
            }
            End::Eof | End::Close => self.close(tok, false, core),
            End::TlsFailed => self.close(tok, true, core),
        }
    }

    /// Writes what waits toward `tok`'s peer; a drained peer whose input waits is queued again.
    fn write(&mut self, tok: Token, core: &mut Core) {
        let Some(c) = self.conns.get_mut(&tok) else { return };
        let mut failed = false;
        if let Some(t) = c.tls.as_deref_mut() {
            // Records (handshake, or data the socket did not take) left from before.
            failed = crate::tls::flush(t, &mut c.stream).is_err_and(|e| e.kind() != ErrorKind::NotConnected);
        }
        while !c.tx.is_empty() && !failed {
            let (head, _) = c.tx.as_slices();
            let wrote = match c.tls.as_deref_mut() {
                Some(t) => crate::tls::write(t, &mut c.stream, head),
                None => c.stream.write(head),
            };
            match wrote {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    c.tx.drain(..n);
                    c.last_io = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // An outbound connect in progress: its writable event comes later.
                Err(e) if e.kind() == ErrorKind::NotConnected => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            self.close(tok, true, core);
        } else if c.tx.is_empty() && c.ready && !c.queued {
            c.queued = true;
            self.queue.push_back(tok);
        }
    }

    /// Sends one message over the connection to `t.dest.remote`, connecting if there is none
    /// (within the caps). Over `tcp_max_write_buffer` queued, the connection is closed.
    pub(crate) fn send(&mut self, t: Transmit, core: &mut Core) {
        let remote = t.dest.remote;
        let tok = match self.by_peer.get(&remote) {
            Some(tok) => *tok,
            None => {
                let tls = if t.dest.transport == Transport::Tls {
                    match self.tls.connect(remote) {
                        Some(Ok(c)) => Some(c),
                        Some(Err(e)) => {
                            log::warn!("tls {remote}: {e}");
                            return core.handle_transport_error(Instant::now(), remote);
                        }
                        None => {
                            log::warn!("tls {remote}: not a TLS target of any trunk");
                            return core.handle_transport_error(Instant::now(), remote);
                        }
                    }
                } else {
                    None
                };
                let stream = if self.admit(remote.ip(), core, false) { TcpStream::connect(remote).ok() } else { None };
                match stream.and_then(|s| self.insert(s, remote, t.dest.local, tls)) {
                    Some(tok) => tok,
                    None => return core.handle_transport_error(Instant::now(), remote),
                }
            }
        };
        let Some(c) = self.conns.get_mut(&tok) else { return };
        c.tx.extend(&t.data);
        self.write(tok, core);
        let cap = core.config().sip.tcp_max_write_buffer;
        let queued = self.conns.get(&tok).map_or(0, |c| c.tx.len());
        if queued > cap {
            let m = &mut core.metrics.tcp.closed_write_overflow;
            count(m, "closed: peer does not read (tcp_max_write_buffer)", || format!("{remote}: {queued} B queued"));
            self.close(tok, true, core);
        }
    }

    /// Closes the connections idle for `tcp_idle_timeout_s` (checked a few times per timeout).
    pub(crate) fn sweep(&mut self, now: Instant, core: &mut Core) {
        if now < self.next_sweep {
            return;
        }
        let idle = Duration::from_secs(core.config().sip.tcp_idle_timeout_s.into());
        self.next_sweep = now + (idle / 4).min(Duration::from_secs(1));
        let stale: Vec<Token> =
            self.conns.iter().filter(|(_, c)| now.duration_since(c.last_io) >= idle).map(|(t, _)| *t).collect();
        for tok in stale {
            let Some(peer) = self.conns.get(&tok).map(|c| c.peer) else { continue };
            count(&mut core.metrics.tcp.closed_idle, "closed: idle (tcp_idle_timeout_s)", || peer.to_string());
            self.close(tok, false, core);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize, body: &str) -> Vec<u8> {
        format!("OPTIONS sip:x@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK{i}\r\nl: {}\r\n\r\n{body}", body.len())
            .into_bytes()
    }

    /// Everything `f` yields until it needs bytes: frames as strings, pings as "PING".
    fn drain(f: &mut Framer, max: usize) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(it) = f.next(max).unwrap() {
            out.push(match it {
                Item::Frame(b) => String::from_utf8(b.to_vec()).unwrap(),
                Item::Ping => "PING".into(),
            });
        }
        f.trim();
        out
    }

    #[test]
    fn one_byte_at_a_time_frames_a_pipelined_stream() {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for i in 0..200 {
            let m = msg(i, &"b".repeat(i % 7));
            want.push(String::from_utf8(m.clone()).unwrap());
            stream.extend_from_slice(&m);
            if i % 50 == 0 {
                stream.extend_from_slice(b"\r\n\r\n");
                want.push("PING".into());
            } else if i % 10 == 0 {
                stream.extend_from_slice(b"\r\n");
            }
        }
        let mut f = Framer::default();
        let mut got = Vec::new();
        for b in &stream {
            f.push(std::slice::from_ref(b));
            got.extend(drain(&mut f, 65_535));
        }
        assert_eq!(got, want);
        assert_eq!(f.buffered(), 0);
        // Each byte is searched at most a few times (the 3-byte overlap of a resumed search).
        assert!(f.work <= 4 * stream.len(), "{} bytes searched for a {} byte stream", f.work, stream.len());
    }

    #[test]
    fn a_large_message_in_small_pieces_is_searched_once() {
        let big = msg(1, &"x".repeat(40_000));
        let head_len = big.len() - 40_000;
        let mut f = Framer::default();
        for piece in big.chunks(3) {
            f.push(piece);
            if let Some(Item::Frame(b)) = f.next(65_535).unwrap() {
                assert_eq!(b, &big[..]);
            }
        }
        assert_eq!(f.buffered(), 0);
        assert!(f.work <= 2 * head_len, "searched {} bytes, header {head_len}", f.work);
    }

    #[test]
    fn a_chunk_of_many_frames_is_searched_once() {
        let mut stream = Vec::new();
        for i in 0..1000 {
            stream.extend_from_slice(&msg(i, "abc"));
        }
        let mut f = Framer::default();
        f.push(&stream);
        assert_eq!(drain(&mut f, 65_535).len(), 1000);
        assert!(f.work <= stream.len(), "searched {} of {} bytes", f.work, stream.len());
    }

    #[test]
    fn oversize_and_unframeable_streams_are_refused() {
        let mut f = Framer::default();
        f.push(&[b'a'; 1999]);
        assert!(f.next(2000).unwrap().is_none());
        f.push(b"a");
        assert!(matches!(f.next(2000), Err(FrameError::Oversize)));
        let mut f = Framer::default();
        f.push(b"OPTIONS sip:h SIP/2.0\r\nContent-Length: 5000\r\n\r\n");
        assert!(matches!(f.next(2000), Err(FrameError::Oversize)));
        let mut f = Framer::default();
        f.push(b"OPTIONS sip:h SIP/2.0\r\nVia: x\r\n\r\n");
        assert!(matches!(f.next(2000), Err(FrameError::Bad(e)) if e.reason == "Missing Content-Length"));
    }
}
