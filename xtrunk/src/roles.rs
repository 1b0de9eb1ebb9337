//! The datapath and signaling roles: glue from the config and the session ring to the crates.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use xtrunk_config::{Backend, Config, XdpMode};
use xtrunk_datapath::socket::{CommandSource, EventSink, SocketOptions};
use xtrunk_datapath::xsk::{XskInterface, XskMode, XskOptions};
use xtrunk_ring::msg::{Command, Event};
use xtrunk_ring::{CommandReceiver, CommandSender, EventReceiver, EventSender, Shm};

/// How long `xtrunk signaling` waits for the datapath's ring file to appear.
const ATTACH_WAIT: Duration = Duration::from_secs(30);

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
/// counts them); each is logged.
struct RingCommands {
    rx: CommandReceiver,
}

impl CommandSource for RingCommands {
    fn poll_command(&mut self) -> Option<Command> {
        loop {
            match self.rx.try_recv()? {
                Ok(cmd) => return Some(cmd),
                Err(e) => {
                    log::warn!("session ring: rejected a corrupt command ({e}); {} rejected so far", self.rx.rejected())
                }
            }
        }
    }
}

/// The datapath's event sink: the ring's sender. A full ring is back-pressure: the control loop
/// waits for signaling to catch up (packets keep flowing in the workers meanwhile). Only a stop
/// request makes it give an event up, counted in `dropped`.
struct RingEvents {
    tx: EventSender,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
}

impl EventSink for RingEvents {
    fn send_event(&mut self, ev: Event) {
        let mut waited = 0u32;
        loop {
            if self.tx.try_send(&ev).is_ok() {
                return;
            }
            if self.stop.load(Ordering::Relaxed) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if waited == 0 {
                log::warn!("session ring: events ring full; waiting for the signaling sidecar");
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
    // Nothing in the datapath is reloadable; SIGHUP must not take the media down.
    let _hup = hup_flag()?;
    let path = &cfg.node.shm_path;
    let shm = Shm::create(path, cfg.datapath.ring.commands as usize, cfg.datapath.ring.events as usize)
        .with_context(|| format!("creating the session ring at {}", path.display()))?;
    let (rx, tx) = shm.datapath_end().context("claiming the datapath end of the session ring")?;
    log::info!("session ring at {} (commands {}, events {})", path.display(), rx.capacity(), tx.capacity());
    let dropped = Arc::new(AtomicU64::new(0));
    let cmds = RingCommands { rx };
    let events = RingEvents { tx, stop: Arc::clone(&stop), dropped: Arc::clone(&dropped) };
    let backend = choose_backend(cfg);
    let result = match backend {
        Backend::AfXdp => {
            log::info!("datapath backend: AF_XDP");
            xtrunk_datapath::xsk::run(xsk_options(cfg), cmds, events, Arc::clone(&stop)).context("AF_XDP backend")
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
            xtrunk_datapath::socket::run(o, cmds, events, Arc::clone(&stop)).context("socket backend")
        }
    };
    let n = dropped.load(Ordering::Relaxed);
    if n > 0 {
        log::warn!("{n} event(s) not delivered at shutdown");
    }
    if let Err(e) = Shm::remove(path) {
        log::warn!("removing {}: {e}", path.display());
    }
    result
}

/// Signaling's end of the ring as a [`xtrunk_signaling::MediaPort`].
struct RingMedia {
    tx: CommandSender,
    rx: EventReceiver,
}

impl xtrunk_signaling::MediaPort for RingMedia {
    fn send(&mut self, cmd: &Command) -> Result<(), xtrunk_signaling::Backpressure> {
        self.tx.try_send(cmd).map_err(|_| xtrunk_signaling::Backpressure)
    }

    fn poll_event(&mut self) -> Option<Event> {
        loop {
            match self.rx.try_recv()? {
                Ok(ev) => return Some(ev),
                Err(e) => {
                    log::warn!("session ring: rejected a corrupt event ({e}); {} rejected so far", self.rx.rejected())
                }
            }
        }
    }
}

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
            Err(e) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                log::debug!("waiting for the datapath: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e).with_context(|| format!("attaching to the session ring at {}", path.display())),
        }
    };
    let (tx, rx) = shm.signaling_end().context("claiming the signaling end of the session ring")?;
    log::info!("attached to the session ring at {}", path.display());

    let reload = config_file.map(|p| (p.to_path_buf(), hup));
    // SIGUSR1 from the supervisor: the datapath died; end every call (BYE both ways, CDRs) and exit.
    let lost = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&lost))
        .context("installing SIGUSR1 handler")?;
    xtrunk_signaling::run(cfg, RingMedia { tx, rx }, stop, reload, Some(lost))
}
