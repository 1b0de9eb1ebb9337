//! The portable UDP-socket backend: the embedded default and the baseline of every benchmark.
