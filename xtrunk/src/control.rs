//! The sidecar's control thread: one plain thread with a small HTTP/1.1 server (one request per
//! connection, 8 KiB of head at most, 2 s to send it) serving `GET /metrics` and the admin API (`crate::admin`, `/api/v1/`) in the Prometheus
//! text format 0.0.4 (a small encoder of our own: `prometheus-client` writes OpenMetrics, whose
//! `_total`-less HELP/TYPE names `promtool check metrics` refuses). It reads what the SIP loop published
//! (`xtrunk_signaling::ops`) and never touches the loop itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use xtrunk_cdrstore::writer::WriterStats;
use xtrunk_signaling::ops::{OpsSnapshot, Published};

use crate::admin::Request;

/// Bytes of request head read at most.
const HEAD_MAX: usize = 8 << 10;

/// What the control thread serves from.
pub(crate) struct Sources {
    pub(crate) published: Published,
    pub(crate) writer: Option<Arc<WriterStats>>,
    /// How many times the supervisor started a sidecar (this one included).
    pub(crate) sidecar_starts: u64,
    /// The admin API, when on.
    pub(crate) admin: Option<crate::admin::Admin>,
}

/// The datapath process's `GET /metrics`, from `render`, on a thread of its own (never a relay
/// core: it is not pinned).
pub(crate) fn spawn_datapath(addr: SocketAddr, render: impl Fn() -> String + Send + 'static) -> anyhow::Result<()> {
    let l = TcpListener::bind(addr).with_context(|| format!("control.datapath_listen: bind {addr}"))?;
    log::info!("datapath metrics on http://{}/metrics", l.local_addr()?);
    std::thread::Builder::new().name("dp-metrics".into()).spawn(move || {
        for mut s in l.incoming().flatten() {
            let r = read_request(&mut s).and_then(|r| match (r.method.as_str(), r.path.as_str()) {
                ("GET", "/metrics") => {
                    respond(&mut s, 200, "text/plain; version=0.0.4; charset=utf-8", render().as_bytes())
                }
                _ => respond(&mut s, 404, "text/plain", b"not found\n"),
            });
            if let Err(e) = r {
                log::debug!("datapath metrics: {e}");
            }
        }
    })?;
    Ok(())
}

/// The socket backend's counters in the Prometheus text format.
pub(crate) fn render_datapath(st: &xtrunk_datapath::socket::Stats) -> String {
    use xtrunk_datapath::relay::DropReason;
    let mut t = Text::default();
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counters(
        &mut t,
        "xtrunk_datapath_rx_packets_total",
        "Datagrams received on media sockets.",
        one(l(&st.rx_packets)),
    );
    counters(&mut t, "xtrunk_datapath_tx_packets_total", "Datagrams forwarded.", one(l(&st.tx_packets)));
    counters(&mut t, "xtrunk_datapath_tx_errors_total", "Datagrams the kernel refused to send.", one(l(&st.tx_errors)));
    counters(&mut t, "xtrunk_datapath_rx_batches_total", "recvmmsg calls that returned data.", one(l(&st.rx_batches)));
    let drops = DropReason::ALL.iter().map(|r| (labels(&[("reason", r.name())]), st.drops(*r)));
    counters(&mut t, "xtrunk_datapath_drops_total", "Packets dropped, by reason.", drops);
    gauges(&mut t, "xtrunk_datapath_sessions", "Sessions held.", [(Labels::new(), l(&st.sessions) as i64)]);
    t.0
}

