//! The admin API (`/api/v1/...` on the control thread; off unless `control.admin_token_file`
//! is set): bearer-token auth; read and change trunks, routes and accounts (DID pools are in the
//! accounts) with the same validation and key paths as `check-config`; list and end calls.
//!
//! A change is applied to the configuration file as it is on disk, validated (`422` with every
//! problem's key path, nothing written), written back atomically (a temporary file in the same
//! directory, fsync, `rename(2)`), and applied as a new snapshot by the SIP loop (the SIGHUP
//! path: calls in progress keep the configuration they started with). The answer waits up to
//! 3 s for the loop to take it (`"applied": true`). Changes are serialized: the control thread
//! serves one request at a time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};
use xtrunk_config::{Account, Config, Host, Route, Trunk};
use xtrunk_signaling::ops::{Published, RequestQueue};

/// One HTTP request, as the control thread read it.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// Status and JSON body.
pub(crate) type Reply = (u16, Value);

/// The admin API's state.
pub(crate) struct Admin {
    token: String,
    config_file: Option<PathBuf>,
    hup: Arc<AtomicBool>,
    published: Published,
    requests: RequestQueue,
}

#[derive(Clone, Copy)]
enum Table {
    Trunks,
    Routes,
    Accounts,
}

impl Admin {
    /// The API when `control.admin_token_file` is set (the token read now), else None.
    pub(crate) fn new(
        cfg: &Config,
        config_file: Option<&Path>,
        hup: Arc<AtomicBool>,
        published: Published,
        requests: RequestQueue,
    ) -> anyhow::Result<Option<Self>> {
        let Some(f) = &cfg.control.admin_token_file else { return Ok(None) };
        let token = std::fs::read_to_string(f)
            .with_context(|| format!("control.admin_token_file: {}", f.display()))?
            .trim()
            .to_string();
        anyhow::ensure!(token.len() >= 16, "control.admin_token_file: the token must have at least 16 characters");
        requests.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.list_calls = true;
        Ok(Some(Self { token, config_file: config_file.map(Path::to_path_buf), hup, published, requests }))
    }

