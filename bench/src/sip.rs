//! `xtrunk-bench sip`.

/// Arguments of `xtrunk-bench sip`.
#[derive(clap::Args, Debug)]
pub(crate) struct SipArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Runs `xtrunk-bench sip`.
pub(crate) fn run(_args: SipArgs) -> anyhow::Result<()> {
    anyhow::bail!("xtrunk-bench sip: not implemented yet")
}
