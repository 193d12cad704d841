//! Incremental Server-Sent Events parser.
//!
//! [`SseParser::push`] accepts any split of the byte stream (one byte at a time included) and returns the events
//! completed so far; [`SseParser::finish`] flushes a final event that was not followed by a blank line. It handles
//! `\n`, `\r\n` and bare `\r` line endings (also when a `\r\n` pair is split across pushes), `event:` names,
//! multi-line `data:`, comment lines (`: OPENROUTER PROCESSING`), a leading UTF-8 byte-order mark, and streams
//! that end without `[DONE]` or without a trailing blank line.
//!
//! Lines that are neither fields the SSE grammar knows (`data`, `event`, `id`, `retry`) nor comments are kept as a
//! *raw* event: Gemini sends a mid-stream error as a bare, pretty-printed JSON object without a `data:` prefix, and
//! a dialect needs to see it.

/// One dispatched event (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if any.
    pub event: Option<String>,
    /// The joined `data:` lines (or the raw lines for a raw event).
    pub data: String,
    /// True when `data` holds lines that were not SSE fields (a bare JSON body, for example).
    pub raw: bool,
}

/// One dispatched event, borrowed from the parser's buffers (see [`SseParser::push_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEventRef<'a> {
    /// The `event:` name, if any.
    pub event: Option<&'a str>,
    /// The joined `data:` lines (or the raw lines for a raw event).
    pub data: &'a str,
    /// True when `data` holds lines that were not SSE fields.
    pub raw: bool,
}

impl SseEventRef<'_> {
    /// An owned copy.
    #[must_use]
    pub fn to_owned_event(&self) -> SseEvent {
        SseEvent {
            event: self.event.map(str::to_string),
            data: self.data.to_string(),
            raw: self.raw,
        }
    }
}

/// The incremental parser. Cheap to create; keep one per response body.
#[derive(Debug, Default, Clone)]
pub struct SseParser {
    /// Bytes of an unfinished line.
    line: Vec<u8>,
    /// The previous push ended with `\r`; a `\n` at the start of the next push belongs to it.
    skip_lf: bool,
    /// The BOM check has been done.
    started: bool,
    event: String,
    has_event: bool,
    data: String,
    has_data: bool,
    stray: String,
}

type Sink<'s> = dyn FnMut(SseEventRef<'_>) + 's;

impl SseParser {
    /// A fresh parser.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held for what has not been dispatched yet: the unfinished line and the event being assembled. A
    /// caller bounds it (an upstream that never ends a line or an event would grow it without end).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.line.len() + self.data.len() + self.event.len() + self.stray.len()
    }

    /// Feed bytes; returns the events completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.push_into(bytes, &mut out);
        out
    }

    /// Feed bytes, appending completed events to `out`.
    pub fn push_into(&mut self, input: &[u8], out: &mut Vec<SseEvent>) {
        self.push_with(input, &mut |e: SseEventRef<'_>| {
            out.push(e.to_owned_event())
        });
    }

    /// Feed bytes, handing each completed event to `sink` as it completes; the event borrows the parser's
    /// buffers, so no allocation is made per event.
    pub fn push_with(&mut self, mut input: &[u8], sink: &mut Sink<'_>) {
        if input.is_empty() {
            return;
        }
        if self.skip_lf {
            self.skip_lf = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        if !self.started && self.line.is_empty() && (input.len() >= BOM.len() || input[0] != BOM[0])
        {
            // The BOM check on a first push that holds it whole or cannot start one: no copy.
            self.started = true;
            self.feed(input.strip_prefix(BOM).unwrap_or(input), sink);
            return;
        }
        if !self.started {
            // Strip a UTF-8 BOM, which may itself arrive split across pushes.
            let mut probe = std::mem::take(&mut self.line);
            probe.extend_from_slice(input);
            if probe.len() < BOM.len() && BOM.starts_with(&probe) {
                self.line = probe;
                return;
            }
            self.started = true;
            let rest = probe.strip_prefix(BOM).unwrap_or(&probe).to_vec();
            self.feed(&rest, sink);
            return;
        }
        self.feed(input, sink);
    }

    fn feed(&mut self, mut input: &[u8], sink: &mut Sink<'_>) {
        while let Some(i) = find_eol(input) {
            let term = input[i];
            if self.line.is_empty() {
                if term == b'\n' && input.get(i + 1) == Some(&b'\n') {
                    if let Some(rest) = self.whole_data_event(&input[..i], input, i, sink) {
                        input = rest;
                        continue;
                    }
                }
                self.process_line(&input[..i], sink);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&input[..i]);
                self.process_line(&line, sink);
                line.clear();
                self.line = line;
            }
            input = &input[i + 1..];
            if term == b'\r' {
                match input.first() {
                    Some(b'\n') => input = &input[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
        }
        self.line.extend_from_slice(input);
    }

    /// The usual event, one `data:` line and a blank line, whole in the input with nothing else pending: handed
    /// to `sink` straight from the input (as `process_line` then `dispatch` would hand it, without the copy into
    /// the data buffer); the input after it, or `None` when it is not that case.
    fn whole_data_event<'i>(
        &mut self,
        line: &[u8],
        input: &'i [u8],
        eol: usize,
        sink: &mut Sink<'_>,
    ) -> Option<&'i [u8]> {
        if self.has_data || !self.stray.is_empty() {
            return None;
        }
        let v = line.strip_prefix(b"data:")?;
        let data = std::str::from_utf8(v.strip_prefix(b" ").unwrap_or(v)).ok()?;
        let event = self.has_event.then_some(self.event.as_str());
        sink(SseEventRef {
            event,
            data,
            raw: false,
        });
        self.has_event = false;
        input.get(eol + 2..)
    }

    /// End of body: flush an unterminated last line and a pending event.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.finish_with(&mut |e: SseEventRef<'_>| out.push(e.to_owned_event()));
        out
    }

    /// [`finish`](Self::finish) handing events to `sink`.
    pub fn finish_with(&mut self, sink: &mut Sink<'_>) {
        if !self.started && !self.line.is_empty() {
            self.started = true;
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, sink);
        }
        self.dispatch(sink);
        self.skip_lf = false;
    }

    fn process_line(&mut self, line: &[u8], sink: &mut Sink<'_>) {
        if line.is_empty() {
            self.dispatch(sink);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                push_utf8(&mut self.data, value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                push_utf8(&mut self.event, value);
                self.has_event = true;
            }
            b"id" | b"retry" => {}
            _ => {
                push_utf8(&mut self.stray, line);
                self.stray.push('\n');
            }
        }
    }

    fn dispatch(&mut self, sink: &mut Sink<'_>) {
        if self.has_data {
            let event = self.has_event.then_some(self.event.as_str());
            sink(SseEventRef {
                event,
                data: &self.data,
                raw: false,
            });
            self.data.clear();
            self.has_data = false;
        }
        self.has_event = false;
        if !self.stray.is_empty() {
            if !self.stray.trim().is_empty() {
                sink(SseEventRef {
                    event: None,
                    data: &self.stray,
                    raw: true,
                });
            }
            self.stray.clear();
        }
    }
}