    fn authorized(&self, r: &Request) -> bool {
        let Some(given) = r.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")) else { return false };
        // Constant time in the token's length.
        let (a, b) = (given.trim().as_bytes(), self.token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Serves one `/api/v1/...` request.
    pub(crate) fn handle(&self, r: &Request) -> Reply {
        if !self.authorized(r) {
            return (401, json!({"error": "missing or wrong bearer token"}));
        }
        let parts: Vec<&str> = r.path.trim_start_matches("/api/v1/").split('/').filter(|p| !p.is_empty()).collect();
        let table = |n: &str| match n {
            "trunks" => Some(Table::Trunks),
            "routes" => Some(Table::Routes),
            "accounts" => Some(Table::Accounts),
            _ => None,
        };
        match (r.method.as_str(), parts.as_slice()) {
            ("GET", ["calls"]) => self.calls(),
            ("DELETE", ["calls", id]) => self.end_call(id),
            (m, [t, rest @ ..]) if table(t).is_some() && rest.len() <= 1 => {
                let t = table(t).expect("checked");
                match (m, rest.first()) {
                    ("GET", None) => self.read(t),
                    ("PUT", None) => self.change(|c| replace(c, t, &r.body)),
                    ("POST", None) => self.change(|c| append(c, t, &r.body)),
                    ("DELETE", Some(key)) => self.change(|c| remove(c, t, key)),
                    _ => (405, json!({"error": "method not allowed"})),
                }
            }
            _ => (404, json!({"error": "no such resource"})),
        }
    }

    fn file(&self) -> Result<&Path, Reply> {
        self.config_file.as_deref().ok_or((409, json!({"error": "running on the embedded default: no file to change"})))
    }

    fn read(&self, t: Table) -> Reply {
        let cfg = match self.file().map(Config::read_unchecked) {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return (500, json!({"error": e.to_string()})),
            Err(r) => return r,
        };
        let v = match t {
            Table::Trunks => serde_json::to_value(&cfg.trunks).map(redact),
            Table::Routes => serde_json::to_value(&cfg.routes),
            Table::Accounts => serde_json::to_value(&cfg.accounts),
        };
        (200, v.unwrap_or(Value::Null))
    }

    /// Applies `f` to the file's configuration: validate, write back, reload.
    fn change(&self, f: impl FnOnce(&mut Config) -> Result<(), Reply>) -> Reply {
        let path = match self.file() {
            Ok(p) => p,
            Err(r) => return r,
        };
        let mut cfg = match Config::read_unchecked(path) {
            Ok(c) => c,
            Err(e) => return (500, json!({"error": e.to_string()})),
        };
        if let Err(r) = f(&mut cfg) {
            return r;
        }
        let problems = cfg.validate(Host::this());
        if !problems.is_empty() {
            let p: Vec<Value> = problems.iter().map(|p| json!({"path": p.path, "reason": p.reason})).collect();
            return (422, json!({"error": "invalid configuration; nothing changed", "problems": p}));
        }
        let before = self.published.lock().map(|s| s.reloads).unwrap_or(0);
        if let Err(e) = cfg.to_toml().map_err(anyhow::Error::from).and_then(|t| write_atomic(path, &t)) {
            return (500, json!({"error": format!("writing {}: {e:#}", path.display())}));
        }
        self.hup.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(3);
        let applied = loop {
            if self.published.lock().map(|s| s.reloads).unwrap_or(0) > before {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        log::info!("admin: configuration changed and written to {} (applied: {applied})", path.display());
        (
            200,
            json!({"applied": applied, "trunks": cfg.trunks.len(), "routes": cfg.routes.len(), "accounts": cfg.accounts.len()}),
        )
    }

    fn calls(&self) -> Reply {
        let calls = self.published.lock().map(|s| s.calls.clone()).unwrap_or_default();
        (200, serde_json::to_value(calls).unwrap_or(Value::Null))
    }

    fn end_call(&self, id: &str) -> Reply {
        let known = self.published.lock().is_ok_and(|s| s.calls.iter().any(|c| c.call_id == id || c.b_call_id == id));
        if !known {
            return (404, json!({"error": "no such call"}));
        }
        if let Ok(mut q) = self.requests.lock() {
            q.end_calls.push(id.to_string());
        }
        (202, json!({"ending": id}))
    }
}

fn bad_body(t: &str, e: &serde_json::Error) -> Reply {
    (422, json!({"error": "invalid body; nothing changed", "problems": [{"path": t, "reason": e.to_string()}]}))
}

/// What `GET` shows in place of a digest user's password or HA1; sent back unchanged in a
/// `PUT`/`POST`, it keeps the stored value of that trunk's user.
const REDACTED: &str = "<redacted>";
const SECRETS: [&str; 4] = ["password", "ha1_md5", "ha1_sha256", "ha1_sha512_256"];

/// The trunks' JSON with every digest secret replaced by [`REDACTED`].
fn redact(mut v: Value) -> Value {
    for t in v.as_array_mut().into_iter().flatten() {
        for r in t.get_mut("registration").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(s) = r.get_mut("password").filter(|s| s.is_string()) {
                *s = Value::String(REDACTED.into());
            }
        }
        for u in t.get_mut("users").and_then(Value::as_array_mut).into_iter().flatten() {
            for k in SECRETS {
                if let Some(s) = u.get_mut(k).filter(|s| s.is_string()) {
                    *s = Value::String(REDACTED.into());
                }
            }
        }
    }
    v
}

/// Puts back the stored secret wherever `new` (trunks from a client) says [`REDACTED`]: the one
/// of the same trunk and username in `old`; none stored is a `422` naming the key.
fn unredact(old: &[Trunk], new: &mut [Trunk]) -> Result<(), Reply> {
    for (i, t) in new.iter_mut().enumerate() {
        let before = old.iter().find(|o| o.name == t.name);
        for (j, r) in t.registrations.iter_mut().enumerate().filter(|(_, r)| r.password == REDACTED) {
            let stored = before.and_then(|b| b.registrations.iter().find(|x| x.registrar == r.registrar));
            let Some(p) = stored else {
                let path = format!("trunk[{i}].registration[{j}].password");
                return Err((
                    422,
                    json!({"error": "invalid body; nothing changed", "problems": [{"path": path, "reason": "\"<redacted>\" but no stored password for this registrar"}]}),
                ));
            };
            r.password.clone_from(&p.password);
        }
        for (j, u) in t.users.iter_mut().enumerate() {
            let prev = before.and_then(|b| b.users.iter().find(|x| x.username == u.username));
            let fields = [
                (&mut u.password, prev.and_then(|p| p.password.clone()), SECRETS[0]),
                (&mut u.ha1_md5, prev.and_then(|p| p.ha1_md5.clone()), SECRETS[1]),
                (&mut u.ha1_sha256, prev.and_then(|p| p.ha1_sha256.clone()), SECRETS[2]),
                (&mut u.ha1_sha512_256, prev.and_then(|p| p.ha1_sha512_256.clone()), SECRETS[3]),
            ];
            for (field, stored, key) in fields {
                if field.as_deref() == Some(REDACTED) {
                    if stored.is_none() {
                        let path = format!("trunk[{i}].users[{j}].{key}");
                        return Err((
                            422,
                            json!({"error": "invalid body; nothing changed", "problems": [{"path": path, "reason": "\"<redacted>\" but no stored value for this trunk's user"}]}),
                        ));
                    }
                    *field = stored;
                }
            }
        }
    }
    Ok(())
}

fn replace(c: &mut Config, t: Table, body: &[u8]) -> Result<(), Reply> {
    match t {
        Table::Trunks => {
            let mut new: Vec<Trunk> = serde_json::from_slice(body).map_err(|e| bad_body("trunk", &e))?;
            unredact(&c.trunks, &mut new)?;
            c.trunks = new;
        }
        Table::Routes => c.routes = serde_json::from_slice(body).map_err(|e| bad_body("route", &e))?,
        Table::Accounts => c.accounts = serde_json::from_slice(body).map_err(|e| bad_body("account", &e))?,
    }
    Ok(())
}

fn append(c: &mut Config, t: Table, body: &[u8]) -> Result<(), Reply> {
    match t {
        Table::Trunks => {
            let mut new = [serde_json::from_slice::<Trunk>(body).map_err(|e| bad_body("trunk", &e))?];
            unredact(&c.trunks, &mut new)?;
            let [t] = new;
            c.trunks.push(t);
        }
        Table::Routes => c.routes.push(serde_json::from_slice::<Route>(body).map_err(|e| bad_body("route", &e))?),
        Table::Accounts => {
            c.accounts.push(serde_json::from_slice::<Account>(body).map_err(|e| bad_body("account", &e))?)
        }
    }
    Ok(())
}

/// Removes a trunk or account by name, a route by index.
fn remove(c: &mut Config, t: Table, key: &str) -> Result<(), Reply> {
    let gone = (404, json!({"error": format!("no such entry: {key}")}));
    match t {
        Table::Trunks => {
            let i = c.trunks.iter().position(|x| x.name == key).ok_or(gone)?;
            c.trunks.remove(i);
        }
        Table::Accounts => {
            let i = c.accounts.iter().position(|x| x.name == key).ok_or(gone)?;
            c.accounts.remove(i);
        }
        Table::Routes => {
            let i = key.parse::<usize>().ok().filter(|i| *i < c.routes.len()).ok_or(gone)?;
            c.routes.remove(i);
        }
    }
    Ok(())
}

/// Replaces `path` with `text` atomically, keeping its permissions.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut name = path.file_name().context("no file name")?.to_os_string();
    name.push(".admin.tmp");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    if let Ok(m) = std::fs::metadata(path) {
        f.set_permissions(m.permissions())?;
    }
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
