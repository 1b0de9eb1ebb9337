//! `xtrunk-bench relay`.

/// Arguments of `xtrunk-bench relay`.
#[derive(clap::Args, Debug)]
pub(crate) struct RelayArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Runs `xtrunk-bench relay`.
pub(crate) fn run(_args: RelayArgs) -> anyhow::Result<()> {
    anyhow::bail!("xtrunk-bench relay: not implemented yet")
}
