//! The AWS binary event-stream framing (`application/vnd.amazon.eventstream`), decoded sans-I/O.
//!
//! A message is a 12-byte prelude (total length, headers length, both big-endian `u32`, then the CRC32 of those
//! 8 bytes), the headers, the payload, and the CRC32 of everything before it. Each header is a one-byte name
//! length, the name, a one-byte value type and the value. Bedrock's ConverseStream sends one event per message
//! with `:message-type` `event` (and `:event-type`), `exception` (and `:exception-type`) or `error`
//! (`:error-code`, `:error-message`).
//!
//! Feed bytes in any split with [`Decoder::push`]; each complete, checked message comes out whole. A corrupt
//! frame (bad CRC, impossible lengths, bad header) is a [`FrameError`]: the stream cannot be resynchronized,
//! so the decoder stops.

/// Largest message accepted (the format's own limit is 16 MiB).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

const PRELUDE: usize = 12;
const MIN_MESSAGE: usize = PRELUDE + 4;

/// A header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 and 1.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6.
    Bytes(Vec<u8>),
    /// Type 7.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload (JSON for Bedrock).
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header's value.
    #[must_use]
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The prelude CRC does not match.
    #[error("event-stream prelude checksum mismatch")]
    PreludeCrc,
    /// The message CRC does not match.
    #[error("event-stream message checksum mismatch")]
    MessageCrc,
    /// Lengths that cannot describe a message.
    #[error("event-stream frame lengths are invalid (total {total}, headers {headers})")]
    Length {
        /// Declared total length.
        total: u32,
        /// Declared headers length.
        headers: u32,
    },
    /// A header that does not parse.
    #[error("event-stream header is malformed")]
    Header,
    /// The body ended inside a message.
    #[error("event-stream ended inside a message ({0} bytes left over)")]
    Truncated(usize),
}

/// Incremental decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    failed: bool,
}

impl Decoder {
    /// A decoder with an empty buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; returns the messages they complete, then the first error (after which nothing more decodes).
    pub fn push(&mut self, bytes: &[u8]) -> (Vec<Message>, Option<FrameError>) {
        let mut out = Vec::new();
        if self.failed {
            return (out, None);
        }
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        let err = loop {
            match decode_one(&self.buf[at..]) {
                Ok(Some((m, used))) => {
                    out.push(m);
                    at += used;
                }
                Ok(None) => break None,
                Err(e) => {
                    self.failed = true;
                    break Some(e);
                }
            }
        };
        self.buf.drain(..at);
        (out, err)
    }

    /// The body ended: an error when a partial message is left over.
    pub fn finish(&mut self) -> Option<FrameError> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        self.failed = true;
        Some(FrameError::Truncated(self.buf.len()))
    }
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Decode the message at the start of `b`: `None` until it is complete.
fn decode_one(b: &[u8]) -> Result<Option<(Message, usize)>, FrameError> {
    if b.len() < PRELUDE {
        return Ok(None);
    }
    let total = be32(b);
    let hlen = be32(&b[4..]);
    if crc32fast::hash(&b[..8]) != be32(&b[8..]) {
        return Err(FrameError::PreludeCrc);
    }
    let (t, h) = (total as usize, hlen as usize);
    if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&t) || h > t - MIN_MESSAGE {
        return Err(FrameError::Length {
            total,
            headers: hlen,
        });
    }
    if b.len() < t {
        return Ok(None);
    }
    if crc32fast::hash(&b[..t - 4]) != be32(&b[t - 4..]) {
        return Err(FrameError::MessageCrc);
    }
    let headers = parse_headers(&b[PRELUDE..PRELUDE + h])?;
    let payload = b[PRELUDE + h..t - 4].to_vec();
    Ok(Some((Message { headers, payload }, t)))
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], FrameError> {
    if b.len() < n {
        return Err(FrameError::Header);
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn take_n<const N: usize>(b: &mut &[u8]) -> Result<[u8; N], FrameError> {
    let mut a = [0u8; N];
    a.copy_from_slice(take(b, N)?);
    Ok(a)
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = take(&mut b, 1)?[0] as usize;
        let name = std::str::from_utf8(take(&mut b, n)?)
            .map_err(|_| FrameError::Header)?
            .to_string();
        let ty = take(&mut b, 1)?[0];
        let v = match ty {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(take_n::<1>(&mut b)?)),
            3 => HeaderValue::Short(i16::from_be_bytes(take_n::<2>(&mut b)?)),
            4 => HeaderValue::Int(i32::from_be_bytes(take_n::<4>(&mut b)?)),
            5 => HeaderValue::Long(i64::from_be_bytes(take_n::<8>(&mut b)?)),
            8 => HeaderValue::Timestamp(i64::from_be_bytes(take_n::<8>(&mut b)?)),
            9 => HeaderValue::Uuid(take_n::<16>(&mut b)?),
            6 | 7 => {
                let len = u16::from_be_bytes(take_n::<2>(&mut b)?) as usize;
                let raw = take(&mut b, len)?;
                if ty == 6 {
                    HeaderValue::Bytes(raw.to_vec())
                } else {
                    HeaderValue::String(
                        std::str::from_utf8(raw)
                            .map_err(|_| FrameError::Header)?
                            .to_string(),
                    )
                }
            }
            _ => return Err(FrameError::Header),
        };
        out.push((name, v));
    }
    Ok(out)
}

