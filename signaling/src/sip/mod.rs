//! SIP: the message model and parser, and the transaction layer.

pub mod msg;
pub mod transaction;
