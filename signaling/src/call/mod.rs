//! Call mechanics: carrying out what policy decided, never deciding.
//!
//! A [`Call`] is two [`Leg`]s, each a [`Dialog`] plus its media side (trunk, relay port, SDP
//! state). The modules are the phases of a call: [`setup`] (the caller's INVITE → the callee's),
//! [`progress`] (the callee's responses), [`teardown`] (rejects, CANCEL, BYE, the end of a call),
//! [`reoffer`] (re-INVITE/UPDATE), [`transfer`] (REFER), [`timers`] (call timers and datapath
//! events) and [`restart`] (journal and recovery).

mod delayed;
mod fax;
mod hunt;
mod progress;
mod reoffer;
mod restart;
mod session_timer;
mod setup;

pub(crate) use setup::CallAuth;
mod teardown;
mod timers;
mod transfer;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use xtrunk_config::{Codec, Snapshot, TrunkId, TrunkView};
use xtrunk_ring::msg::{LatchPolicy, LegCrypto, LegSpec, SessionId, SessionSpec};

use crate::b2bua::Core;
use crate::cdr::Cdr;
use crate::sdp::{self, Origin, Sdp};
use crate::sip::dialog::Dialog;
use crate::sip::msg::{Message, Method, NameAddr, Uri};
use crate::sip::transaction::{CallKey, Owner, Purpose, TxKey};
use crate::transport::{Dest, Transport};

/// One leg of a call: the dialog with its peer and the media facing it.
#[derive(Clone, Debug)]
pub(crate) struct Leg {
    pub(crate) dlg: Dialog,
    /// The trunk this leg faces (in the call's snapshot).
    pub(crate) trunk: TrunkId,
    /// Relay port facing this leg.
    pub(crate) port: u16,
    pub(crate) origin: Origin,
    /// The last SDP this leg sent us.
    pub(crate) remote_sdp: Option<Sdp>,
    /// The last SDP we sent this leg.
    pub(crate) local_sdp: Option<Sdp>,
    /// A 2xx to this leg's (re-)INVITE awaiting its ACK.
    pub(crate) pending_2xx: Option<TxKey>,
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Outbound INVITE in progress.
    Proceeding,
    /// 2xx sent to the caller, waiting for its ACK.
    Answered,
    /// Both dialogs confirmed.
    Confirmed,
    /// The caller cancelled (or no answer); waiting for the callee's final.
    Cancelling,
}

/// A re-INVITE/UPDATE relayed to the other leg, waiting for its answer.
pub(crate) struct ReOffer {
    pub(crate) req: Message,
    pub(crate) from: usize,
    pub(crate) stx: TxKey,
    pub(crate) method: Method,
    pub(crate) offer: Sdp,
}

/// A REFER in progress: the new leg that will replace slot `slot`.
pub(crate) struct Transfer {
    /// The slot being replaced (the transferor).
    pub(crate) slot: usize,
    pub(crate) leg: Leg,
    pub(crate) invite: Option<TxKey>,
}