/// Encode a message with string headers (tests and the loopback mock use it; the decoder never does).
#[must_use]
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (n, v) in headers {
        h.push(n.len().min(255) as u8);
        h.extend_from_slice(&n.as_bytes()[..n.len().min(255)]);
        h.push(7);
        let v = &v.as_bytes()[..v.len().min(u16::MAX as usize)];
        h.extend_from_slice(&(v.len() as u16).to_be_bytes());
        h.extend_from_slice(v);
    }
    let total = (PRELUDE + h.len() + payload.len() + 4) as u32;
    let mut m = Vec::with_capacity(total as usize);
    m.extend_from_slice(&total.to_be_bytes());
    m.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let pc = crc32fast::hash(&m);
    m.extend_from_slice(&pc.to_be_bytes());
    m.extend_from_slice(&h);
    m.extend_from_slice(payload);
    let mc = crc32fast::hash(&m);
    m.extend_from_slice(&mc.to_be_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS event-stream test vector `int32_header` ... is binary; this one is the documented empty message:
    /// total 16, headers 0, prelude CRC 0x05c248eb, message CRC 0x7d98c8ff.
    #[test]
    fn empty_message_vector() {
        let bytes = [
            0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98,
            0xc8, 0xff,
        ];
        let mut d = Decoder::new();
        let (msgs, err) = d.push(&bytes);
        assert_eq!(err, None);
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].headers.is_empty() && msgs[0].payload.is_empty());
        assert_eq!(encode(&[], b""), bytes.to_vec());
    }

    #[test]
    fn split_anywhere_and_crc_checked() {
        let a = encode(
            &[(":message-type", "event"), (":event-type", "messageStart")],
            br#"{"role":"assistant"}"#,
        );
        let b = encode(&[(":message-type", "event")], b"{}");
        let all = [a.clone(), b].concat();
        for cut in 0..all.len() {
            let mut d = Decoder::new();
            let (mut m, e1) = d.push(&all[..cut]);
            let (m2, e2) = d.push(&all[cut..]);
            m.extend(m2);
            assert_eq!((e1, e2), (None, None));
            assert_eq!(m.len(), 2, "cut {cut}");
            assert_eq!(m[0].header_str(":event-type"), Some("messageStart"));
            assert_eq!(m[0].payload, br#"{"role":"assistant"}"#);
            assert_eq!(d.finish(), None);
        }
        let mut bad = a.clone();
        let n = bad.len();
        bad[n - 6] ^= 1;
        assert_eq!(Decoder::new().push(&bad).1, Some(FrameError::MessageCrc));
        let mut bad = a.clone();
        bad[3] ^= 1;
        assert_eq!(Decoder::new().push(&bad).1, Some(FrameError::PreludeCrc));
        let mut d = Decoder::new();
        d.push(&a[..20]);
        assert_eq!(d.finish(), Some(FrameError::Truncated(20)));
    }
}
