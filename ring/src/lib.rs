//! Shared-memory session ring between the signaling sidecar and the datapath.

pub mod msg;
