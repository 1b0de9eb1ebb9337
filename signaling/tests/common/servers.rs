//! Real servers the tests start and stop themselves: `redis-server` (the `[shared]` store) and
//! Kamailio (a carrier registrar/proxy, a load balancer), each on private ports and files,
//! stopped on drop (so a failed assertion leaves nothing running).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `tool` runs (`tool -v`).
pub(crate) fn available(tool: &str) -> bool {
    Command::new(tool).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A `redis-server` on 127.0.0.1:`port` (no persistence), files in `dir`.
pub(crate) struct Redis {
    child: Child,
    /// Its port.
    pub(crate) port: u16,
    dir: PathBuf,
}

impl Redis {
    pub(crate) fn start(port: u16, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", dir.to_str().unwrap(), "--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        assert!(xtrunk_signaling::testing::wait_port_bound(port, Duration::from_secs(10)), "redis-server on {port}");
        Self { child, port, dir: dir.to_path_buf() }
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it; its port and directory, to start another on.
    pub(crate) fn stop(mut self) -> (u16, PathBuf) {
        self.kill();
        (self.port, self.dir.clone())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One running Kamailio, started from a config template of `tests/kamailio/` with its
/// `@KEY@` placeholders replaced; stopped (SIGTERM to the main process, which ends its
/// children) on drop.
pub(crate) struct Kamailio {
    child: Child,
    log: PathBuf,
}

impl Kamailio {
    /// `template` (a file of `tests/kamailio/`) with `vars` filled in, as `dir/<tag>.cfg`,
    /// listening on `listen`; `defines` are `-A` pre-processor defines.
    pub(crate) fn start(
        dir: &Path,
        tag: &str,
        template: &str,
        vars: &[(&str, String)],
        defines: &[&str],
        listen: SocketAddr,
    ) -> Self {
        let path = format!("{}/tests/kamailio/{template}", env!("CARGO_MANIFEST_DIR"));
        let mut cfg = std::fs::read_to_string(path).unwrap();
        for (k, v) in vars {
            cfg = cfg.replace(&format!("@{k}@"), v);
        }
        let path = dir.join(format!("{tag}.cfg"));
        std::fs::write(&path, cfg).unwrap();
        let log = dir.join(format!("{tag}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let mut c = Command::new("kamailio");
        c.args(["-f", path.to_str().unwrap(), "-DD", "-E", "-m", "32", "-M", "4", "-w", dir.to_str().unwrap()]);
        for d in defines {
            c.args(["-A", d]);
        }
        let child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(out).spawn().expect("spawn kamailio");
        assert!(
            xtrunk_signaling::testing::wait_port_bound(listen.port(), Duration::from_secs(10)),
            "kamailio {tag} did not bind {listen}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self { child, log }
    }

    /// Log lines that `f` accepts.
    pub(crate) fn count_where(&self, f: impl Fn(&str) -> bool) -> usize {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().filter(|l| f(l)).count()
    }

    /// Log lines containing `what`.
    pub(crate) fn count(&self, what: &str) -> usize {
        self.count_where(|l| l.contains(what))
    }

    /// Waits until the log has `n` lines with `what`.
    pub(crate) fn wait_for(&self, what: &str, n: usize, limit: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if self.count(what) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Stops it now.
    pub(crate) fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}
