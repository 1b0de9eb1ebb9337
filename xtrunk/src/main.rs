//! xtrunk main binary.
fn main() {}
