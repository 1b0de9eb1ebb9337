//! The operations side of the binary: the CDR store's writer thread in the sidecar, and the
//! `xtrunk cdr export|report` commands.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use xtrunk_cdrstore::export::{self, Format};
use xtrunk_cdrstore::{Filter, Writer};
use xtrunk_config::{Config, StoreKind};

/// Starts the CDR store's writer thread when `[cdr].store` is set (it tails `node.cdr_path`).
pub(crate) fn start_cdr_writer(cfg: &Config) -> anyhow::Result<Option<Writer>> {
    if cfg.cdr.store == StoreKind::None {
        return Ok(None);
    }
    let spool = cfg.node.cdr_path.clone().context("cdr.store needs node.cdr_path")?;
    let store = cfg.cdr.clone();
    let open: xtrunk_cdrstore::writer::Opener =
        Box::new(move || xtrunk_cdrstore::db::open(&store).map(|b| b.expect("store configured")));
    let w = Writer::spawn(open, spool, cfg.cdr.batch_max as usize, Duration::from_millis(cfg.cdr.poll_ms.into()))
        .context("starting the CDR writer thread")?;
    log::info!("cdr store: {:?}, writer thread started", cfg.cdr.store);
    Ok(Some(w))
}

/// `xtrunk cdr …`.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum CdrCmd {
    /// Print the CDRs of a period from the store, as CSV or JSON.
    Export(ExportArgs),
    /// The short-call report per account and month (0 s and ≤ 6 s calls over 20 %, India
    /// destinations excluded), as JSON.
    Report(ExportArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// Configuration file naming the store (`[cdr]`).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// From (inclusive): `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` (UTC) or Unix ms.
    #[arg(long)]
    from: String,
    /// To (exclusive), same forms.
    #[arg(long)]
    to: String,
    /// Only calls of this account (either side).
    #[arg(long)]
    account: Option<String>,
    /// Only calls over this trunk (either side).
    #[arg(long)]
    trunk: Option<String>,
    /// `csv` or `json` (export only).
    #[arg(long, default_value = "csv")]
    format: String,
}

/// Runs `xtrunk cdr …`.
pub(crate) fn cdr(cmd: &CdrCmd) -> anyhow::Result<()> {
    let (a, report) = match cmd {
        CdrCmd::Export(a) => (a, false),
        CdrCmd::Report(a) => (a, true),
    };
    let cfg = Config::load(&a.config)?;
    let time = |s: &str, what: &str| export::parse_time(s).with_context(|| format!("--{what}: not a date: {s:?}"));
    let f = Filter {
        from_ms: time(&a.from, "from")?,
        to_ms: time(&a.to, "to")?,
        account: a.account.clone(),
        trunk: a.trunk.clone(),
    };
    let format = match a.format.as_str() {
        "csv" => Format::Csv,
        "json" => Format::Json,
        other => anyhow::bail!("--format: csv or json, got {other:?}"),
    };
    let mut db = xtrunk_cdrstore::db::open(&cfg.cdr)?.context("cdr.store is \"none\" in this configuration")?;
    let rows = db.query(&f)?;
    let mut out = std::io::stdout().lock();
    if report {
        serde_json::to_writer_pretty(&mut out, &xtrunk_cdrstore::report::short_calls(&rows))?;
        writeln!(out)?;
    } else {
        export::write(&mut out, &rows, format)?;
    }
    Ok(())
}
