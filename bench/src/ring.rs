//! `xtrunk-bench ring`.

/// Arguments of `xtrunk-bench ring`.
#[derive(clap::Args, Debug)]
pub(crate) struct RingArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Runs `xtrunk-bench ring`.
pub(crate) fn run(_args: RingArgs) -> anyhow::Result<()> {
    anyhow::bail!("xtrunk-bench ring: not implemented yet")
}
