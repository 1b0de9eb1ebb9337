//! The AF_XDP backend: XSK sockets over UMEM, one per NIC queue, served by pinned threads.
