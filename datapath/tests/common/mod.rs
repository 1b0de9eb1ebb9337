//! Namespace-lab helpers shared by the root-only AF_XDP tests: the lab itself (`scripts/lab`,
//! torn down on drop), entering a namespace on a thread, pinning.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command as Proc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xtrunk_datapath::relay::{Relay, RelayConfig};
use xtrunk_datapath::xsk::{AttachMode, RuntimeStats, XskInterface, XskMode, XskOptions, XskRuntime};
use xtrunk_ring::msg::{Command, Event};

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub(crate) fn lab_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/lab")
}

/// The lab namespaces; `down` on drop, even when the test fails.
pub(crate) struct Lab {
    prefix: String,
}

impl Lab {
    /// `scripts/lab up` with `queues` queues per veth.
    pub(crate) fn up(prefix: &str, queues: u32) -> Lab {
        let lab = Lab { prefix: prefix.to_owned() };
        let st = Proc::new("bash")
            .arg(lab_script())
            .args(["up", "--queues", &queues.to_string(), "--prefix", prefix])
            .status()
            .expect("run scripts/lab");
        assert!(st.success(), "scripts/lab up failed");
        lab
    }
    /// The namespace of `role` (pbx, relay, carrier).
    pub(crate) fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Proc::new("bash").arg(lab_script()).args(["down", "--prefix", &self.prefix]).status();
    }
}

pub(crate) fn enter_netns(ns: &str) {
    let f = File::open(format!("/var/run/netns/{ns}")).expect("open netns");
    // SAFETY: setns on a valid namespace fd changes only the calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns({ns}): {}", std::io::Error::last_os_error());
}

pub(crate) fn spawn_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter_netns(&ns);
        f()
    })
}

pub(crate) fn pin(cpu: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
}

/// The relay side: the AF_XDP runtime on interfaces `rp0` and `rc0`, driven from a control thread
/// inside the relay namespace; media ports 30000-30999.
pub(crate) struct RelayCtl {
    pub(crate) cmds: mpsc::Sender<Command>,
    pub(crate) events: mpsc::Receiver<Event>,
    pub(crate) stats: Arc<Mutex<RuntimeStats>>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) join: Option<JoinHandle<Result<RuntimeStats, String>>>,
}

impl RelayCtl {
    /// Starts the runtime in `ns`, one XSK per queue in `queues` (queue q served from core q).
    pub(crate) fn start(ns: &str, queues: &[u32], fast_path: bool, max_sessions: usize) -> RelayCtl {
        let queues = queues.to_vec();
        let (cmds, cmd_rx) = mpsc::channel::<Command>();
        let (ev_tx, events) = mpsc::channel();
        let stats = Arc::new(Mutex::new(RuntimeStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (st, sp) = (stats.clone(), stop.clone());
        let join = spawn_in(ns, move || {
            let opts = XskOptions {
                interfaces: ["rp0", "rc0"]
                    .iter()
                    .map(|n| XskInterface {
                        name: (*n).into(),
                        queues: queues.clone(),
                        cores: queues.iter().map(|&q| q as usize).collect(),
                    })
                    .collect(),
                mode: XskMode::Auto,
                attach: AttachMode::Auto,
                frame_size: 2048,
                frame_count: 4096,
                ring_size: 1024,
                fast_path,
                port_min: 30000,
                port_max: 30999,
                busy_poll: false,
                max_sessions,
            };
            let relay = Relay::new(RelayConfig { port_min: 30000, port_max: 30999, max_sessions });
            let mut rt = match XskRuntime::start(opts, relay) {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return Err(e.to_string());
                }
            };
            let _ = ready_tx.send(Ok(()));
            let mut last = Instant::now();
            while !sp.load(Ordering::Relaxed) {
                while let Ok(c) = cmd_rx.try_recv() {
                    rt.apply(&c, &mut |e| {
                        let _ = ev_tx.send(e);
                    });
                }
                rt.tick(&mut |e| {
                    let _ = ev_tx.send(e);
                });
                if last.elapsed() > Duration::from_millis(50) {
                    *st.lock().unwrap() = rt.stats();
                    last = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let s = rt.stats();
            rt.shutdown();
            Ok(s)
        });
        ready_rx.recv().expect("relay thread").expect("XskRuntime::start");
        RelayCtl { cmds, events, stats, stop, join: Some(join) }
    }

    /// The runtime's stats, refreshed every 50 ms.
    pub(crate) fn stats(&self) -> RuntimeStats {
        self.stats.lock().unwrap().clone()
    }

    /// Polls the stats until `f` holds (10 s at most).
    pub(crate) fn wait_stats(&self, what: &str, f: impl Fn(&RuntimeStats) -> bool) -> RuntimeStats {
        let t = Instant::now();
        loop {
            let s = self.stats();
            if f(&s) {
                return s;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}: {s:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the runtime and returns its final stats.
    pub(crate) fn finish(mut self) -> RuntimeStats {
        self.stop.store(true, Ordering::Relaxed);
        self.join.take().unwrap().join().expect("relay thread panicked").expect("relay")
    }
}

impl Drop for RelayCtl {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}