/// The AF_XDP backend's snapshot (taken once a second by its control loop) in the same format:
/// per worker (queue) frames, drops by reason; the XDP program's verdicts (fast-path share =
/// `fast_tx` + `fast_redirect` over all); XSK ring drops per queue; fast-path sessions.
pub(crate) fn render_xsk(st: &xtrunk_datapath::xsk::RuntimeStats) -> String {
    let mut t = Text::default();
    let q = |w: &xtrunk_datapath::xsk::WorkerStats| w.queue.to_string();
    let per = |f: fn(&xtrunk_datapath::xsk::WorkerStats) -> u64| {
        st.workers.iter().map(move |w| (labels(&[("queue", &q(w))]), f(w))).collect::<Vec<_>>()
    };
    counters(&mut t, "xtrunk_datapath_worker_rx_frames_total", "Frames received, per worker (queue).", per(|w| w.rx));
    counters(&mut t, "xtrunk_datapath_worker_tx_frames_total", "Frames sent, per worker (queue).", per(|w| w.tx));
    let drops = st.workers.iter().flat_map(|w| {
        [("relay", w.drop_relay), ("no_route", w.drop_no_route), ("malformed", w.drop_malformed)]
            .map(|(r, n)| (labels(&[("queue", &q(w)), ("reason", r)]), n))
    });
    counters(&mut t, "xtrunk_datapath_worker_drops_total", "Frames dropped per worker, by reason.", drops);
    let verdicts = xtrunk_ebpf::Counter::ALL.iter().map(|c| (labels(&[("verdict", c.name())]), st.counter(*c)));
    counters(&mut t, "xtrunk_datapath_xdp_verdicts_total", "XDP program verdicts, by reason.", verdicts);
    let ring = st.xsk.iter().map(|(i, qn, x)| (labels(&[("interface", i), ("queue", &qn.to_string())]), x.rx_dropped));
    counters(&mut t, "xtrunk_datapath_xsk_rx_dropped_total", "Frames the kernel could not deliver to the XSK.", ring);
    gauges(
        &mut t,
        "xtrunk_datapath_fast_path_ports",
        "Session ports on the XDP fast path.",
        [(Labels::new(), st.fast_ports as i64)],
    );
    t.0
}

/// Binds `addr` and serves on a thread of its own.
pub(crate) fn spawn(addr: SocketAddr, src: Sources) -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind(addr).with_context(|| format!("metrics.listen: bind {addr}"))?;
    let bound = l.local_addr()?;
    let admin = src.admin.is_some();
    std::thread::Builder::new().name("control".into()).spawn(move || {
        for s in l.incoming() {
            match s {
                Ok(s) => {
                    if let Err(e) = serve(s, &src) {
                        log::debug!("control: {e}");
                    }
                }
                Err(e) => log::debug!("control accept: {e}"),
            }
        }
    })?;
    log::info!("control on http://{bound}: /metrics, admin API {}", if admin { "on (/api/v1/)" } else { "off" });
    Ok(bound)
}

/// Bytes of request body read at most (admin API changes).
const BODY_MAX: usize = 1 << 20;

/// Reads one request: the head (at most [`HEAD_MAX`]) and a `Content-Length` body (at most
/// [`BODY_MAX`]), with 2 s between reads.
fn read_request(s: &mut TcpStream) -> std::io::Result<Request> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf)?;
        if n == 0 || data.len() + n > HEAD_MAX + BODY_MAX {
            return Err(std::io::Error::other("incomplete or oversized request"));
        }
        data.extend_from_slice(&buf[..n]);
        if data.len() > HEAD_MAX && !data[..HEAD_MAX].windows(4).any(|w| w == b"\r\n\r\n") {
            return Err(std::io::Error::other("oversized request head"));
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
    let (mut length, mut authorization) = (0, None);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        if k.trim().eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().map_err(|_| std::io::Error::other("bad Content-Length"))?;
        } else if k.trim().eq_ignore_ascii_case("authorization") {
            authorization = Some(v.trim().to_string());
        }
    }
    if length > BODY_MAX {
        return Err(std::io::Error::other("body too large"));
    }
    let mut body = data[end..].to_vec();
    while body.len() < length {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other("incomplete body"));
        }
        body.extend_from_slice(&buf[..n]);
    }
    body.truncate(length);
    Ok(Request { method, path, authorization, body })
}

