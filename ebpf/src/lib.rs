//! The XDP program (C) and the repr(C) types shared by kernel and user side
