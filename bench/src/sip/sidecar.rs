//! The sidecar `xtrunk-bench sip --self-contained` measures: in this process on free loopback
//! ports with the loopback datapath stand-in, configured per mode (admission policies, digest,
//! shared Redis store, operations side).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::free_port;
/// Every admission policy on, none binding at bench rates: the caller's trunk in an account
/// whose DIDs hold the caller ID, limits far above the offered load, destination rules, fraud
/// thresholds, number formats, PAI toward a trusted carrier, CLI blocks.
const POLICIES: &str = r#"
[[account]]
name = "bench"
dids = ["442071234500-442071234599"]
[account.limits]
channels = 1000000
cps = 100000
cps_burst = 1000
calls_per_hour = 100000000
calls_per_day = 100000000
calls_per_week = 100000000
[account.destinations]
deny_countries = ["FR", "CU"]
deny_prefixes = ["88213", "88216"]
[account.fraud]
calls_per_minute = { warning = 100000000, critical = 200000000 }
concurrent = { warning = 100000000, critical = 200000000 }
same_number = { warning = 100000000, critical = 200000000 }
calls_per_day = { warning = 100000000, critical = 200000000 }
"#;

/// Applies [`POLICIES`] to the embedded configuration's two trunks.
fn with_policies(cfg: &mut xtrunk_config::Config) -> anyhow::Result<()> {
    let p = xtrunk_config::Config::parse(POLICIES, "bench policies")?;
    cfg.accounts = p.accounts;
    for t in &mut cfg.trunks {
        t.limits.channels = Some(1_000_000);
        t.limits.cps = Some(100_000.0);
        t.limits.cps_burst = 1000;
        t.limits.calls_per_hour = Some(100_000_000);
        t.numbers.cli_block_prefixes = ["+6113", "+611300", "+611800", "+611900"].map(String::from).to_vec();
    }
    cfg.trunks[0].account = Some("bench".into());
    cfg.trunks[1].numbers.trusted = true;
    cfg.trunks[1].numbers.format = xtrunk_config::NumberFormat::PlusE164;
    Ok(())
}

/// A `redis-server` for `--shared` on a free loopback port (no persistence), and its port.
pub(super) fn start_redis(dir: &Path) -> anyhow::Result<(std::process::Child, u16)> {
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap_or(".")])
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server (scripts/setup installs it)")?;
    std::thread::sleep(Duration::from_millis(300));
    Ok((child, port))
}

/// The caller's trunk requires digest credentials as well as its ACL (MD5: Debian's SIPp knows
/// nothing else).
fn with_digest(cfg: &mut xtrunk_config::Config) {
    cfg.trunks[0].auth = xtrunk_config::AuthMode::Both;
    cfg.trunks[0].users = vec![xtrunk_config::TrunkUser {
        username: "bench".into(),
        password: None,
        ha1_md5: Some(digest_ha1(&cfg.node.name)),
        ha1_sha256: None,
        ha1_sha512_256: None,
    }];
    cfg.sip.auth.algorithms = vec![xtrunk_config::DigestAlgorithm::Md5];
}

fn digest_ha1(realm: &str) -> String {
    xtrunk_signaling::auth::digest::Algorithm::Md5.ha1("bench", realm, "bench-secret")
}

/// The in-process sidecar of `--self-contained`, with the operations side on or off.
pub(super) struct Sidecar {
    pub(super) target: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<xtrunk_signaling::Summary>>,
    pub(super) stat: Option<PathBuf>,
    /// With `ops`: the CDR store's writer thread and a 1 Hz scraper of the published counters.
    writer: Option<xtrunk_cdrstore::Writer>,
    scraper: Option<std::thread::JoinHandle<u64>>,
}

/// Starts the sidecar in `dir`. `ops`: CDRs to `dir/cdr.jsonl` and from there (writer thread)
/// to `dir/cdr.sqlite`, counters published for a control thread that reads them every second.
pub(super) fn start_sidecar(
    dir: &Path,
    carrier_port: u16,
    pin: Option<usize>,
    (ops, policies, digest, shared): (bool, bool, bool, Option<u16>),
) -> anyhow::Result<Sidecar> {
    let (mut cfg, port) = bench_config(dir, carrier_port, (policies, digest, shared))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (mut writer, mut scraper, mut published) = (None, None, None);
    if ops {
        cfg.node.cdr_path = Some(dir.join("cdr.jsonl"));
        let db = dir.join("cdr.sqlite");
        let open: xtrunk_cdrstore::writer::Opener = Box::new(move || {
            xtrunk_cdrstore::Sqlite::open(&db).map(|b| Box::new(b) as Box<dyn xtrunk_cdrstore::Backend>)
        });
        writer = Some(xtrunk_cdrstore::Writer::spawn(open, dir.join("cdr.jsonl"), 500, Duration::from_millis(100))?);
        let p = xtrunk_signaling::ops::Published::default();
        let (p2, s2) = (Arc::clone(&p), Arc::clone(&stop));
        scraper = Some(std::thread::spawn(move || {
            let mut bytes = 0;
            while !s2.load(Ordering::Relaxed) {
                let snap = p2.lock().map(|g| g.clone()).unwrap_or_default();
                bytes += format!("{snap:?}").len() as u64;
                std::thread::sleep(Duration::from_secs(1));
            }
            bytes
        }));
        published = Some(p);
    }
    let mut server = xtrunk_signaling::Server::bind(&cfg, xtrunk_signaling::LoopbackMedia::default())?;
    if let Some(p) = published {
        server = server.publish_to(p, Default::default());
    }
    let s2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        if let Some(c) = pin {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                eprintln!("could not pin the sidecar to cpu {c}");
            }
        }
        // This thread's stat file, for its CPU use per step.
        let _ =
            tx.send(std::fs::read_link("/proc/thread-self").ok().map(|p| PathBuf::from("/proc").join(p).join("stat")));
        server.run(s2)
    });
    let stat = rx.recv().ok().flatten();
    Ok(Sidecar { target: SocketAddr::from(([127, 0, 0, 1], port)), stop, handle, stat, writer, scraper })
}

