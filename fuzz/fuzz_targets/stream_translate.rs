//! Every dialect's stream translator must not panic, must be split-invariant and must end the stream with a
//! finish, usage or error chunk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyroute_core::providers::{Dialect, ResponseContext, StreamTranslator};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let d = [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini][usize::from(sel % 3)];
    let mut ctx = ResponseContext::default();
    if sel & 4 != 0 {
        ctx.hints.json_tool = Some("json_tool_call".into());
        ctx.hints.json_tool_wrapped = sel & 8 != 0;
    }
    let mut t = StreamTranslator::new(d, ctx.clone());
    let mut whole = t.push(body);
    whole.extend(t.finish());
    assert!(!whole.is_empty());
    let c = usize::from(sel) * body.len() / 255;
    let mut t = StreamTranslator::new(d, ctx);
    let mut split = t.push(&body[..c]);
    split.extend(t.push(&body[c..]));
    split.extend(t.finish());
    assert_eq!(whole, split);
});
