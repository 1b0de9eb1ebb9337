//! `xtrunk-bench srtp`: SRTP cost per packet, xtrunk vs libsrtp2.

/// Arguments of `xtrunk-bench srtp`.
#[derive(clap::Args, Debug)]
pub(crate) struct SrtpArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Runs the SRTP benchmark.
pub(crate) fn run(_args: SrtpArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
