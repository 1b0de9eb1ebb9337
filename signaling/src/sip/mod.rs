//! SIP: the message model and parser, the transaction layer, dialogs, status codes and the
//! request checks made before a request reaches the B2BUA.

pub mod dialog;
pub mod msg;
pub mod preflight;
pub mod status;
pub mod transaction;