fn respond(s: &mut TcpStream, status: u16, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        _ => "Error",
    };
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let auth = if status == 401 { "WWW-Authenticate: Bearer\r\n" } else { "" };
    write!(
        s,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)
}

fn serve(mut s: TcpStream, src: &Sources) -> std::io::Result<()> {
    let r = read_request(&mut s)?;
    let path = r.path.split('?').next().unwrap_or("").to_string();
    match (r.method.as_str(), path.as_str()) {
        ("GET", "/metrics") => {
            let snap = src.published.lock().map(|g| g.clone()).unwrap_or_default();
            let body = render(&snap, src);
            respond(&mut s, 200, "text/plain; version=0.0.4; charset=utf-8", body.as_bytes())
        }
        (_, p) if p.starts_with("/api/v1/") && src.admin.is_some() => {
            let (status, v) = src.admin.as_ref().expect("checked").handle(&Request { path: path.clone(), ..r });
            let mut body = serde_json::to_vec_pretty(&v).unwrap_or_default();
            body.push(b'\n');
            respond(&mut s, status, "application/json", &body)
        }
        ("GET", _) => respond(&mut s, 404, "text/plain", b"not found\n"),
        _ => respond(&mut s, 405, "text/plain", b"method not allowed\n"),
    }
}

type Labels = Vec<(String, String)>;

fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

/// The Prometheus text exposition format 0.0.4 (what `promtool check metrics` reads): one
/// `# HELP`/`# TYPE` pair per family, label values escaped (`\\`, `\"`, `\n`).
#[derive(Default)]
struct Text(String);

impl Text {
    fn family<N: std::fmt::Display>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        rows: impl IntoIterator<Item = (Labels, N)>,
    ) {
        use std::fmt::Write as _;
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (l, v) in rows {
            self.0.push_str(name);
            if !l.is_empty() {
                let kv: Vec<String> = l
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
                    })
                    .collect();
                let _ = write!(self.0, "{{{}}}", kv.join(","));
            }
            let _ = writeln!(self.0, " {v}");
        }
    }
}

/// A counter family; `name` ends in `_total`.
fn counters(t: &mut Text, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, u64)>) {
    t.family(name, "counter", help, rows);
}

fn gauges(t: &mut Text, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, i64)>) {
    t.family(name, "gauge", help, rows);
}

fn one(v: u64) -> [(Labels, u64); 1] {
    [(Labels::new(), v)]
}