/// `--media socket`: `xtrunk run` as a host starts it (the datapath with its socket backend and
/// the sidecar, two supervised processes, the ring between them) on a generated configuration.
pub(super) struct Run {
    pub(super) target: SocketAddr,
    child: std::process::Child,
}

impl Run {
    /// Starts `xtrunk run` (the binary next to this one) in `dir` for the mode.
    pub(super) fn start(dir: &Path, carrier_port: u16, modes: (bool, bool, Option<u16>)) -> anyhow::Result<Self> {
        let (mut cfg, port) = bench_config(dir, carrier_port, modes)?;
        // The SIP ports are ephemeral ones (above 32768): the media range below them. One media
        // session per call in progress (calls hang up at once): the default 4000 is plenty.
        cfg.media.port_min = 10_000;
        cfg.media.port_max = 30_000;
        let file = dir.join("xtrunk.toml");
        std::fs::write(&file, cfg.to_toml()?)?;
        let exe = std::env::current_exe()?.with_file_name("xtrunk");
        let child = Command::new(&exe)
            .args(["run", "--config"])
            .arg(&file)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("xtrunk.log"))?)
            .spawn()
            .with_context(|| format!("starting {} run (cargo build --release -p xtrunk)", exe.display()))?;
        let target = SocketAddr::from(([127, 0, 0, 1], port));
        let mut run = Self { target, child };
        // Ready when the sidecar answers OPTIONS.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0")?;
        probe.set_read_timeout(Some(Duration::from_millis(200)))?;
        let me = probe.local_addr()?;
        let opt = format!("OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbench{port}\r\nFrom: <sip:bench@{me}>;tag=b\r\nTo: <sip:{target}>\r\nCall-ID: ready-{port}@bench\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
        let mut buf = [0u8; 2048];
        for _ in 0..50 {
            let _ = probe.send_to(opt.as_bytes(), target);
            if probe.recv_from(&mut buf).is_ok() {
                return Ok(run);
            }
            if let Some(st) = run.child.try_wait()? {
                anyhow::bail!("xtrunk run exited ({st}); see {}", dir.join("xtrunk.log").display());
            }
        }
        run.stop();
        anyhow::bail!("xtrunk run did not answer OPTIONS in 10 s; see {}", dir.join("xtrunk.log").display())
    }

    /// The process id of `xtrunk run` (its children are the datapath and the sidecar).
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (the sidecar ends its calls, then the datapath stops), and the exit.
    pub(super) fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid, no memory involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The embedded configuration for `dir`: SIP on a free loopback port, the carrier at
/// `carrier_port`, and the mode's policies, digest and shared store; and the SIP port.
fn bench_config(
    dir: &Path,
    carrier_port: u16,
    (policies, digest, shared): (bool, bool, Option<u16>),
) -> anyhow::Result<(xtrunk_config::Config, u16)> {
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let mut cfg = xtrunk_config::Config::embedded_default()?;
    cfg.node.shm_path = dir.join("shm");
    cfg.sip.listen = vec![xtrunk_config::Listen {
        transport: xtrunk_config::Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tls: None,
        advertised: None,
    }];
    cfg.media.port_min = 10_000;
    cfg.media.port_max = 60_000;
    for t in &mut cfg.trunks {
        for tg in &mut t.targets {
            tg.addr = SocketAddr::from(([127, 0, 0, 1], carrier_port));
        }
    }
    if policies {
        with_policies(&mut cfg)?;
    }
    if digest {
        with_digest(&mut cfg);
    }
    if let Some(port) = shared {
        cfg.shared.kind = xtrunk_config::SharedKind::Redis;
        cfg.shared.url = format!("redis://127.0.0.1:{port}/0");
        cfg.shared.prefix = format!("bench{}:", std::process::id());
    }
    Ok((cfg, port))
}

impl Sidecar {
    pub(super) fn finish(self) -> anyhow::Result<xtrunk_signaling::Summary> {
        self.stop.store(true, Ordering::Relaxed);
        let s = self.handle.join().map_err(|_| anyhow::anyhow!("sidecar thread panicked"))??;
        if let Some(w) = self.writer {
            let stats = Arc::clone(&w.stats);
            w.stop();
            eprintln!("cdr store: {} rows inserted", stats.inserted.load(Ordering::Relaxed));
        }
        if let Some(h) = self.scraper {
            let _ = h.join();
        }
        Ok(s)
    }
}
