//! `xtrunk ctl`: the admin API's command line (a plain HTTP/1.1 client). The address and the
//! token come from the configuration file (`control.listen`, `control.admin_token_file`) or
//! from `--url`/`--token-file`. Prints the JSON answer; exits 1 unless it is a 2xx.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

/// `xtrunk ctl` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct CtlArgs {
    /// Configuration file naming `control.listen` and `control.admin_token_file`.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The control address (instead of `control.listen`), e.g. `127.0.0.1:9465`.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The token file (instead of `control.admin_token_file`).
    #[arg(long)]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: CtlCmd,
}

#[derive(clap::Subcommand, Debug)]
enum CtlCmd {
    /// List `trunks`, `routes`, `accounts` or `calls`.
    Get { resource: String },
    /// Add one trunk, route or account (JSON, or `@file`).
    Add { resource: String, json: String },
    /// Replace the whole table (a JSON array, or `@file`).
    Replace { resource: String, json: String },
    /// Remove a trunk or account by name, a route by index.
    Remove { resource: String, key: String },
    /// End a call by its Call-ID (either side).
    EndCall { call_id: String },
}

fn body_of(s: &str) -> anyhow::Result<String> {
    match s.strip_prefix('@') {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading {f}")),
        None => Ok(s.to_string()),
    }
}

/// Runs `xtrunk ctl …`; Ok(true) when the API answered 2xx.
pub(crate) fn ctl(a: &CtlArgs) -> anyhow::Result<bool> {
    let cfg = a.config.as_deref().map(xtrunk_config::Config::load).transpose()?;
    let addr = a.addr.or(cfg.as_ref().and_then(|c| c.control.listen)).context("no --addr and no control.listen")?;
    let tf = a.token_file.clone().or(cfg.as_ref().and_then(|c| c.control.admin_token_file.clone()));
    let token = tf.map(|f| std::fs::read_to_string(&f).with_context(|| format!("{}", f.display()))).transpose()?;
    let (method, path, body) = match &a.cmd {
        CtlCmd::Get { resource } => ("GET", resource.clone(), String::new()),
        CtlCmd::Add { resource, json } => ("POST", resource.clone(), body_of(json)?),
        CtlCmd::Replace { resource, json } => ("PUT", resource.clone(), body_of(json)?),
        CtlCmd::Remove { resource, key } => ("DELETE", format!("{resource}/{key}"), String::new()),
        CtlCmd::EndCall { call_id } => ("DELETE", format!("calls/{call_id}"), String::new()),
    };
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {}\r\n", t.trim())).unwrap_or_default();
    write!(
        s,
        "{method} /api/v1/{path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut r = String::new();
    s.read_to_string(&mut r)?;
    let status: u16 = r.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    print!("{}", r.split_once("\r\n\r\n").map_or("", |(_, b)| b));
    if !(200..300).contains(&status) {
        eprintln!("xtrunk ctl: HTTP {status}");
    }
    Ok((200..300).contains(&status))
}
