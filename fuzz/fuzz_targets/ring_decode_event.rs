//! Arbitrary bytes → ring slot → event decoder: must never panic; whatever is accepted must
//! re-encode to a slot that decodes to the same event.
//!
//! The first input byte chooses whether the checksum is recomputed (`wire::seal`) first, so the
//! field validators behind the checksum get exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_ring::wire::{self, Slot};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut slot = Slot::from_bytes(rest);
    if flags & 1 == 1 {
        wire::seal(&mut slot);
    }
    if let Ok(ev) = wire::decode_event(&slot) {
        let again = wire::encode_event(&ev, slot.seq);
        assert_eq!(wire::decode_event(&again), Ok(ev));
    }
});
