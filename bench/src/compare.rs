//! `xtrunk-bench compare`.

/// Arguments of `xtrunk-bench compare`.
#[derive(clap::Args, Debug)]
pub(crate) struct CompareArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Runs `xtrunk-bench compare`.
pub(crate) fn run(_args: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("xtrunk-bench compare: not implemented yet")
}
