//! The datapath and signaling roles: glue from the config and the ring to the two crates.

use xtrunk_config::Config;

/// `xtrunk datapath`.
pub(crate) fn datapath(_cfg: &Config) -> anyhow::Result<()> {
    anyhow::bail!("datapath role: wiring in progress")
}

/// `xtrunk signaling`.
pub(crate) fn signaling(_cfg: &Config) -> anyhow::Result<()> {
    anyhow::bail!("signaling role: wiring in progress")
}
