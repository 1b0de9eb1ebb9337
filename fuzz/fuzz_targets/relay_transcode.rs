//! G.729 ↔ G.711 payloads of any length and content through one session's codec state (#18):
//! no panic; a payload is accepted exactly when its framing is valid, and the output length
//! follows from the frame count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::relay::transcode::{g711_frames, g729_frames, Law, Transcoder};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, payload)) = data.split_first() else { return };
    let mut x = Transcoder::new().unwrap();
    let law = if sel & 1 == 0 { Law::A } else { Law::U };
    let off = usize::from(sel >> 4);
    let room = if sel & 2 == 0 { 2048 } else { off + payload.len() + 8 };
    let mut buf = vec![0u8; room.max(off + payload.len())];
    buf[off..off + payload.len()].copy_from_slice(payload);
    let mut again = buf.clone();
    match (x.g729_to_g711(&mut buf, off, payload.len(), law), g729_frames(payload.len())) {
        (Ok(n), Ok((speech, sid))) => assert_eq!(n, (speech + usize::from(sid)) * 80),
        (Err(_), Ok((speech, sid))) => assert!(off + (speech + usize::from(sid)) * 80 > buf.len()),
        (Ok(_), Err(_)) => panic!("accepted bad G.729 framing"),
        (Err(_), Err(_)) => {}
    }
    match (x.g711_to_g729(&mut again, off, payload.len(), law), g711_frames(payload.len())) {
        (Ok(n), Ok(frames)) => assert_eq!(n, frames * 10),
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => panic!("G.711 framing disagrees"),
        (Err(_), Err(_)) => {}
    }
});