/// A call: two dialogs bridged through one datapath session.
pub(crate) struct Call {
    /// The configuration the call started with (kept across a reload).
    pub(crate) cfg: Arc<Snapshot>,
    pub(crate) state: State,
    pub(crate) legs: [Leg; 2],
    /// The caller's INVITE.
    pub(crate) a_invite: Message,
    pub(crate) a_stx: TxKey,
    pub(crate) b_ctx: Option<TxKey>,
    pub(crate) b_ack: Option<crate::transport::Transmit>,
    pub(crate) b_provisional: bool,
    /// Challenges (`401`/`407`) answered for the current target's INVITE.
    pub(crate) b_challenged: u8,
    /// The callee-side INVITE waits for the datapath to confirm the session (`Created`): no
    /// carrier is dialled for a call that cannot carry media.
    pub(crate) b_waits_media: bool,
    /// Counted in `Core::pending` under this source until confirmed or ended.
    pub(crate) pending_src: Option<std::net::IpAddr>,
    pub(crate) cancel_sent: bool,
    pub(crate) targets_tried: usize,
    /// The target tried first; attempt `i` goes to `targets[(first_target + i) % n]`.
    pub(crate) first_target: usize,
    /// The caller sent no offer: our 2xx offers, its ACK answers (`call::delayed`).
    pub(crate) delayed_offer: bool,
    /// The route's trunks, in hunting order; `entry` is the one being tried (`legs[1].trunk`).
    pub(crate) entries: Vec<xtrunk_config::TrunkId>,
    pub(crate) entry: usize,
    /// Re-originated to its route's `then_number` already (at most once).
    pub(crate) reoriginated: bool,
    /// The route (index in the call's `cfg.routes`), for its `failover_codes`.
    pub(crate) route: Option<usize>,
    /// Session timer interval in seconds (0 = none), per leg whether we refresh it, and the
    /// generation of its last successful refresh (`call::session_timer`).
    pub(crate) session_expires: u32,
    pub(crate) refreshing: [bool; 2],
    pub(crate) refresh_gen: [u32; 2],
    /// How each leg's session is kept: our UPDATEs, our re-INVITEs (the peer refused UPDATE),
    /// or the peer's own refreshes (a caller that asked `refresher=uac`).
    pub(crate) refresh_by: [session_timer::Refresher; 2],
    pub(crate) user: String,
    pub(crate) session: SessionId,
    pub(crate) spec: SessionSpec,
    pub(crate) created: bool,
    pub(crate) a_offer: Sdp,
    pub(crate) early_answer: Option<Sdp>,
    pub(crate) reoffer: Option<ReOffer>,
    pub(crate) transfer: Option<Transfer>,
    /// Dialogs of released legs (a transferor), answered 200 to BYE.
    pub(crate) released: Vec<(String, String)>,
    pub(crate) cdr: Cdr,
    /// What the call holds in the admission tables (released in `finish`).
    pub(crate) hold: crate::policy::Hold,
    /// The numbers toward the callee (From user, PAI, privacy).
    pub(crate) numbers: crate::policy::NumberPlan,
    /// The call's `tracing` span (Call-ID on both legs, trunks, account): entered whenever the
    /// core works on this call, so every log line about it carries them.
    pub(crate) span: tracing::Span,
}

/// The span of a call with this CDR so far.
pub(crate) fn call_span(cdr: &Cdr) -> tracing::Span {
    tracing::info_span!(
        "call",
        call_id = %cdr.call_id,
        b_call_id = %cdr.b_call_id,
        trunk_in = %cdr.trunk_in,
        trunk_out = %cdr.trunk_out,
        account = %cdr.account_in,
    )
}

impl Call {
    /// Whether hunting has somewhere left to go: another entry, or the route's phone number.
    pub(crate) fn has_next_entry(&self) -> bool {
        self.entry + 1 < self.entries.len()
            || (!self.reoriginated
                && self.route.and_then(|r| self.cfg.routes.get(r)).is_some_and(|r| r.then_number.is_some()))
    }

    /// The current attempt (the last target dialled) ended with `code`, unless it already has.
    pub(crate) fn attempt_ended(&mut self, code: u16) {
        if let Some(a) = self.cdr.attempts.last_mut().filter(|a| a.code == 0) {
            a.code = code;
        }
    }

    /// The callee trunk's target of attempt `i`, if `i` is left: the priority group of
    /// `first_target` from it round (the targets are sorted by priority), then every later
    /// group in order, then the earlier ones.
    pub(crate) fn target<'t>(
        &self,
        trunk: &'t xtrunk_config::TrunkView,
        i: usize,
    ) -> Option<&'t xtrunk_config::Target> {
        trunk.targets.get(hunt_index(&trunk.targets, self.first_target, i)?)
    }

    fn cdr_journaled(&self) -> bool {
        self.cdr.answer_ms != 0
    }
}

/// An INVITE waiting for its account's CPS slot: answered `100 Trying`, started at `at`.
pub(crate) struct Queued {
    pub(crate) at: std::time::Instant,
    pub(crate) k: TxKey,
    pub(crate) req: Message,
    pub(crate) src: crate::transport::Dest,
    pub(crate) plan: crate::policy::RoutePlan,
    pub(crate) user: String,
}