/// The Prometheus text for one snapshot.
pub(crate) fn render(s: &OpsSnapshot, src: &Sources) -> String {
    let mut reg = Text::default();
    let m = &s.metrics;
    let by_trunk = |map: &std::collections::BTreeMap<String, u64>| {
        map.iter().map(|(t, n)| (labels(&[("trunk", t)]), *n)).collect::<Vec<_>>()
    };
    counters(
        &mut reg,
        "xtrunk_calls_attempted_total",
        "New calls (routed or refused), by inbound trunk.",
        by_trunk(&m.attempts),
    );
    let ended = |f: &dyn Fn(&xtrunk_signaling::ops::Ended) -> u64| {
        s.ended
            .iter()
            .map(|((ti, a, to), e)| (labels(&[("trunk", ti), ("account", a), ("trunk_out", to)]), f(e)))
            .collect::<Vec<_>>()
    };
    counters(&mut reg, "xtrunk_calls_ended_total", "Calls ended (one per CDR).", ended(&|e| e.calls));
    counters(&mut reg, "xtrunk_calls_answered_total", "Calls answered, counted when they end.", ended(&|e| e.answered));
    let failed = s.ended.iter().flat_map(|((ti, a, to), e)| {
        e.failed.iter().map(move |(c, n)| {
            (labels(&[("trunk", ti), ("account", a), ("trunk_out", to), ("code", &c.to_string())]), *n)
        })
    });
    counters(&mut reg, "xtrunk_calls_failed_total", "Calls not answered, by the final status to the caller.", failed);
    let per_leg = |f: fn(&xtrunk_signaling::ops::Ended) -> [u64; 2]| {
        let mut rows = Vec::new();
        for ((ti, _, _), e) in &s.ended {
            for (i, leg) in ["caller", "callee"].into_iter().enumerate() {
                rows.push((labels(&[("trunk", ti), ("leg", leg)]), f(e)[i]));
            }
        }
        merge(rows)
    };
    counters(
        &mut reg,
        "xtrunk_media_packets_total",
        "RTP packets received per leg, of ended calls.",
        per_leg(|e| e.packets),
    );
    counters(&mut reg, "xtrunk_media_lost_total", "RTP packets lost per leg, of ended calls.", per_leg(|e| e.lost));
    counters(
        &mut reg,
        "xtrunk_media_mos_x100_total",
        "E-model MOS x 100 per leg, summed over the ended calls' rated legs (divide by xtrunk_media_rated_total).",
        per_leg(|e| e.mos_x100),
    );
    counters(
        &mut reg,
        "xtrunk_media_rated_total",
        "Legs of ended calls the datapath rated with the E-model (G.107).",
        per_leg(|e| e.rated),
    );
    gauges(
        &mut reg,
        "xtrunk_active_calls",
        "Calls up now, by inbound trunk.",
        by_trunk(&s.active).into_iter().map(|(l, n)| (l, n as i64)),
    );
    let p = &m.probes;
    let probes =
        [("sent", p.sent), ("failed", p.failed), ("went_offline", p.went_offline), ("came_online", p.came_online)];
    counters(
        &mut reg,
        "xtrunk_options_probes_total",
        "OPTIONS health probes toward trunk targets, by outcome.",
        probes.map(|(r, n)| (labels(&[("event", r)]), n)),
    );
    gauges(
        &mut reg,
        "xtrunk_target_online",
        "1 while an OPTIONS-probed trunk target is online, 0 while offline.",
        s.targets.iter().map(|(t, a, up)| (labels(&[("trunk", t), ("target", a)]), i64::from(*up))),
    );
    let r = &m.registrations;
    let regs = [
        ("sent", r.sent),
        ("challenged", r.challenged),
        ("failed", r.failed),
        ("came_up", r.came_up),
        ("went_down", r.went_down),
    ];
    counters(
        &mut reg,
        "xtrunk_registrations_total",
        "Upstream REGISTERs of register trunks and their outcomes, by event.",
        regs.map(|(e, n)| (labels(&[("event", e)]), n)),
    );
    gauges(
        &mut reg,
        "xtrunk_registration_up",
        "1 while a register trunk's registration holds a binding at its registrar, 0 while not.",
        s.registrations.iter().map(|(t, a, up, _)| (labels(&[("trunk", t), ("registrar", a)]), i64::from(*up))),
    );
    if let Some(sh) = &s.shared {
        gauges(
            &mut reg,
            "xtrunk_shared_store_up",
            "1 while the [shared] counter store is used, 0 while this edge decides alone on its share.",
            [(Labels::new(), i64::from(sh.up))],
        );
        let ev = [("failure", sh.failures), ("degraded_admit", sh.degraded_admits), ("round_trip", sh.round_trips)];
        counters(
            &mut reg,
            "xtrunk_shared_store_total",
            "The [shared] counter store: round trips, failures (unreachable or slower than timeout_ms) and calls admitted alone.",
            ev.map(|(e, n)| (labels(&[("event", e)]), n)),
        );
    }
    render_process(&mut reg, s, src);
    reg.0
}

