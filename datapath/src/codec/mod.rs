//! Speech codecs the relay transcodes with. The only FFI of the relay core lives here.
//!
//! - [`bcg729`]: G.729 Annex A (with Annex B VAD/DTX/CNG) through Debian's `libbcg729`, linked
//!   dynamically (`libbcg729-dev`, installed by `scripts/setup`). Contexts are created when a
//!   session is created, never on the packet path.

pub mod bcg729;
