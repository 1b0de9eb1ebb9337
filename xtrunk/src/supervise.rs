//! `xtrunk run`: supervise the datapath and the signaling sidecar as two processes.
//!
//! Policy:
//! - the datapath starts first; the sidecar starts once the ring file exists;
//! - a sidecar that exits is restarted (at most [`MAX_RESTARTS`] within [`RESTART_WINDOW`]);
//!   the datapath keeps relaying meanwhile and the new sidecar recovers the session table;
//! - a datapath that exits took every call's media with it: the sidecar is told (SIGUSR1) and
//!   ends each call (BYE both ways, CDR `media_lost`) and exits; the stale ring is removed and
//!   both are started again (the same restart budget); a call left in the journal is ended by
//!   the next sidecar, whose datapath does not hold its session;
//! - SIGINT/SIGTERM: SIGTERM to the sidecar (it ends every call: BYE both ways, CDR `shutdown`)
//!   then the datapath, SIGKILL after [`STOP_GRACE`], then the shared-memory file is removed;
//! - SIGHUP is passed to the sidecar (reload); the datapath ignores it. SIGUSR2 is passed to
//!   the sidecar too (reopen the CDR file after a rotation, nothing else).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use xtrunk_config::Config;

/// Restarts (of either child) tolerated within [`RESTART_WINDOW`] before giving up.
const MAX_RESTARTS: usize = 5;
/// See [`MAX_RESTARTS`].
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// How long children get to exit after SIGTERM (the sidecar ends its calls within 3 s).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the datapath gets to create the ring.
const RING_WAIT: Duration = Duration::from_secs(20);

/// Restarts within the window.
#[derive(Default)]
struct Budget(Vec<Instant>);

impl Budget {
    /// Counts one restart; false when the budget is spent.
    fn take(&mut self) -> bool {
        self.0.retain(|t| t.elapsed() < RESTART_WINDOW);
        self.0.push(Instant::now());
        self.0.len() <= MAX_RESTARTS
    }
}

/// Runs both roles until a signal, or until a child keeps dying.
pub(crate) fn run(cfg: &Config, config_file: Option<&Path>) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    // SIGHUP means "reload": passed on to the sidecar (the datapath has nothing to reload).
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup)).context("installing SIGHUP handler")?;
    let usr2 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, Arc::clone(&usr2))
        .context("installing SIGUSR2 handler")?;
    let exe = std::env::current_exe().context("locating the xtrunk executable")?;
    let sidecars = std::cell::Cell::new(0u64);
    let spawn = |role: &str| -> anyhow::Result<Child> {
        let mut cmd = Command::new(&exe);
        cmd.arg(role);
        if role == "signaling" {
            sidecars.set(sidecars.get() + 1);
            cmd.env(crate::roles::SIDECAR_STARTS, sidecars.get().to_string());
        }
        if let Some(f) = config_file {
            cmd.arg("--config").arg(f);
        }
        cmd.spawn().with_context(|| format!("starting `xtrunk {role}`"))
    };
    let start_sidecar = || -> anyhow::Result<Child> {
        let c = spawn("signaling")?;
        log::info!("signaling sidecar started (pid {})", c.id());
        Ok(c)
    };
    let shm = cfg.node.shm_path.clone();
    let Some(mut datapath) = start_datapath(&spawn, &shm, &stop)? else { return Ok(()) };
    let mut sidecar = start_sidecar()?;
    let mut budget = Budget::default();

    let outcome = loop {
        if stop.load(Ordering::Relaxed) {
            log::info!("stopping on signal");
            break Ok(());
        }
        if let Some(status) = datapath.try_wait()? {
            log::error!("datapath exited ({status}): its calls' media is gone; ending them and restarting it");
            end_child(&mut sidecar, "signaling", libc::SIGUSR1);
            // The journal stays: calls a sidecar could not end are ended by the next one (the
            // new datapath holds none of their sessions: BYE both ways, CDR).
            remove_state(&shm, false);
            if !budget.take() {
                break Err(anyhow::anyhow!(
                    "children exited {MAX_RESTARTS} times within {RESTART_WINDOW:?}; giving up"
                ));
            }
            let Some(d) = start_datapath(&spawn, &shm, &stop)? else { break Ok(()) };
            datapath = d;
            sidecar = start_sidecar()?;
            continue;
        }
        if hup.swap(false, Ordering::Relaxed) {
            log::info!("SIGHUP: asking the signaling sidecar (pid {}) to reload", sidecar.id());
            signal(&sidecar, libc::SIGHUP);
        }
        if usr2.swap(false, Ordering::Relaxed) {
            log::info!("SIGUSR2: asking the signaling sidecar (pid {}) to reopen the CDR file", sidecar.id());
            signal(&sidecar, libc::SIGUSR2);
        }
        if let Some(status) = sidecar.try_wait()? {
            if !budget.take() {
                break Err(anyhow::anyhow!(
                    "signaling sidecar exited ({status}); children exited {MAX_RESTARTS} times within {RESTART_WINDOW:?}; giving up"
                ));
            }
            log::warn!("signaling sidecar exited ({status}); media keeps flowing; restarting it");
            std::thread::sleep(Duration::from_millis(200));
            sidecar = spawn("signaling")?;
            log::info!("signaling sidecar restarted (pid {})", sidecar.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    stop_child(&mut sidecar, "signaling");
    stop_child(&mut datapath, "datapath");
    // Both processes are gone, and with the datapath every call's media: the ring and the
    // sidecar's call journal describe nothing that still exists.
    remove_state(&shm, true);
    outcome
}

/// Starts the datapath and waits for its ring; None when a stop signal came first.
fn start_datapath(
    spawn: &dyn Fn(&str) -> anyhow::Result<Child>,
    shm: &Path,
    stop: &AtomicBool,
) -> anyhow::Result<Option<Child>> {
    let mut datapath = spawn("datapath")?;
    log::info!("datapath started (pid {})", datapath.id());
    let deadline = Instant::now() + RING_WAIT;
    while !shm.exists() {
        if let Some(status) = datapath.try_wait()? {
            bail!("datapath exited before creating the ring at {}: {status}", shm.display());
        }
        if stop.load(Ordering::Relaxed) {
            stop_child(&mut datapath, "datapath");
            return Ok(None);
        }
        if Instant::now() > deadline {
            stop_child(&mut datapath, "datapath");
            bail!("datapath did not create the ring at {} within {RING_WAIT:?}", shm.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(datapath))
}

/// Removes the ring and, with `journal`, the call journal (nothing they describe exists any more).
fn remove_state(shm: &Path, journal: bool) {
    let mut files: Vec<PathBuf> = vec![shm.to_path_buf()];
    if journal {
        files.push(xtrunk_signaling::journal::path_for(shm));
    }
    for file in files {
        match std::fs::remove_file(&file) {
            Ok(()) => log::info!("removed {}", file.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("could not remove {}: {e}", file.display()),
        }
    }
}

/// Sends `sig` to a child we have not reaped.
fn signal(child: &Child, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else { return };
    // SAFETY: kill(2) with a pid we spawned and have not reaped; no memory is involved.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL.
fn stop_child(child: &mut Child, name: &str) {
    end_child(child, name, libc::SIGTERM);
}

/// `sig`, wait up to [`STOP_GRACE`], then SIGKILL.
fn end_child(child: &mut Child, name: &str, sig: libc::c_int) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    signal(child, sig);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            log::info!("{name} stopped: {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    log::warn!("{name} did not stop within {STOP_GRACE:?}; killing it");
    let _ = child.kill();
    let _ = child.wait();
}