/// Digest authentication and the per-source ban (issue #14).
fn render_auth(reg: &mut Text, a: &xtrunk_signaling::metrics::AuthMetrics) {
    counters(
        reg,
        "xtrunk_auth_challenges_total",
        "Digest challenges (407) sent, stale ones included.",
        one(a.challenges),
    );
    counters(reg, "xtrunk_auth_stale_total", "Digest challenges sent with stale=true.", one(a.stale));
    let ok = a.ok.iter().map(|(t, n)| (labels(&[("trunk", t)]), *n));
    counters(reg, "xtrunk_auth_ok_total", "Requests authenticated by digest, by trunk.", ok);
    let failed = a.failed.iter().map(|(r, n)| (labels(&[("reason", r)]), *n));
    counters(reg, "xtrunk_auth_failed_total", "Digest credentials refused, by reason.", failed);
    counters(reg, "xtrunk_auth_bans_total", "Sources banned after repeated failures.", one(a.bans));
    counters(reg, "xtrunk_auth_banned_drops_total", "Requests from banned sources, dropped.", one(a.banned_drops));
    counters(
        reg,
        "xtrunk_unknown_source_drops_total",
        "Requests from sources in no ACL dropped (sip.unknown_source = \"drop\").",
        one(a.unknown_dropped),
    );
}

/// Load shedding of new calls (issue #20).
fn render_overload(reg: &mut Text, o: &xtrunk_signaling::overload::OverloadMetrics) {
    counters(
        reg,
        "xtrunk_calls_shed_total",
        "New INVITEs shed under load (503 with Retry-After, before any call state).",
        one(o.shed),
    );
    counters(reg, "xtrunk_overload_episodes_total", "Times the edge began shedding new calls.", one(o.episodes));
    reg.family(
        "xtrunk_sip_loop_lag_seconds",
        "gauge",
        "How long the SIP loop has been behind its input (0: it drained every socket last round).",
        [(Labels::new(), o.loop_lag_ms as f64 / 1000.0)],
    );
    gauges(
        reg,
        "xtrunk_ring_fill_percent",
        "The fuller direction of the session ring, percent used.",
        [(Labels::new(), i64::from(o.ring_fill_pct))],
    );
    gauges(
        reg,
        "xtrunk_overload_admit_percent",
        "Percent of new calls admitted (100: nothing is shed).",
        [(Labels::new(), i64::from(o.admit_pct))],
    );
}

