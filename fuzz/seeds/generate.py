#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/ from the repository's test data (run from anywhere; idempotent).

sip_parse, sip_core: every message a SIPp scenario in signaling/tests/scenarios sends, with its
  [fields] filled in (the RFC 4475 torture messages are copied by scripts/fuzz directly).
sdp_parse: the SDP bodies of those scenarios and of the sdp unit tests.
wire_*, relay_handle_packet, relay_transcode, srtp_*, ring_*: packets shaped like the datapath test vectors
  (RTP PCMA/PCMU, RFC 4733 events, RTCP SR+SDES / RR+BYE, IPv4/IPv6 UDP, Ethernet ± VLAN), in
  each target's input format (see the target's header comment).
"""
import re, struct, pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "fuzz" / "seeds"

def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)

FIELDS = {
    "service": "49301", "remote_ip": "127.0.0.1", "remote_port": "5060", "local_ip": "127.0.0.1",
    "local_port": "5062", "media_ip": "127.0.0.1", "media_port": "6000", "media_ip_type": "4",
    "local_ip_type": "4", "transport": "UDP", "call_number": "1", "cseq": "1", "pid": "77",
    "call_id": "1-77@127.0.0.1", "branch": "z9hG4bK-77-1-0", "auto_media_port": "6002",
}
LAST = {
    "Via": "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx1;rport=5060",
    "From": "From: <sip:pbx@127.0.0.1:5062>;tag=77SIPpTag001",
    "To": "To: <sip:49301@127.0.0.1:5060>;tag=xt1",
    "Call-ID": "Call-ID: 1-77@127.0.0.1",
    "CSeq": "CSeq: 1 INVITE",
    "Record-Route": "Record-Route: <sip:127.0.0.1:5060;lr>",
    "Contact": "Contact: <sip:xtrunk@127.0.0.1:5060>",
}

def fill(msg):
    msg = re.sub(r"\[last_([A-Za-z-]+):?\]", lambda m: LAST.get(m.group(1), ""), msg)
    msg = re.sub(r"\[field\d+\]", "1000", msg)
    msg = re.sub(r"\[(\w+)\]", lambda m: FIELDS.get(m.group(1), m.group(0)), msg)
    lines = [l.strip() for l in msg.strip().splitlines()]
    head, body = [], []
    for i, l in enumerate(lines):
        if l == "":
            body = lines[i + 1:]
            break
        head.append(l)
    body_s = "".join(b + "\r\n" for b in body if b)
    head_s = "\r\n".join(head).replace("[len]", str(len(body_s)))
    return (head_s + "\r\n\r\n" + body_s).encode(), body_s.encode()

sdps = []
msgs = []
for xml in sorted((ROOT / "signaling" / "tests" / "scenarios").glob("*.xml")):
    for k, m in enumerate(re.findall(r"<send[^>]*>\s*<!\[CDATA\[(.*?)\]\]>", xml.read_text(), re.S)):
        raw, body = fill(m)
        msgs.append(raw)
        put("sip_parse", f"{xml.stem}-{k}.sip", raw)
        if body.startswith(b"v=0"):
            sdps.append((f"{xml.stem}-{k}", body))
# sip_core splits its input on 0xff into datagrams from two peers: a caller's INVITE..BYE.
for name in ["uac_basic", "uac_hold", "uac_srtp", "uac_cancel", "uac_update"]:
    ms = sorted((OUT / "sip_parse").glob(f"{name}-*.sip"))
    seq = []
    for m in ms:
        seq += [m.read_bytes(), b""]  # even index: from the caller, odd: from the carrier
    put("sip_core", f"{name}.bin", b"\xff".join(seq))

UNIT = [
    "v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=rtcp:6005\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xx\r\na=sendonly\r\nm=video 6002 RTP/AVP 31\r\n",
    "v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/SAVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\na=crypto:2 AEAD_AES_128_GCM inline:BwcHBwcHBwcHBwcHBwcHBwgICAgICAgICAgICA==\r\na=sendrecv\r\n",
    "v=0\r\no=a 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 4000/2 RTP/AVPF 96 0\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtcp-mux\r\na=maxptime:40\r\na=inactive\r\n",
    "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 8\r\na=recvonly\r\n",
]
for k, s in enumerate(UNIT):
    sdps.append((f"unit-{k}", s.encode()))
for name, body in sdps:
    put("sdp_parse", f"{name}.sdp", body)

def rtp(pt, seq, ts, ssrc, payload, marker=0):
    return struct.pack("!BBHII", 0x80, (marker << 7) | pt, seq, ts, ssrc) + payload

def dtmf(event, end, vol, dur):
    return struct.pack("!BBH", event, (0x80 if end else 0) | vol, dur)

RTP = [rtp(8, 1, 160, 0x1234, b"\xd5" * 160), rtp(0, 2, 320, 0x1234, b"\xff" * 160, 1),
       rtp(101, 3, 480, 0x1234, dtmf(5, False, 10, 160)), rtp(101, 4, 480, 0x1234, dtmf(5, True, 10, 800)),
       bytes([0x90, 8, 0, 5]) + struct.pack("!II", 0, 1) + struct.pack("!HH", 0xbede, 1) + b"\x10\x01\x00\x00" + b"\xd5" * 20,
       bytes([0xa2, 8, 0, 6]) + struct.pack("!II", 0, 1) + struct.pack("!II", 2, 3) + b"\xd5" * 8 + b"\x00\x00\x00\x04"]
SR = struct.pack("!BBHI", 0x81, 200, 12, 0x1234) + struct.pack("!IIIII", 0xe000, 0, 160, 10, 1600) + struct.pack("!IIIIII", 0x5678, 0, 3, 0, 0, 0)
SDES = struct.pack("!BBHI", 0x81, 202, 3, 0x1234) + b"\x01\x04xt@h\x00\x00"
RR_BYE = struct.pack("!BBHI", 0x80, 201, 1, 0x1234) + struct.pack("!BBHI", 0x81, 203, 1, 0x1234)
RTCP = [SR + SDES, RR_BYE, SR]
for k, p in enumerate(RTP):
    put("wire_rtp", f"rtp-{k}.bin", p)
for k, p in enumerate(RTCP):
    put("wire_rtcp", f"rtcp-{k}.bin", p)
for k, p in enumerate([dtmf(5, False, 10, 160), dtmf(11, True, 63, 1600) * 2, dtmf(16, True, 0, 0xffff)]):
    put("wire_dtmf", f"dtmf-{k}.bin", p)

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def udp4(src, dst, sp, dp, payload):
    ul = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ul)
    u = struct.pack("!HHHH", sp, dp, ul, 0) + payload
    c = csum(pseudo + u) or 0xffff
    u = u[:6] + struct.pack("!H", c) + u[8:]
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0xb8, 20 + ul, 1, 0x4000, 64, 17, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + u

def udp6(src, dst, sp, dp, payload):
    ul = 8 + len(payload)
    pseudo = src + dst + struct.pack("!II", ul, 17)
    u = struct.pack("!HHHH", sp, dp, ul, 0) + payload
    c = csum(pseudo + u) or 0xffff
    u = u[:6] + struct.pack("!H", c) + u[8:]
    return struct.pack("!IHBB", 0x60000000, ul, 17, 64) + src + dst + u

A, B = bytes([10, 0, 0, 1]), bytes([127, 0, 0, 1])
A6, B6 = bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db8000000000000000000000002")
v4 = [udp4(A, B, 4000, 2000, RTP[0]), udp4(A, B, 4001, 2001, SR + SDES), udp4(A, B, 4000, 2000, RTP[2])]
v6 = [udp6(A6, B6, 4000, 2000, RTP[0]), udp6(A6, B6, 4001, 2001, RR_BYE)]
for k, p in enumerate(v4):
    put("wire_ipv4_udp", f"ipv4-{k}.bin", p)
for k, p in enumerate(v6):
    put("wire_ipv6_udp", f"ipv6-{k}.bin", p)
MAC = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")
eth = [MAC + b"\x08\x00" + v4[0], MAC + b"\x86\xdd" + v6[0], MAC + b"\x81\x00\x00\x64\x08\x00" + v4[1]]
for k, p in enumerate(eth):
    put("wire_ethernet", f"eth-{k}.bin", p)

# relay_handle_packet: records [port selector, source selector, length, bytes...].
def rec(port_sel, src_sel, pkt):
    return bytes([port_sel, src_sel, min(len(pkt), 255)]) + pkt[:255]
small = [rtp(8, 1, 160, 1, b"\xd5" * 40), rtp(0, 1, 160, 2, b"\xff" * 40), rtp(101, 2, 320, 1, dtmf(1, True, 10, 400)),
         rtp(13, 3, 480, 1, b"\x40"), SR + SDES, RR_BYE]
put("relay_handle_packet", "call.bin", rec(0, 0, small[0]) + rec(2, 2, small[1]) + rec(0, 0, small[2]) + rec(1, 1, small[4]) + rec(0, 0, small[3]))
put("relay_handle_packet", "mux.bin", rec(4, 4, small[0]) + rec(4, 4, small[5]) + rec(5, 5, small[1]) + rec(5, 6, small[0]))
put("relay_handle_packet", "srtp.bin", rec(7, 7, small[0]) + rec(8, 8, small[0]) + rec(9, 7, small[4]))
# G.729 leg (port 2030, source 4030) and G.711 leg (2032, 5030) with the backends' room (0x80;
# source selectors are taken modulo 15).
put("relay_handle_packet", "g729.bin", rec(10, 129, rtp(18, 1, 160, 3, bytes(range(20)))) + rec(11, 130, rtp(0, 1, 160, 4, b"\xff" * 160))
    + rec(10, 129, rtp(18, 2, 320, 3, bytes(range(12)))) + rec(10, 9, rtp(18, 3, 480, 3, bytes(range(30)))))
# In-band leg (2040, source 4040) and its RFC 4733 peer (2042, 5040); T.38 legs (2060/4060, 2062/5060).
put("relay_handle_packet", "inband.bin", rec(12, 11, rtp(8, 1, 160, 5, b"\xd5" * 160)) + rec(13, 12, rtp(101, 1, 160, 6, dtmf(5, False, 10, 160)))
    + rec(13, 12, rtp(0, 2, 320, 6, b"\xff" * 160)))
put("relay_handle_packet", "t38.bin", rec(14, 13, bytes([0, 1, 3, 6, 0x80, 1, 0, 1, 2, 6, 0x80])) + rec(15, 14, bytes([0, 1, 1, 7, 0, 0])))

# wire_rtcp_xr: an XR body (sender SSRC, one VoIP Metrics block), and an RR + XR compound.
VOIP = bytes([7, 0, 0, 8]) + struct.pack("!IBBBBHHHHbbBBBBBBBBHHH", 0x42, 13, 0, 0, 0, 0, 0, 120, 40, -20, -60, 127, 16,
                                           80, 127, 39, 38, 0, 0, 40, 80, 200)
put("wire_rtcp_xr", "voip-body.bin", struct.pack("!I", 0x11) + VOIP)
put("wire_rtcp_xr", "rr-xr.bin", bytes([0x80, 201, 0, 1, 0, 0, 0, 1, 0x80, 207, 0, 10]) + struct.pack("!I", 0x11) + VOIP)

# wire_udptl: T.38 UDPTL with two redundant IFPs, and with FEC.
put("wire_udptl", "redundancy.bin", bytes([0x12, 0x34, 3, 1, 2, 3, 0, 2, 2, 9, 9, 1, 7]))
put("wire_udptl", "fec.bin", bytes([0, 5, 1, 0xAA, 0x80, 1, 3, 1, 2, 0x11, 0x22]))

# relay_transcode: selector byte (law in bit 0, tight buffer with bit 1, offset in bits 4-7), payload.
put("relay_transcode", "g729-20ms.bin", b"\x01" + bytes(range(20)))
put("relay_transcode", "g729-sid.bin", b"\x00" + bytes(range(12)))
put("relay_transcode", "g711-30ms.bin", b"\x23" + b"\xd5" * 240)

# srtp_*: selector byte (suite in bits 0-1, round trip with bit 2), then the packet.
for s in range(4):
    put("srtp_unprotect_rtp", f"rtp-suite{s}.bin", bytes([4 | s]) + RTP[0][:60])
    put("srtp_unprotect_rtcp", f"rtcp-suite{s}.bin", bytes([4 | s]) + SR + SDES)

# ring_*: flag byte (1 = recompute the checksum), then a slot; all-zero slots, sealed.
for t in ["ring_decode_command", "ring_decode_event"]:
    for k in range(4):
        put(t, f"slot-{k}.bin", bytes([1]) + struct.pack("<I", k) + bytes(124))

# digest_credentials: Authorization values (the RFC 7616 §3.9.1 example, an RFC 2069 one with an
# escape) and a challenge value; kept as checked in (written by hand, not from test data).