/// What a dialog key maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A live leg of the call (0 caller side, 1 callee side).
    Live(usize),
    /// The new leg of a transfer in progress.
    Transfer,
    /// A transferor's leg, released.
    Released,
}

/// While calls wait for the datapath's `Created`, the shell is woken this often to read it (the
/// ring has no file descriptor to wait on).
pub(crate) const MEDIA_WAKE: std::time::Duration = std::time::Duration::from_millis(1);

/// How long a new call waits for `Created` before its Create is sent again.
pub(crate) const MEDIA_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// Call-level timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CallTimer {
    /// `sip.no_answer_timeout_secs` since the INVITE.
    NoAnswer,
    /// Gives up waiting for the callee's final after a CANCEL.
    Guard,
    /// The datapath has not confirmed the session yet: the Create is sent again (a command lost
    /// on a damaged ring; a duplicate is answered `DuplicateSession`, taken as confirmation).
    MediaRetry,
    /// The datapath never confirmed the session: `503` to the caller.
    MediaGuard,
    /// The call's attempt N (counted over every target and route entry, `cdr.attempts`)
    /// sent nothing within `sip.target_timeout_ms`.
    TargetTimeout(usize),
    /// `sip.hunt_timeout_secs` since the INVITE and no target has answered.
    HuntBudget,
    /// Session timer: refresh leg N (UPDATE).
    Refresh(u8),
    /// Session timer: leg N's session ends unless refreshed since generation G.
    Expiry(u8, u32),
}

impl Core {
    /// A call of `src` is no longer pending (confirmed or ended).
    pub(crate) fn unpend(&mut self, src: Option<std::net::IpAddr>) {
        let Some(ip) = src else { return };
        if let Some(n) = self.pending.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(&ip);
            }
        }
    }
}

impl Call {
    /// Ringing toward no one yet: the callee-side INVITE is out and no response came back.
    pub(crate) fn silent_target(&self) -> bool {
        self.state == State::Proceeding && !self.b_waits_media && !self.b_provisional && self.b_ctx.is_some()
    }
}

/// The one-way media timeout of each leg (ms): its trunk's, or none for a leg whose peer said it
/// will not send (`recvonly`/`inactive`: held, or holding without music) — silence is expected.
pub(crate) fn leg_timeouts(call: &Call) -> [u32; 2] {
    let mut t = [0; 2];
    for (i, leg) in call.legs.iter().enumerate() {
        let dir = leg.remote_sdp.as_ref().and_then(|s| s.remote().ok()).map(|r| r.direction);
        let silent = matches!(dir, Some("recvonly" | "inactive"));
        t[i] = if silent { 0 } else { call.cfg.trunk(leg.trunk).leg_timeout_secs.saturating_mul(1000) };
    }
    t
}

/// The dialog table key: Call-ID and our tag.
pub(crate) fn dkey(call_id: &str, local_tag: &str) -> String {
    let mut k = String::with_capacity(call_id.len() + local_tag.len() + 1);
    k.push_str(call_id);
    k.push('|');
    k.push_str(local_tag);
    k
}

/// The user part of a `sip:`/`sips:` URI, or the number of a `tel:` URI.
pub(crate) fn user_of(uri: &str) -> String {
    if let Ok(u) = Uri::parse(uri) {
        return u.user.unwrap_or_default();
    }
    if let Some(t) = uri.strip_prefix("tel:") {
        return t.split(';').next().unwrap_or("").to_string();
    }
    String::new()
}

/// Resolves a URI to a socket address when its host is an IP literal.
pub(crate) fn uri_addr(uri: &str) -> Option<(SocketAddr, Option<Transport>)> {
    let u = Uri::parse(uri).ok()?;
    let ip: IpAddr = u.host.parse().ok()?;
    let t = u.transport().and_then(|t| Transport::from_token(&t));
    let port = u.port.unwrap_or(if u.scheme == "sips" { 5061 } else { 5060 });
    Some((SocketAddr::new(ip, port), t))
}

