//! For the operations tests (issue 17): a private PostgreSQL server started by the test, SIPp
//! runs against `xtrunk run`, and the config tables those tests add.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Guard;

/// Debian's PostgreSQL binaries (the newest major version installed).
fn pg_bin(tool: &str) -> Option<PathBuf> {
    let mut majors: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path()).collect();
    majors.sort();
    majors.into_iter().rev().map(|d| d.join("bin").join(tool)).find(|p| p.exists())
}

/// A PostgreSQL server on a private port and data directory, run as the `postgres` user
/// (PostgreSQL refuses root); stopped (`pg_ctl stop -m immediate`) and removed on drop.
pub(crate) struct Pg {
    dir: PathBuf,
    /// The port on 127.0.0.1.
    pub(crate) port: u16,
}

fn as_postgres(tool: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(tool);
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

impl Pg {
    /// initdb + start; None (the test skips) when PostgreSQL or the `postgres` user is missing.
    pub(crate) fn start(tag: &str) -> Option<Self> {
        let (initdb, pg_ctl) = (pg_bin("initdb")?, pg_bin("pg_ctl")?);
        Command::new("id").arg("postgres").stdout(Stdio::null()).status().ok()?.success().then_some(())?;
        let dir = std::env::temp_dir().join(format!("xtrunk-pg-{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("data")).unwrap();
        let own = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap();
        assert!(own.success(), "chown {}", dir.display());
        let out = as_postgres(&initdb)
            .args(["-A", "trust", "-U", "xtrunk", "-E", "UTF8", "--no-sync", "-D"])
            .arg(dir.join("data"))
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = super::free_port(&[]);
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", dir.display());
        let out = as_postgres(&pg_ctl)
            .args(["-w", "-t", "30", "-D"])
            .arg(dir.join("data"))
            .args(["-l"])
            .arg(dir.join("pg.log"))
            .args(["-o", &opts, "start"])
            .output()
            .unwrap();
        let pg = Self { dir, port };
        assert!(out.status.success(), "pg_ctl start: {} {}", String::from_utf8_lossy(&out.stderr), pg.log());
        Some(pg)
    }

    /// The connection string for `[cdr].postgres`.
    pub(crate) fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=xtrunk dbname=postgres", self.port)
    }

    /// The server's log.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.join("pg.log")).unwrap_or_default()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(pg_ctl) = pg_bin("pg_ctl") {
            let _ =
                as_postgres(&pg_ctl).args(["-D"]).arg(self.dir.join("data")).args(["-m", "immediate", "stop"]).output();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Is SIPp installed?
pub(crate) fn sipp_available() -> bool {
    Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A scenario file of `xtrunk/tests/scenarios`.
pub(crate) fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios").join(format!("{name}.xml")).display().to_string()
}

/// SuccessfulCall(C) and FailedCall(C) from the last row of SIPp's `-trace_stat` CSV.
pub(crate) fn read_stat(p: &Path) -> (u64, u64) {
    let text = fs::read_to_string(p).unwrap_or_default();
    let mut lines = text.lines();
    let Some(head) = lines.next() else { return (0, 0) };
    let Some(last) = lines.rfind(|l| !l.trim().is_empty()) else { return (0, 0) };
    let cols: Vec<&str> = head.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get =
        |n: &str| cols.iter().position(|c| *c == n).and_then(|i| vals.get(i)).and_then(|v| v.parse().ok()).unwrap_or(0);
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

/// Waits for `g.sipps[i]` (with a deadline); its exit status, or None on timeout.
pub(crate) fn wait_sipp(g: &mut Guard, i: usize, timeout: Duration) -> Option<ExitStatus> {
    let t = Instant::now() + timeout;
    loop {
        if let Some(s) = g.sipps[i].try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > t {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One SIPp load: a uas (the carrier) on `uas_port` and a uac (the PBX) placing `calls` calls to
/// `xtrunk` at `rate`/s, each held `hold_ms`; trace CSVs in `dir`.
pub(crate) struct Load<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) sip_port: u16,
    pub(crate) uas_port: u16,
    pub(crate) uac_port: u16,
    pub(crate) calls: usize,
    pub(crate) rate: u32,
    pub(crate) hold_ms: u32,
    /// The called number.
    pub(crate) number: &'a str,
}

fn sipp(dir: &Path, args: &[String]) -> Child {
    Command::new("sipp")
        .args(args)
        .args(["-nostdin", "-timeout", "120s", "-timeout_error", "-recv_timeout", "15000", "-trace_stat", "-fd", "1"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipp")
}

impl Load<'_> {
    /// Starts both SIPps (pushed to `g.sipps`: uas first, then uac).
    pub(crate) fn start(&self, g: &mut Guard) {
        let s = |v: &dyn ToString| v.to_string();
        let (n, d) = (self.calls.to_string(), self.dir);
        let uas = [
            "-sf".into(),
            scenario("uas_basic"),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            s(&self.uas_port),
            "-m".into(),
            n.clone(),
            "-stf".into(),
            d.join("uas.csv").display().to_string(),
        ];
        g.sipps.push(sipp(d, &uas));
        assert!(
            xtrunk_signaling::testing::wait_port_bound(self.uas_port, Duration::from_secs(10)),
            "SIPp UAS did not bind"
        );
        let uac = [
            format!("127.0.0.1:{}", self.sip_port),
            "-sf".into(),
            scenario("uac_reason"),
            "-s".into(),
            self.number.into(),
            "-i".into(),
            "127.0.0.1".into(),
            "-p".into(),
            s(&self.uac_port),
            "-r".into(),
            s(&self.rate),
            "-l".into(),
            "400".into(),
            "-d".into(),
            s(&self.hold_ms),
            "-m".into(),
            n,
            "-stf".into(),
            d.join("uac.csv").display().to_string(),
        ];
        g.sipps.push(sipp(d, &uac));
    }

    /// Waits for both; (uac successful, uac failed, uas successful).
    pub(crate) fn finish(&self, g: &mut Guard) -> (u64, u64, u64) {
        let st = wait_sipp(g, 1, Duration::from_secs(180));
        let _ = wait_sipp(g, 0, Duration::from_secs(20));
        let (ok, failed) = read_stat(&self.dir.join("uac.csv"));
        let (uas_ok, _) = read_stat(&self.dir.join("uas.csv"));
        eprintln!("uac exit {st:?}: ok {ok} failed {failed}; uas ok {uas_ok}");
        (ok, failed, uas_ok)
    }
}

/// Appends TOML tables to the test configuration at `cfg`.
pub(crate) fn append_config(cfg: &Path, tables: &str) {
    let mut t = fs::read_to_string(cfg).unwrap();
    t.push('\n');
    t.push_str(tables);
    fs::write(cfg, t).unwrap();
}
