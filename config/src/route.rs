//! `[[route]]`: the static routing table.

use serde::{Deserialize, Serialize};

/// A static route: calls whose Request-URI user matches go to `trunk`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Digits prefix of the called number (`+` and digits; empty = default route). The longest
    /// matching prefix wins.
    #[serde(default)]
    pub prefix: String,
    /// Only calls arriving from this trunk (by name); none = any.
    #[serde(default)]
    pub from_trunk: Option<String>,
    /// Destination trunk name.
    pub trunk: String,
}
