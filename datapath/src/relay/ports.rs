//! The ports a session uses, and the hooks through which backends that own a socket per port
//! learn of them.

use xtrunk_ring::msg::{ErrorCode, SessionSpec};

/// Port lifecycle hooks for backends that own a socket per port. [`Relay::apply_with`](super::Relay::apply_with) calls
/// `open` for each port a Create/Update starts using (after validation) and `close` for each port
/// a Delete/Update releases.
pub trait PortHooks {
    /// Prepare `port` (bind a socket). An error refuses the command with that code and port;
    /// ports opened earlier for the same command are closed again.
    fn open(&mut self, port: u16) -> Result<(), ErrorCode>;
    /// Release `port`.
    fn close(&mut self, port: u16);
}

/// [`PortHooks`] that do nothing (backends that steer by port in a shared socket, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPortHooks;

impl PortHooks for NoPortHooks {
    fn open(&mut self, _port: u16) -> Result<(), ErrorCode> {
        Ok(())
    }
    fn close(&mut self, _port: u16) {}
}

/// The local ports a spec uses: per leg the RTP port and, unless rtcp-mux, RTP+1.
pub fn spec_ports(spec: &SessionSpec) -> impl Iterator<Item = u16> + '_ {
    spec.legs.iter().flat_map(|l| {
        let p = l.local.port();
        [Some(p), (!l.rtcp_mux).then(|| p.wrapping_add(1))].into_iter().flatten()
    })
}
