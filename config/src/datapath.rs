//! `[datapath]`: backend, cores, rings and AF_XDP.

use serde::{Deserialize, Serialize};

/// `[datapath]`: the packet path.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Datapath {
    /// socket (portable), af_xdp (kernel bypass, root) or auto (af_xdp when possible).
    pub backend: Backend,
    /// Cores the socket backend's worker threads are pinned to, one thread each; empty = one
    /// unpinned thread.
    pub socket_cores: Vec<usize>,
    /// Most concurrent sessions the datapath holds.
    pub max_sessions: usize,
    /// Shared-memory ring capacities.
    pub ring: RingSizes,
    /// AF_XDP settings (used when the backend is af_xdp or auto).
    pub af_xdp: AfXdp,
}

impl Default for Datapath {
    fn default() -> Self {
        Self {
            backend: Backend::Socket,
            socket_cores: Vec::new(),
            max_sessions: 5_000,
            ring: RingSizes::default(),
            af_xdp: AfXdp::default(),
        }
    }
}

/// Datapath backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// UDP sockets with recvmmsg/sendmmsg: runs anywhere, no root.
    Socket,
    /// AF_XDP sockets fed by the XDP program; needs root and an XDP-capable driver.
    AfXdp,
    /// AF_XDP when it can attach, else sockets (the reason is logged).
    Auto,
}

/// `[datapath.ring]`: capacities in messages; each a power of two.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingSizes {
    /// signaling → datapath commands.
    pub commands: u32,
    /// datapath → signaling events.
    pub events: u32,
}

impl Default for RingSizes {
    fn default() -> Self {
        Self { commands: 4096, events: 4096 }
    }
}

/// `[datapath.af_xdp]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AfXdp {
    /// Interfaces and the queues served on each. TOML: `[[datapath.af_xdp.interfaces]]`.
    pub interfaces: Vec<Interface>,
    /// copy, zerocopy, or auto (zero-copy, falling back to copy where the driver refuses).
    pub mode: XdpMode,
    /// UMEM frame size in bytes: 2048 or 4096.
    pub frame_size: u32,
    /// UMEM frames per socket; a power of two.
    pub frame_count: u32,
    /// Descriptors in each of the fill/completion/RX/TX rings; a power of two.
    pub ring_size: u32,
    /// Forward sessions that need no payload work inside the XDP program.
    pub fast_path: bool,
}

impl Default for AfXdp {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            mode: XdpMode::Auto,
            frame_size: 2048,
            frame_count: 4096,
            ring_size: 2048,
            fast_path: true,
        }
    }
}

/// AF_XDP bind mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum XdpMode {
    Copy,
    Zerocopy,
    Auto,
}

/// One NIC served by AF_XDP.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Kernel interface name, e.g. `ens1f0`.
    pub name: String,
    /// Queues served, each by one thread pinned to `core`. TOML: `[[datapath.af_xdp.interfaces.queues]]`
    /// or inline `queues = [{ id = 0, core = 2 }]`.
    pub queues: Vec<Queue>,
}

/// One NIC RX/TX queue and the core that serves it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Queue index on the NIC.
    pub id: u32,
    /// CPU core the serving thread is pinned to (and the queue's IRQ should be, see
    /// `scripts/tune-nic`).
    pub core: usize,
}
