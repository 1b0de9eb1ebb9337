//! UDPTL (T.38): no panic; a packet that parses with redundancy re-emits to the same bytes
//! (PER lengths in their shortest form, as `new_checked` reads them back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::wire::udptl::{emit_redundant, Recovery, Udptl};

fuzz_target!(|data: &[u8]| {
    let Ok(u) = Udptl::new_checked(data) else { return };
    let entries: Vec<&[u8]> = u.entries().collect();
    match u.recovery() {
        Recovery::Redundancy { count } | Recovery::Fec { count, .. } => assert_eq!(entries.len(), count),
    }
    if let Recovery::Redundancy { .. } = u.recovery() {
        let mut out = vec![0u8; data.len() + 8];
        let n = emit_redundant(&mut out, u.seq(), u.primary(), &entries).unwrap();
        let again = Udptl::new_checked(&out[..n]).unwrap();
        assert_eq!((again.seq(), again.primary()), (u.seq(), u.primary()));
        assert!(again.entries().eq(entries.iter().copied()));
    }
});
