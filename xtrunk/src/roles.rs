//! The datapath and signaling roles: glue from the config and the session ring to the crates.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use xtrunk_config::{Backend, Config, XdpMode};
use xtrunk_datapath::socket::{CommandSource, EventSink, SocketOptions};
use xtrunk_datapath::xsk::{XskInterface, XskMode, XskOptions};
use xtrunk_ring::msg::{Command, Event};
use xtrunk_ring::{CommandReceiver, CommandSender, EventReceiver, EventSender, FileWatch, Shm};

/// How long `xtrunk signaling` waits for the datapath's ring file to appear.
const ATTACH_WAIT: Duration = Duration::from_secs(30);
/// How often each role checks the ring file (deleted, replaced, header overwritten).
const FILE_CHECK: Duration = Duration::from_secs(1);
/// Failed re-creations of a broken ring file before the datapath stops.
const MAX_RECREATE_FAILURES: u32 = 10;

fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    Ok(stop)
}

/// A flag raised by SIGHUP. Installing it also keeps SIGHUP from killing the process (its
/// default action), whichever role receives it.
fn hup_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup)).context("installing SIGHUP handler")?;
    Ok(hup)
}

/// The datapath's command source: the ring's receiver. Corrupt slots are skipped (the receiver
/// counts them and logs a few a second).
///
/// Once a second it checks the ring file; if it was deleted, replaced or its header overwritten
/// (a sidecar could never attach again), it re-creates the ring, hands the new event sender to
/// [`RingEvents`] and keeps relaying: the restarted sidecar attaches to the new file and recovers
/// its calls from the datapath's dump. If re-creating fails [`MAX_RECREATE_FAILURES`] times in a
/// row, it stops the datapath with the error in `fatal`.
struct RingCommands {
    rx: CommandReceiver,
    watch: FileWatch,
    checked: Instant,
    failures: u32,
    cfg: RingConfig,
    new_tx: std::sync::mpsc::Sender<EventSender>,
    stop: Arc<AtomicBool>,
    fatal: Arc<std::sync::Mutex<Option<anyhow::Error>>>,
}

/// What the datapath needs to (re-)create the ring.
#[derive(Clone)]
struct RingConfig {
    path: std::path::PathBuf,
    commands: usize,
    events: usize,
}

impl RingConfig {
    fn create(&self) -> anyhow::Result<(FileWatch, CommandReceiver, EventSender)> {
        let shm = Shm::create(&self.path, self.commands, self.events)
            .with_context(|| format!("creating the session ring at {}", self.path.display()))?;
        let watch = shm.watch();
        let (rx, tx) = shm.datapath_end().context("claiming the datapath end of the session ring")?;
        Ok((watch, rx, tx))
    }
}

