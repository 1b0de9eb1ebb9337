//! Arbitrary bytes → ring slot → command decoder: must never panic; whatever is accepted must
//! re-encode to a slot that decodes to the same command.
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
    let _ = wire::check_seq(&slot, u64::from(flags));
    if let Ok(cmd) = wire::decode_command(&slot) {
        let again = wire::encode_command(&cmd, slot.seq);
        assert_eq!(wire::decode_command(&again), Ok(cmd));
    }
});
