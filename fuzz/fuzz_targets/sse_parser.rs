//! The SSE parser must not panic and must give the same events for any split of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyroute_core::sse::SseParser;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else { return };
    let mut p = SseParser::new();
    let mut whole = p.push(body);
    whole.extend(p.finish());
    let c = usize::from(cut) * body.len() / 255;
    let mut p = SseParser::new();
    let mut split = p.push(&body[..c]);
    split.extend(p.push(&body[c..]));
    split.extend(p.finish());
    assert_eq!(whole, split);
});
