//! `xtrunk`: the SIP-trunking edge.
//!
//! One binary, several roles. `xtrunk run` is what a host normally starts: it supervises the
//! datapath and the signaling sidecar as two processes joined by the shared-memory session ring,
//! restarts the sidecar if it dies (media of calls in progress keeps flowing through the
//! datapath), and on SIGINT/SIGTERM stops both and removes the shared-memory file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtrunk_config::Config;

mod admin;
mod control;
mod ctl;
mod ops;
mod roles;
mod supervise;

/// xtrunk — SIP-trunking edge with a kernel-bypass media relay.
///
/// The datapath relays RTP/RTCP between the two legs of each call (UDP sockets, or AF_XDP with an
/// XDP program on the media port range). The signaling sidecar is a SIP B2BUA that allocates
/// media sessions in the datapath through a shared-memory ring. A sidecar crash does not cut the
/// media of calls in progress.
#[derive(Parser, Debug)]
#[command(name = "xtrunk", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

const EXAMPLES: &str = "\
EXAMPLES:
    xtrunk run --config config/xtrunk.toml       start datapath + sidecar on loopback
    xtrunk check-config /etc/xtrunk/xtrunk.toml  list every problem in a file, exit 1 if any
    xtrunk ctl -c /etc/xtrunk/xtrunk.toml get calls   the admin API ([control]) from the shell
    xtrunk cdr export -c /etc/xtrunk/xtrunk.toml --from 2026-12-01 --to 2027-01-01 --format csv
    xtrunk datapath --config /etc/xtrunk/xtrunk.toml    only the packet path (split hosts)
    xtrunk signaling --config /etc/xtrunk/xtrunk.toml   only the SIP sidecar

FILES:
    config/xtrunk.toml            the embedded default (loopback, socket backend, no root)
    config/carrier.example.toml   a production host (AF_XDP on two queues, pinned cores, TLS)
    /dev/shm/xtrunk               the session ring ([node].shm_path)

EXIT STATUS:
    0 clean stop; 1 bad configuration or runtime failure; 2 usage error.";

#[derive(Subcommand, Debug)]
enum Role {
    /// Run the datapath and the signaling sidecar as two supervised processes.
    ///
    /// The datapath starts first and creates the session ring; then the sidecar attaches. If the
    /// sidecar exits it is restarted and recovers the sessions from the datapath. If the datapath
    /// exits, everything stops. SIGINT/SIGTERM stop both and remove the shared-memory file.
    Run(ConfigArg),
    /// Run only the datapath (creates the session ring and relays media).
    Datapath(ConfigArg),
    /// Run only the signaling sidecar (attaches to a running datapath's ring).
    Signaling(ConfigArg),
    /// Validate a configuration file: print every problem with its key path; exit 1 on any.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// CDRs from the store (`[cdr].store`): export a period, the short-call report.
    #[command(subcommand)]
    Cdr(ops::CdrCmd),
    /// The admin API's client: list and change trunks, routes, accounts; list and end calls.
    Ctl(ctl::CtlArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct ConfigArg {
    /// Configuration file (TOML). Without it the embedded default (config/xtrunk.toml) is used.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn load(&self) -> Result<Config, xtrunk_config::Error> {
        match &self.config {
            Some(p) => Config::load(p),
            None => Config::embedded_default(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Role::CheckConfig { file } = &cli.role {
        return check_config(file);
    }
    if let Role::Ctl(a) = &cli.role {
        return match ctl::ctl(a) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("xtrunk ctl: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    if let Role::Cdr(c) = &cli.role {
        return match ops::cdr(c) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtrunk: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let arg = match &cli.role {
        Role::Run(a) | Role::Datapath(a) | Role::Signaling(a) => a.clone(),
        Role::CheckConfig { .. } | Role::Cdr(_) | Role::Ctl(_) => unreachable!("handled above"),
    };
    let cfg = match arg.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtrunk: {e}");
            return ExitCode::from(1);
        }
    };
    let _log_guard = init_logging(&cfg);
    let result = match cli.role {
        Role::Run(_) => supervise::run(&cfg, arg.config.as_deref()),
        Role::Datapath(_) => roles::datapath(&cfg),
        Role::Signaling(_) => roles::signaling(&cfg, arg.config.as_deref()),
        Role::CheckConfig { .. } | Role::Cdr(_) | Role::Ctl(_) => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("xtrunk: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `tracing` to stderr through a non-blocking writer (a full buffer drops lines, it never
/// blocks the SIP loop), text or JSON (`node.log_format`), filtered by `RUST_LOG` or else
/// `node.log_level`; `log` records (most of the code base) are bridged into it. The returned
/// guard flushes the writer when dropped.
fn init_logging(cfg: &Config) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let level = cfg.node.log_level.as_str();
    let from_env = std::env::var("RUST_LOG").is_ok();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // `log`'s own level gate stays as cheap as before: only what can pass the filter is built.
    let log_max = if from_env { log::LevelFilter::Trace } else { level.parse().unwrap_or(log::LevelFilter::Info) };
    let _ = tracing_log::LogTracer::init_with_filter(log_max);
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(false);
    let _ = match cfg.node.log_format {
        xtrunk_config::LogFormat::Text => fmt.try_init(),
        xtrunk_config::LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).try_init(),
    };
    guard
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} listener(s), media {}-{}, backend {:?}, {} trunk(s), {} route(s))",
                file.display(),
                cfg.sip.listen.len(),
                cfg.media.port_min,
                cfg.media.port_max,
                cfg.datapath.backend,
                cfg.trunks.len(),
                cfg.routes.len()
            );
            for w in cfg.warnings() {
                println!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::from(1)
        }
    }
}