/// Position of the first `\n` or `\r` (the parser's hot loop; memchr searches many bytes at a time).
fn find_eol(s: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', s)
}

fn push_utf8(dst: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => dst.push_str(s),
        Err(_) => dst.push_str(&String::from_utf8_lossy(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut v = p.push(input);
        v.extend(p.finish());
        v
    }

    #[test]
    fn buffered_counts_what_is_not_dispatched() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: abc").is_empty());
        assert_eq!(p.buffered(), 9);
        assert!(p.push(b"\ndata: de\n").is_empty());
        assert!(p.buffered() >= 6, "{}", p.buffered());
        assert_eq!(p.push(b"\n").len(), 1);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn basic_events_and_comments() {
        let ev = all(b": OPENROUTER PROCESSING\n\nevent: ping\ndata: {\"a\":1}\n\ndata: x\ndata: y\n\ndata: [DONE]\n\n");
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].event.as_deref(), Some("ping"));
        assert_eq!(ev[1].data, "x\ny");
        assert_eq!(ev[2].data, "[DONE]");
    }

    #[test]
    fn crlf_split_anywhere() {
        let input = b"\xEF\xBB\xBFdata: a\r\n\r\ndata:b\r\rdata: c";
        let whole = all(input);
        assert_eq!(
            whole.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        for cut in 0..input.len() {
            let mut p = SseParser::new();
            let mut v = p.push(&input[..cut]);
            v.extend(p.push(&input[cut..]));
            v.extend(p.finish());
            assert_eq!(v, whole, "cut at {cut}");
        }
        let mut p = SseParser::new();
        let mut v = Vec::new();
        for b in input {
            v.extend(p.push(std::slice::from_ref(b)));
        }
        v.extend(p.finish());
        assert_eq!(v, whole);
    }

    #[test]
    fn find_eol_matches_a_scan() {
        let mut buf = vec![b'x'; 40];
        for i in 0..40 {
            for t in [b'\n', b'\r'] {
                buf[i] = t;
                for start in 0..=i {
                    assert_eq!(find_eol(&buf[start..]), Some(i - start));
                }
                buf[i] = 0x8a;
            }
        }
        assert_eq!(find_eol(&buf), None);
    }

    /// Events as a byte-at-a-time feed reads them (which never sees a line and its blank line together).
    fn one_byte_at_a_time(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut v = Vec::new();
        for b in input {
            v.extend(p.push(std::slice::from_ref(b)));
        }
        v.extend(p.finish());
        v
    }

    proptest::proptest! {
        /// Whole `data:` events read straight from the input are the events a byte-at-a-time feed reads, however
        /// the input is cut.
        #[test]
        fn whole_events_read_from_the_input_match_a_byte_feed(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "data: {\"a\":1}\n\n", "data:x\n\n", "data: \n\n", "data:  two spaces\n\n", "data: a\n",
                "event: e\n", ": comment\n", "\n", "\r\n", "\r", "id: 1\n", "raw line\n", "data: caf\u{e9}\n\n",
                "data: \u{fffd}\n\n", "dat", "a: y\n\n", "data", ":z\n\n", "\u{feff}",
            ]), 0..16),
            bad_utf8 in proptest::bool::ANY,
            cut in 1usize..40,
        ) {
            let mut input = pieces.concat().into_bytes();
            if bad_utf8 {
                input.extend_from_slice(b"data: \xff\xfe\n\ndata: ok\n\n");
            }
            let want = one_byte_at_a_time(&input);
            let mut p = SseParser::new();
            let mut got = Vec::new();
            for piece in input.chunks(cut) {
                got.extend(p.push(piece));
            }
            got.extend(p.finish());
            proptest::prop_assert_eq!(&got, &want);
            let mut p = SseParser::new();
            let mut whole = p.push(&input);
            whole.extend(p.finish());
            proptest::prop_assert_eq!(whole, want);
        }
    }

    #[test]
    fn raw_lines_become_raw_event() {
        let ev = all(b"data: {}\n\n{\n  \"error\": {\"code\": 499}\n}\n");
        assert_eq!(ev.len(), 2);
        assert!(ev[1].raw);
        assert!(ev[1].data.contains("499"));
    }
}
