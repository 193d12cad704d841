//! Faults the mock can inject, parsed from the `x-mock-fault` header or a script entry.

use std::time::Duration;

/// What to do to one response. Several may combine (`slow-first-byte=50,cut`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Answer with this error status (429, 500, 502, 503, 529, 400, 401, …) and a dialect-shaped error body.
    pub status: Option<u16>,
    /// `Retry-After` seconds sent with a 429 (default 1).
    pub retry_after: Option<u64>,
    /// Accept the request and never answer until the client closes.
    pub stall: bool,
    /// Close the connection without any response.
    pub close: bool,
    /// Cut the body short: a stream after its first event, a JSON body halfway.
    pub cut: bool,
    /// 200 with a body that is not valid JSON (or SSE data that is not JSON).
    pub garbage: bool,
    /// 200 with `text/html`.
    pub wrong_content_type: bool,
    /// Sleep before the first byte.
    pub first_byte_delay: Option<Duration>,
    /// Sleep between stream events (after the first).
    pub chunk_delay: Option<Duration>,
    /// Stop sending (but keep the connection open) after this many stream events.
    pub stall_after: Option<usize>,
    /// After two stream events (the role, then the first piece of content), a `data:` line of this many bytes with no line end, and the stream ends: a
    /// provider that would make a client buffer without bound.
    pub endless_line: Option<usize>,
    /// A non-streamed answer's head (and half its body) at once, the rest of the body after this.
    pub body_delay: Option<Duration>,
}

impl Faults {
    /// Whether nothing is injected.
    #[must_use]
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }

    /// Parse a spec such as `429`, `429=7` (Retry-After 7 s), `stall`, `cut`, `garbage`, `wrong-content-type`,
    /// `slow-first-byte=250`, `slow-body=1500`, `chunk-delay=20`, `stall-after=3`, `endless-line=40000000`, `close`,
    /// `ok`/`none`; comma-separated entries combine.
    ///
    /// # Errors
    /// A message naming the entry that is not understood.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut f = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, arg) = match part.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim())),
                None => (part, None),
            };
            let ms = |a: Option<&str>| -> Result<Duration, String> {
                a.and_then(|v| v.trim_end_matches("ms").parse::<u64>().ok())
                    .map(Duration::from_millis)
                    .ok_or_else(|| format!("fault {part:?} needs a millisecond value"))
            };
            match name {
                "ok" | "none" | "" => {}
                "stall" => f.stall = true,
                "close" | "reset" => f.close = true,
                "cut" => f.cut = true,
                "garbage" => f.garbage = true,
                "wrong-content-type" => f.wrong_content_type = true,
                "slow-first-byte" => f.first_byte_delay = Some(ms(arg)?),
                "chunk-delay" | "slow-chunks" => f.chunk_delay = Some(ms(arg)?),
                "slow-body" => f.body_delay = Some(ms(arg)?),
                "endless-line" => {
                    f.endless_line = Some(
                        arg.and_then(|a| a.parse().ok())
                            .ok_or_else(|| format!("fault {part:?} needs a byte count"))?,
                    );
                }
                "stall-after" => {
                    f.stall_after = Some(
                        arg.and_then(|a| a.parse().ok())
                            .ok_or_else(|| format!("fault {part:?} needs an event count"))?,
                    );
                }
                n => match n.parse::<u16>() {
                    Ok(code) if (400..=599).contains(&code) => {
                        f.status = Some(code);
                        if let Some(a) = arg {
                            f.retry_after = Some(a.parse().map_err(|_| {
                                format!("fault {part:?}: Retry-After must be seconds")
                            })?);
                        }
                    }
                    _ => return Err(format!("unknown fault {part:?}")),
                },
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_combinations() {
        let f = Faults::parse("slow-first-byte=50, cut").unwrap_or_default();
        assert_eq!(f.first_byte_delay, Some(Duration::from_millis(50)));
        assert!(f.cut);
        let f = Faults::parse("429=7").unwrap_or_default();
        assert_eq!((f.status, f.retry_after), (Some(429), Some(7)));
        assert!(Faults::parse("ok").map(|f| f.is_none()).unwrap_or(false));
        assert!(Faults::parse("explode").is_err());
        assert!(Faults::parse("200").is_err());
    }
}
