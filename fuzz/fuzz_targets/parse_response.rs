//! Response and error parsing must not panic on any body or status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyroute_core::providers::{map_error, parse_response, Dialect, ResponseContext};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let status = [200u16, 201, 400, 401, 404, 429, 500, 529][usize::from(sel % 8)];
    for d in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini] {
        let _ = parse_response(d, status, body, &ResponseContext::default());
        let f = map_error(d, status, Some(1.0), body, "p");
        assert!(f.envelope["error"]["code"].is_u64());
    }
});