/// A datapath leg toward the peer described by `r`. `signal_ip` is where the leg's SIP comes
/// from (the caller's INVITE source; the callee's trunk target): besides the SDP address's IP,
/// the only IP the datapath lets the leg's media latch to (NAT).
pub(crate) fn remote_spec(
    r: &sdp::Remote,
    local: SocketAddr,
    latch: LatchPolicy,
    signal_ip: Option<IpAddr>,
) -> LegSpec {
    LegSpec {
        local,
        remote: r.addr,
        remote_rtcp_port: r.rtcp_port,
        rtcp_mux: r.rtcp_mux,
        latch,
        signal_ip,
        pt_map: r.pt_map(),
        crypto: LegCrypto::default(),
        ptime_ms: r.ptime_ms,
    }
}

/// The latching policy of a trunk's leg (the trunk's, or `[media].latch`, settled at load).
pub(crate) fn latch_of(t: &TrunkView) -> LatchPolicy {
    match t.latch {
        xtrunk_config::Latch::Once => LatchPolicy::Once,
        xtrunk_config::Latch::Follow => LatchPolicy::Follow,
        xtrunk_config::Latch::Strict => LatchPolicy::Strict,
    }
}

/// Codecs both trunks allow, in `to`'s preference order (no telephone-event toward a
/// `dtmf = "inband"` trunk).
pub(crate) fn common_codecs(to: &TrunkView, from: &TrunkView) -> Vec<Codec> {
    codecs_of(to).into_iter().filter(|c| from.codecs.contains(c)).collect()
}

/// A trunk's codecs, in preference order (no telephone-event for a `dtmf = "inband"` trunk).
pub(crate) fn codecs_of(t: &TrunkView) -> Vec<Codec> {
    let inband = t.dtmf == xtrunk_config::Dtmf::Inband;
    t.codecs.iter().filter(|c| !(inband && **c == Codec::TelephoneEvent)).copied().collect()
}

/// Telephone-event on the two legs' negotiated payloads by the trunks' `dtmf`: never on an
/// in-band trunk's leg; kept on the caller's leg (as it offered it) when the callee's trunk is
/// in-band, so that the relay turns the callee's tones into the caller's events and back.
pub(crate) fn dtmf_payloads(
    a_neg: &mut sdp::Remote,
    b: &mut sdp::Remote,
    a: &sdp::Remote,
    tin: &TrunkView,
    tout: &TrunkView,
) {
    use xtrunk_config::Dtmf;
    let te = |n: &String| n.eq_ignore_ascii_case("telephone-event");
    if tin.dtmf == Dtmf::Inband {
        a_neg.payloads.retain(|(_, n)| !te(n));
    }
    if tout.dtmf == Dtmf::Inband {
        b.payloads.retain(|(_, n)| !te(n));
        if tin.dtmf != Dtmf::Inband && !a_neg.payloads.iter().any(|(_, n)| te(n)) {
            if let Some(e) = a.payloads.iter().find(|(_, n)| te(n)) {
                a_neg.payloads.push(e.clone());
            }
        }
    }
}

/// A trunk's SRTP settings as the offer/answer needs them, for a leg signalled over TLS
/// (`tls`: `srtp_with_tls` makes SRTP mandatory) or not.
pub(crate) fn srtp_prefs(t: &TrunkView, tls: bool) -> sdp::SrtpPrefs {
    sdp::SrtpPrefs::of_leg(t, tls)
}

