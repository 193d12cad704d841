//! See `polyroute_core::fuzzing::account_queries` (the same check runs on stable in `scripts/fuzz --bounded`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| polyroute_core::fuzzing::account_queries(data));