impl RingCommands {
    fn check_file(&mut self) {
        self.checked = Instant::now();
        let Err(why) = self.watch.verify() else { return };
        log::error!("session ring: {why}; re-creating it (media keeps flowing; the sidecar re-attaches)");
        match self.cfg.create() {
            Ok((watch, rx, tx)) => {
                log::info!("session ring re-created at {}", self.cfg.path.display());
                (self.watch, self.rx, self.failures) = (watch, rx, 0);
                let _ = self.new_tx.send(tx);
            }
            Err(e) => {
                self.failures += 1;
                log::error!("session ring: {e:#} ({} of {MAX_RECREATE_FAILURES} attempts)", self.failures);
                if self.failures >= MAX_RECREATE_FAILURES {
                    let e = e.context(format!("the session ring at {} is unusable ({why})", self.cfg.path.display()));
                    if let Ok(mut f) = self.fatal.lock() {
                        *f = Some(e);
                    }
                    self.stop.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

impl CommandSource for RingCommands {
    fn poll_command(&mut self) -> Option<Command> {
        if self.checked.elapsed() >= FILE_CHECK {
            self.check_file();
        }
        loop {
            if let Ok(cmd) = self.rx.try_recv()? {
                return Some(cmd);
            }
        }
    }
}

/// The datapath's event sink: the ring's sender. A full ring is back-pressure: the control loop
/// waits for signaling to catch up (packets keep flowing in the workers meanwhile). Only a stop
/// request makes it give an event up, counted in `dropped`.
struct RingEvents {
    tx: EventSender,
    /// A re-created ring's sender, from [`RingCommands`].
    new_tx: std::sync::mpsc::Receiver<EventSender>,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    full_log: xtrunk_ring::ratelimit::LogLimit,
}

impl EventSink for RingEvents {
    fn send_event(&mut self, ev: Event) {
        let mut waited = 0u32;
        loop {
            while let Ok(tx) = self.new_tx.try_recv() {
                self.tx = tx;
            }
            if self.tx.try_send(&ev).is_ok() {
                return;
            }
            if self.stop.load(Ordering::Relaxed) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if waited == 0 {
                if let Some(n) = self.full_log.allow(Instant::now()) {
                    let note = xtrunk_ring::ratelimit::suppressed_note(n);
                    log::warn!("session ring: events ring full; waiting for the signaling sidecar{note}");
                }
            }
            waited = waited.saturating_add(1);
            if waited < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

fn socket_options(cfg: &Config) -> SocketOptions {
    SocketOptions {
        bind_ip: cfg.media.bind_ip,
        port_min: cfg.media.port_min,
        port_max: cfg.media.port_max,
        cores: cfg.datapath.socket_cores.clone(),
        max_sessions: cfg.datapath.max_sessions,
        batch: 64,
    }
}

fn xsk_options(cfg: &Config) -> XskOptions {
    let x = &cfg.datapath.af_xdp;
    XskOptions {
        interfaces: x
            .interfaces
            .iter()
            .map(|i| XskInterface {
                name: i.name.clone(),
                queues: i.queues.iter().map(|q| q.id).collect(),
                cores: i.queues.iter().map(|q| q.core).collect(),
            })
            .collect(),
        mode: match x.mode {
            XdpMode::Auto => XskMode::Auto,
            XdpMode::Copy => XskMode::Copy,
            XdpMode::Zerocopy => XskMode::ZeroCopy,
        },
        frame_size: x.frame_size,
        frame_count: x.frame_count,
        ring_size: x.ring_size,
        fast_path: x.fast_path,
        port_min: cfg.media.port_min,
        port_max: cfg.media.port_max,
        max_sessions: cfg.datapath.max_sessions,
        ..XskOptions::default()
    }
}

/// Decides the backend; for `auto`, AF_XDP only if every interface accepts the program.
fn choose_backend(cfg: &Config) -> Backend {
    match cfg.datapath.backend {
        Backend::Auto => {
            let itfs = &cfg.datapath.af_xdp.interfaces;
            if itfs.is_empty() {
                log::info!("backend auto: no datapath.af_xdp.interfaces configured; using sockets");
                return Backend::Socket;
            }
            for itf in itfs {
                if let Err(why) = xtrunk_datapath::xsk::probe(&itf.name) {
                    log::warn!("backend auto: AF_XDP unavailable on {}: {why}; using sockets", itf.name);
                    return Backend::Socket;
                }
            }
            Backend::AfXdp
        }
        b => b,
    }
}

/// `xtrunk datapath`: create the ring, relay media until SIGINT/SIGTERM, remove the ring.
pub(crate) fn datapath(cfg: &Config) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    // Nothing in the datapath is reloadable; SIGHUP (or a SIGUSR2 meant for the sidecar's CDR
    // file, sent to the whole group) must not take the media down.
    let _hup = hup_flag()?;
    let _usr2 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, Arc::clone(&_usr2))
        .context("installing SIGUSR2 handler")?;
    let path = &cfg.node.shm_path;
    let ring = RingConfig {
        path: path.clone(),
        commands: cfg.datapath.ring.commands as usize,
        events: cfg.datapath.ring.events as usize,
    };
    let (watch, rx, tx) = ring.create()?;
    log::info!("session ring at {} (commands {}, events {})", path.display(), rx.capacity(), tx.capacity());
    let dropped = Arc::new(AtomicU64::new(0));
    let fatal = Arc::new(std::sync::Mutex::new(None));
    let (new_tx, new_rx) = std::sync::mpsc::channel();
    let cmds = RingCommands {
        rx,
        watch,
        checked: Instant::now(),
        failures: 0,
        cfg: ring,
        new_tx,
        stop: Arc::clone(&stop),
        fatal: Arc::clone(&fatal),
    };
    let events = RingEvents {
        tx,
        new_tx: new_rx,
        stop: Arc::clone(&stop),
        dropped: Arc::clone(&dropped),
        full_log: Default::default(),
    };
    let backend = choose_backend(cfg);
    let result = match backend {
        Backend::AfXdp => {
            log::info!("datapath backend: AF_XDP");
            let out = match cfg.control.datapath_listen {
                Some(addr) => {
                    let snap = Arc::new(std::sync::Mutex::new(xtrunk_datapath::xsk::RuntimeStats::default()));
                    let s = Arc::clone(&snap);
                    let render = move || s.lock().map(|g| crate::control::render_xsk(&g)).unwrap_or_default();
                    crate::control::spawn_datapath(addr, render)?;
                    Some(snap)
                }
                None => None,
            };
            xtrunk_datapath::xsk::run_with_stats(xsk_options(cfg), cmds, events, Arc::clone(&stop), out)
                .context("AF_XDP backend")
        }
        _ => {
            let o = socket_options(cfg);
            log::info!(
                "datapath backend: sockets on {} ports {}-{}, {} worker(s)",
                o.bind_ip,
                o.port_min,
                o.port_max,
                o.cores.len().max(1)
            );
            let stats = Arc::new(xtrunk_datapath::socket::Stats::default());
            if let Some(addr) = cfg.control.datapath_listen {
                let st = Arc::clone(&stats);
                crate::control::spawn_datapath(addr, move || crate::control::render_datapath(&st))?;
            }
            xtrunk_datapath::socket::run_with_stats(o, cmds, events, Arc::clone(&stop), stats).context("socket backend")
        }
    };
    let n = dropped.load(Ordering::Relaxed);
    if n > 0 {
        log::warn!("{n} event(s) not delivered at shutdown");
    }
    if let Err(e) = Shm::remove(path) {
        log::warn!("removing {}: {e}", path.display());
    }
    if let Some(e) = fatal.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    result
}

/// Signaling's end of the ring as a [`xtrunk_signaling::MediaPort`]. Once a second it checks
/// that the file is still the datapath's live ring; if not (the datapath re-created it after it
/// was deleted or corrupted, or died), it raises `stale`: the sidecar exits at once, leaving its
/// calls journaled; the supervisor restarts it, and the new one attaches and recovers them (or,
/// when the datapath no longer holds their sessions, ends them with BYE both ways and a CDR).
struct RingMedia {
    tx: CommandSender,
    rx: EventReceiver,
    watch: FileWatch,
    checked: Instant,
    stale: Arc<AtomicBool>,
}

impl RingMedia {
    fn check_file(&mut self) {
        self.checked = Instant::now();
        if !self.stale.load(Ordering::Relaxed) && self.watch.is_stale() {
            log::error!(
                "session ring at {}: no longer the datapath's live file; restarting to re-attach",
                self.watch.path().display()
            );
            self.stale.store(true, Ordering::Relaxed);
        }
    }
}

impl xtrunk_signaling::MediaPort for RingMedia {
    fn send(&mut self, cmd: &Command) -> Result<(), xtrunk_signaling::Backpressure> {
        self.tx.try_send(cmd).map_err(|_| xtrunk_signaling::Backpressure)
    }

    fn poll_event(&mut self) -> Option<Event> {
        if self.checked.elapsed() >= FILE_CHECK {
            self.check_file();
        }
        loop {
            if let Ok(ev) = self.rx.try_recv()? {
                return Some(ev);
            }
        }
    }

    fn fill_pct(&mut self) -> Option<u8> {
        let pct = |n: usize, cap: usize| (n * 100 / cap.max(1)).min(100) as u8;
        Some(pct(self.tx.len(), self.tx.capacity()).max(pct(self.rx.len(), self.rx.capacity())))
    }
}

/// The environment variable in which the supervisor tells a sidecar how many sidecars it has
/// started (this one included): `xtrunk_sidecar_restarts` on `/metrics`.
pub(crate) const SIDECAR_STARTS: &str = "XTRUNK_SIDECAR_STARTS";

/// `xtrunk signaling`: attach to the datapath's ring (waiting for it), run the B2BUA.
/// The signaling role; SIGHUP re-reads `config_file` (without one, the embedded default has
/// nothing to reload and SIGHUP is ignored).
pub(crate) fn signaling(cfg: &Config, config_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let hup = hup_flag()?;
    let path = &cfg.node.shm_path;
    let deadline = Instant::now() + ATTACH_WAIT;
    let shm = loop {
        match Shm::attach(path) {
            Ok(s) => break s,
            // Nothing to wait for: a link or another user's file stays what it is.
            Err(e @ xtrunk_ring::Error::NotOurs { .. }) => return Err(e).context("attaching to the session ring"),
            Err(e) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                log::debug!("waiting for the datapath: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e).with_context(|| format!("attaching to the session ring at {}", path.display())),
        }
    };
    let watch = shm.watch();
    let (tx, rx) = shm.signaling_end().context("claiming the signaling end of the session ring")?;
    log::info!("attached to the session ring at {}", path.display());

    let reload = config_file.map(|p| (p.to_path_buf(), Arc::clone(&hup)));
    // SIGUSR1 from the supervisor: the datapath died; end every call (BYE both ways, CDRs) and exit.
    let lost = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&lost))
        .context("installing SIGUSR1 handler")?;
    // A re-created ring: exit at once, leaving the calls to the next sidecar (it recovers them).
    let stale = Arc::new(AtomicBool::new(false));
    let media = RingMedia { tx, rx, watch, checked: Instant::now(), stale: Arc::clone(&stale) };
    // The CDR store's writer: its own thread, tailing the CDR file; never the SIP loop.
    let writer = crate::ops::start_cdr_writer(cfg)?;
    // The control thread (`/metrics`), reading what the SIP loop publishes.
    let ops = match cfg.control.listen {
        Some(addr) => {
            let published = xtrunk_signaling::ops::Published::default();
            let requests = xtrunk_signaling::ops::RequestQueue::default();
            let sidecar_starts = std::env::var(SIDECAR_STARTS).ok().and_then(|v| v.parse().ok()).unwrap_or(1);
            let writer = writer.as_ref().map(|w| Arc::clone(&w.stats));
            let admin = crate::admin::Admin::new(
                cfg,
                config_file,
                Arc::clone(&hup),
                Arc::clone(&published),
                Arc::clone(&requests),
            )?;
            let src = crate::control::Sources { published: Arc::clone(&published), writer, sidecar_starts, admin };
            crate::control::spawn(addr, src)?;
            Some((published, requests))
        }
        None => None,
    };
    // SIGUSR2: reopen the CDR file (logrotate's postrotate), nothing else.
    let reopen = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, Arc::clone(&reopen))
        .context("installing SIGUSR2 handler")?;
    let flags = xtrunk_signaling::Flags {
        reload,
        media_lost: Some(lost),
        detach: Some(Arc::clone(&stale)),
        ops,
        reopen: Some(reopen),
    };
    let ran = xtrunk_signaling::run(cfg, media, stop, flags);
    if let Some(w) = writer {
        w.stop();
    }
    ran?;
    if stale.load(Ordering::Relaxed) {
        anyhow::bail!(
            "the session ring at {} was re-created or its datapath died; exiting to re-attach",
            path.display()
        );
    }
    Ok(())
}
