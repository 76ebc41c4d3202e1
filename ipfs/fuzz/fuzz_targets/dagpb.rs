//! DAG-PB + UnixFS node decoding over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webaccel_ipfs::fuzzing::dagpb(data));
