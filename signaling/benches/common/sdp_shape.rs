//! SDP bodies of a given size for the SDP cost bench and test (shared by `#[path]`).
//!
//! [`formats_by_attrs`]: one audio stream whose `m=` line and `a=` lines each take about half of
//! the body. The formats cycle 0, 8, 101 and the dynamic types 96..=127; the attribute lines are
//! fillers followed by the `rtpmap`/`fmtp` lines, so a look-up per format that scans the
//! attribute lines (the old code) costs formats × attributes. [`at_limits`]: the largest shape
//! the parser keeps (64 formats, about 1 000 attribute lines).

#![allow(dead_code)] // each user takes what it needs

use std::fmt::Write as _;

const HEAD: &str = "v=0\r\no=big 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n";

fn with(formats: usize, fillers: usize) -> String {
    let mut s = String::from(HEAD);
    s.push_str("m=audio 6000 RTP/AVP");
    let cycle = [0u8, 8, 101].into_iter().chain(96..=100).chain(102..=127);
    for pt in cycle.cycle().take(formats) {
        let _ = write!(s, " {pt}");
    }
    s.push_str("\r\n");
    for k in 0..fillers {
        let _ = write!(s, "a=x-filler:{k} some-value\r\n");
    }
    s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n");
    for pt in (96..=100).chain(102..=127) {
        let _ = write!(s, "a=rtpmap:{pt} X-DYN{pt}/8000\r\na=fmtp:{pt} mode={pt}\r\n");
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s
}

/// About `bytes` of SDP, half formats (3–4 bytes each) and half attribute lines (~28 bytes).
pub(crate) fn formats_by_attrs(bytes: usize) -> String {
    with(bytes / 2 / 4, bytes / 2 / 28)
}

/// 64 formats and about 1 000 attribute lines (~30 KB): accepted by the parser's default limits.
pub(crate) fn at_limits() -> String {
    with(64, 1024 - 2 - 2 * 31 - 2)
}