/// Whether `uri` is a `sips:` URI.
pub(crate) fn is_sips(uri: &str) -> bool {
    uri.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// Whether slot `s` of `call` is the caller whose INVITE had a `sips:` Request-URI (RFC 3261
/// §12.1.1: then our Contact toward it is `sips:` for the dialog's life).
pub(crate) fn sips_leg(call: &Call, s: usize) -> bool {
    s == 0
        && call.a_invite.uri().is_some_and(is_sips)
        && call.a_invite.from_tag() == Some(call.legs[0].dlg.remote_tag.as_str())
}

/// Whether a leg's signaling runs over TLS.
pub(crate) fn leg_tls(leg: &Leg) -> bool {
    leg.dlg.dest.transport == crate::transport::Transport::Tls
}

/// Whether calls toward `t` are signalled over TLS (for its offer: one of its targets is TLS,
/// and the offer is made once for every target the call may fail over to).
pub(crate) fn tls_toward(t: &TrunkView) -> bool {
    t.targets.iter().any(|x| x.transport == xtrunk_config::Transport::Tls)
}

/// `host:port` of a socket address as a URI host part (IPv6 bracketed).
/// Which of `targets` (sorted by priority) attempt `i` of a hunt that began at `first` uses:
/// `first`'s group in rotation, then the other targets in list order. With one group this is
/// `(first + i) % n`.
pub(crate) fn hunt_index(targets: &[xtrunk_config::Target], first: usize, i: usize) -> Option<usize> {
    let n = targets.len();
    if i >= n || first >= n {
        return None;
    }
    let p = targets[first].priority;
    let start = targets.iter().position(|t| t.priority == p).unwrap_or(0);
    let len = targets[start..].iter().take_while(|t| t.priority == p).count();
    if i < len {
        return Some(start + (first - start + i) % len);
    }
    let j = i - len;
    Some(if j < start { j } else { j + len })
}

pub(crate) fn uri_host(a: SocketAddr) -> String {
    match a {
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        a => a.to_string(),
    }
}

impl Core {
    /// The call and slot an in-dialog request belongs to (Call-ID and our tag).
    pub(crate) fn lookup(&self, req: &Message) -> Option<(CallKey, Slot)> {
        let cid = req.call_id()?;
        let tag = req.to_tag()?;
        self.dialogs.get(&dkey(cid, tag)).copied()
    }

    /// Where in-dialog requests to a peer go: the flow for reliable transports, else the first
    /// route or the remote target when they name an IP literal, else the flow.
    pub(crate) fn dialog_dest(&self, flow: Dest, target: Option<&str>, route_set: &[String]) -> Dest {
        if flow.transport.reliable() {
            return flow;
        }
        let first = route_set.first().and_then(|r| NameAddr::parse(r).ok()).map(|n| n.uri);
        let uri = first.as_deref().or(target);
        match uri.and_then(uri_addr) {
            Some((addr, t)) if t.is_none_or(|t| t == flow.transport) => Dest { remote: addr, ..flow },
            _ => flow,
        }
    }

    /// Sends an in-dialog request on slot `s`; returns the transaction key.
    pub(crate) fn send_in_dialog(
        &mut self,
        now: Instant,
        id: CallKey,
        s: usize,
        method: Method,
        body: Option<(&str, Vec<u8>)>,
        purpose: Purpose,
    ) -> Option<TxKey> {
        let call = self.calls.get(&id)?;
        let (d, sips) = (call.legs[s].dlg.dest, sips_leg(call, s));
        let via = self.via(d);
        let contact = self.contact_as(d, sips);
        let call = self.calls.get_mut(&id)?;
        let m = call.legs[s].dlg.request(method, via, contact, body);
        self.journal_dirty.insert(id);
        Some(self.txs.send_request(now, m, d, Owner::Call(id, purpose)))
    }

    /// Sends the ACK of a 2xx on a dialog (no transaction; RFC 3261 §13.2.2.4).
    pub(crate) fn ack_on(&mut self, dlg: &Dialog) -> crate::transport::Transmit {
        let d = dlg.dest;
        let via = self.via(d);
        let t = crate::transport::Transmit { dest: d, data: dlg.ack(via).to_bytes() };
        self.out.push_back(t.clone());
        t
    }

    /// A new call number.
    pub(crate) fn next_call(&mut self) -> CallKey {
        let id = self.next;
        self.next += 1;
        CallKey(id)
    }

    /// True when `src` may speak for leg `s` of a call: the address we send its requests to,
    /// its remote target, or an address of its trunk (ACL networks, targets). Identifiers alone
    /// are not proof (an outsider who learnt a Call-ID and tag must not end or steer a call).
    pub(crate) fn is_peer(&self, id: CallKey, s: usize, src: Dest) -> bool {
        let Some(call) = self.calls.get(&id) else { return false };
        let leg = &call.legs[s];
        let ip = src.remote.ip();
        let trunk = call.cfg.trunk(leg.trunk);
        ip == leg.dlg.dest.remote.ip()
            || uri_addr(&leg.dlg.remote_target).is_some_and(|(a, _)| a.ip() == ip)
            || trunk.acl.iter().any(|n| n.contains(&ip))
            || trunk.targets.iter().any(|t| t.addr.ip() == ip)
    }

    /// The in-dialog request dispatcher (requests with a To tag).
    pub(crate) fn in_dialog(&mut self, now: Instant, k: TxKey, req: Message, src: Dest) {
        let method = req.method().cloned().unwrap_or(Method::Options);
        let Some((id, slot)) = self.lookup(&req) else {
            return self.reply(now, &k, &req, 481, crate::sip::status::reason(481));
        };
        let _span = self.span_of(id).entered();
        let s = match slot {
            Slot::Live(s) if !self.is_peer(id, s, src) => {
                self.metrics.bad("Not From Dialog Peer", || format!("{method} from {}", src.remote));
                return self.reply(now, &k, &req, 403, "Not From Dialog Peer");
            }
            Slot::Live(s) => s,
            Slot::Released | Slot::Transfer => {
                let code = if method == Method::Bye { 200 } else { 481 };
                return self.reply(now, &k, &req, code, crate::sip::status::reason(code));
            }
        };
        if let (Some(c), Some(seq)) = (self.calls.get_mut(&id), req.cseq().map(|c| c.seq)) {
            c.legs[s].dlg.remote_cseq = c.legs[s].dlg.remote_cseq.max(seq);
            self.journal_dirty.insert(id);
        }
        match method {
            Method::Bye => self.on_bye(now, id, s, k, req),
            Method::Options => self.reply(now, &k, &req, 200, "OK"),
            Method::Invite | Method::Update => self.on_reoffer(now, id, s, k, req),
            Method::Refer => self.on_refer(now, id, s, k, req),
            Method::Cancel => self.reply(now, &k, &req, 481, crate::sip::status::reason(481)),
            _ => self.reply(now, &k, &req, 405, crate::sip::status::reason(405)),
        }
    }

    /// An ACK for a 2xx we sent (the transaction layer absorbed the others).
    pub(crate) fn on_ack(&mut self, now: Instant, req: &Message, src: Dest) {
        let Some((id, Slot::Live(s))) = self.lookup(req) else { return };
        if !self.is_peer(id, s, src) {
            return self.metrics.bad("Not From Dialog Peer", || format!("ACK from {}", src.remote));
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Some(k) = call.legs[s].pending_2xx.take() {
            self.txs.ack_2xx(now, &k);
        }
        if s == 0 && call.state == State::Answered {
            call.state = State::Confirmed;
            let src = call.pending_src.take();
            let delayed = call.delayed_offer;
            self.unpend(src);
            if delayed {
                self.delayed_answer(now, id, req);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hunt_index;
    use xtrunk_config::Target;

    fn targets(prios: &[u16]) -> Vec<Target> {
        prios
            .iter()
            .enumerate()
            .map(|(i, p)| Target { priority: *p, ..Target::udp(([192, 0, 2, 1], 5060 + i as u16).into()) })
            .collect()
    }

    #[test]
    fn a_hunt_finishes_its_priority_group_before_the_next() {
        let t = targets(&[0, 0, 0, 1, 2]);
        let order = |first| (0..6).map(|i| hunt_index(&t, first, i)).collect::<Vec<_>>();
        assert_eq!(order(1), [Some(1), Some(2), Some(0), Some(3), Some(4), None]);
        assert_eq!(order(0), [Some(0), Some(1), Some(2), Some(3), Some(4), None]);
        // One group: plain rotation.
        let one = targets(&[0, 0, 0]);
        assert_eq!((0..3).map(|i| hunt_index(&one, 2, i)).collect::<Vec<_>>(), [Some(2), Some(0), Some(1)]);
        // Starting in a later group (its earlier groups come after).
        assert_eq!(order(3), [Some(3), Some(0), Some(1), Some(2), Some(4), None]);
    }
}
