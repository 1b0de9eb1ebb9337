//! xtrunk configuration schema: serde + toml, validated with key paths.
