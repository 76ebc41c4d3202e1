//! CAR v1 parsing and the verifying walk over arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webaccel_ipfs::fuzzing::car(data));
