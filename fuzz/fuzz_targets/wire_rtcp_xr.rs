//! RTCP XR (RFC 3611): any bytes as an XR body and as a compound; no panic; a VoIP Metrics
//! block that parses re-emits to the same bytes (the reserved byte as zero).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::wire::rtcp_xr::{find_voip_metrics, VoipMetrics, VoipMetricsRepr, XrPacket, VOIP_METRICS};

fuzz_target!(|data: &[u8]| {
    let _ = find_voip_metrics(data);
    let Ok(xr) = XrPacket::new_checked(data) else { return };
    let _ = xr.ssrc();
    for b in xr.blocks() {
        if b.block_type != VOIP_METRICS {
            continue;
        }
        let Ok(v) = VoipMetrics::new_checked(b.body) else { continue };
        let r = v.repr();
        let mut out = [0u8; VoipMetricsRepr::BUFFER_LEN];
        assert_eq!(r.emit(&mut out), Ok(VoipMetricsRepr::BUFFER_LEN));
        let mut want = b.body.to_vec();
        want[25] = 0;
        assert_eq!(&out[4..], &want[..]);
    }
});
