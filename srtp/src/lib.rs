//! SRTP/SRTCP (RFC 3711, RFC 7714) contexts for the xtrunk datapath, sans-IO