/// Rejects, finals, restarts, the ring, TCP limits, reloads and the CDR store.
fn render_process(reg: &mut Text, s: &OpsSnapshot, src: &Sources) {
    let m = &s.metrics;
    let rejects = m.bad_input.iter().map(|(r, n)| (labels(&[("reason", r)]), *n));
    counters(reg, "xtrunk_rejects_total", "Input refused or dropped, by reason.", rejects);
    let finals = m.finals_to_caller.iter().map(|(c, n)| (labels(&[("code", &c.to_string())]), *n));
    counters(reg, "xtrunk_finals_to_caller_total", "Final responses sent to callers, by code.", finals);
    counters(
        reg,
        "xtrunk_calls_recovered_total",
        "Answered calls resumed after a sidecar restart.",
        one(m.calls_recovered),
    );
    counters(
        reg,
        "xtrunk_calls_released_on_restart_total",
        "Calls ended because a restart could not resume them.",
        one(m.calls_released_on_restart),
    );
    counters(
        reg,
        "xtrunk_media_backpressure_total",
        "Commands that waited on a full ring (back-pressure).",
        one(m.media_backpressure),
    );
    counters(reg, "xtrunk_media_errors_total", "Errors reported by the datapath.", one(m.media_errors));
    let t = &m.tcp;
    let tcp = [
        ("cap_total", t.refused_cap_total),
        ("cap_source", t.refused_cap_source),
        ("acl", t.refused_acl),
        ("idle", t.closed_idle),
        ("oversize_read", t.closed_oversize_read),
        ("write_overflow", t.closed_write_overflow),
        ("tls_failed", t.tls_failed),
        ("tls_peer_name", t.tls_peer_refused),
    ];
    counters(
        reg,
        "xtrunk_tcp_refused_total",
        "TCP/TLS connections refused or closed by a limit or a failed TLS handshake.",
        tcp.map(|(r, n)| (labels(&[("reason", r)]), n)),
    );
    render_auth(reg, &m.auth);
    render_overload(reg, &m.overload);
    let reloads = [("applied", s.reloads), ("refused", s.reloads_refused)];
    counters(
        reg,
        "xtrunk_config_reloads_total",
        "SIGHUP reloads, applied or refused.",
        reloads.map(|(r, n)| (labels(&[("result", r)]), n)),
    );
    counters(
        reg,
        "xtrunk_sidecar_restarts_total",
        "Sidecar restarts by the supervisor.",
        one(src.sidecar_starts.saturating_sub(1)),
    );
    if let Some(w) = &src.writer {
        let l = |o: &std::sync::atomic::AtomicU64| o.load(Ordering::Relaxed);
        counters(
            reg,
            "xtrunk_cdr_store_rows_total",
            "CDR rows inserted by this sidecar's writer.",
            one(l(&w.inserted)),
        );
        counters(
            reg,
            "xtrunk_cdr_store_duplicates_total",
            "CDRs already stored (replays after a crash).",
            one(l(&w.duplicates)),
        );
        counters(reg, "xtrunk_cdr_store_errors_total", "Failed CDR store connects or commits.", one(l(&w.errors)));
        gauges(
            reg,
            "xtrunk_cdr_store_connected",
            "1 while the CDR store is reachable.",
            [(Labels::new(), l(&w.connected) as i64)],
        );
    }
}

/// Sums rows with the same labels.
fn merge(rows: Vec<(Labels, u64)>) -> Vec<(Labels, u64)> {
    let mut m = std::collections::BTreeMap::new();
    for (l, n) in rows {
        *m.entry(l).or_insert(0) += n;
    }
    m.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_only_uses_metrics_we_export() {
        let mut snap = OpsSnapshot::default();
        snap.metrics.attempts.insert("pbx".into(), 3);
        snap.active.insert("pbx".into(), 1);
        let mut c = xtrunk_signaling::ops::EndedCounter::default();
        c.count(&xtrunk_signaling::cdr::Cdr { trunk_in: "pbx".into(), disposition: 486, ..Default::default() });
        snap.ended = c.snapshot();
        let src =
            Sources { published: Published::default(), writer: Some(Arc::default()), sidecar_starts: 1, admin: None };
        let mut xsk = xtrunk_datapath::xsk::RuntimeStats::default();
        xsk.workers.push(xtrunk_datapath::xsk::WorkerStats { queue: 1, rx: 5, drop_relay: 2, ..Default::default() });
        let x = render_xsk(&xsk);
        assert!(x.contains("xtrunk_datapath_worker_drops_total{queue=\"1\",reason=\"relay\"} 2"), "{x}");
        assert!(x.contains("xtrunk_datapath_xdp_verdicts_total{verdict=\"fast_tx\"} 0"), "{x}");
        let text = render(&snap, &src) + &render_datapath(&Default::default()) + &x;
        assert!(
            text.contains("xtrunk_calls_failed_total{trunk=\"pbx\",account=\"\",trunk_out=\"\",code=\"486\"} 1"),
            "{text}"
        );
        let dash = include_str!("../../ops/grafana/xtrunk.json");
        let mut rest = dash;
        while let Some(i) = rest.find("xtrunk_") {
            let name: String =
                rest[i..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit()).collect();
            rest = &rest[i + name.len()..];
            if name == "xtrunk_" || name.starts_with("xtrunk_edge") {
                continue;
            }
            assert!(text.contains(&format!("# TYPE {name} ")), "the dashboard uses {name}, which is not exported");
        }
    }
}
