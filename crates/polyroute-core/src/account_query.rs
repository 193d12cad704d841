//! The query strings of the account endpoints (`GET /api/v1/generation`, `/activity`, `/key`, `/credits`,
//! `/keys`) parsed into typed parameters: sans-I/O (the caller passes the time), never panicking on any input,
//! and fuzzed (`fuzzing::account_queries`). `/key` and `/credits` take no parameters.

use std::collections::HashMap;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// The most rows one `/activity` page holds (and its default size).
pub const ACTIVITY_PAGE_MAX: usize = 1000;

/// Percent-decode `s` (`+` as a space when `plus`); invalid escapes stay as they are, invalid UTF-8 is replaced.
#[must_use]
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The pairs of a query string (`a=1&b=x+y`), decoded; a repeated name keeps its last value.
#[must_use]
pub fn query_pairs(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Unix milliseconds of an ISO-8601 UTC time (`2027-01-31`, `2027-01-31T12:00:00Z`, fractions and `+00:00`
/// accepted); None when it does not parse.
#[must_use]
pub fn parse_iso(t: &str) -> Option<i64> {
    let t = t.trim();
    let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, ""));
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Years the arithmetic below cannot overflow on (and far beyond any record).
    if !(-1_000_000..=1_000_000).contains(&y) {
        return None;
    }
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))
        .unwrap_or(time);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.split(':').filter(|p| !p.is_empty());
    let h: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let mi: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let s: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some()
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0..=60).contains(&s)
    {
        return None;
    }
    let ms: i64 = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain("000".chars()).take(3).collect();
        f.parse().ok().filter(|v: &i64| *v >= 0)?
    };
    // Howard Hinnant's days-from-civil.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000 + ms)
}

/// `/activity`'s parameters: the window and the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityParams {
    /// Records created at or after this time (Unix ms): 30 days before now, or the `date`'s start if later.
    pub since_ms: i64,
    /// Records created before this time (the end of `date`); None without a `date`.
    pub until_ms: Option<i64>,
    /// Rows skipped (`offset`, default 0).
    pub offset: usize,
    /// Rows in the page (`limit`, 1..=[`ACTIVITY_PAGE_MAX`], default [`ACTIVITY_PAGE_MAX`]).
    pub limit: usize,
    /// The `date` as given (`YYYY-MM-DD`), for the next page's link.
    pub date: Option<String>,
}

/// `/activity?date=YYYY-MM-DD&offset=N&limit=N` at `now_ms`. Err: the 400's message.
///
/// # Errors
/// A malformed `date`, `offset` or `limit`, or a `limit` outside 1..=1000.
pub fn activity_params(
    q: &HashMap<String, String>,
    now_ms: i64,
) -> Result<ActivityParams, &'static str> {
    let mut since_ms = now_ms.saturating_sub(30 * DAY_MS);
    let mut until_ms = None;
    let date = q.get("date").filter(|d| !d.is_empty());
    if let Some(d) = date {
        let ok = d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        let start = parse_iso(d)
            .filter(|_| ok)
            .ok_or("date must be YYYY-MM-DD")?;
        since_ms = since_ms.max(start);
        until_ms = Some(start.saturating_add(DAY_MS));
    }
    let num = |name: &str, msg: &'static str| -> Result<Option<usize>, &'static str> {
        q.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<usize>().map_err(|_| msg))
            .transpose()
    };
    let offset = num("offset", "offset must be a non-negative integer")?.unwrap_or(0);
    let bad_limit = "limit must be an integer from 1 to 1000";
    let limit = num("limit", bad_limit)?.unwrap_or(ACTIVITY_PAGE_MAX);
    if !(1..=ACTIVITY_PAGE_MAX).contains(&limit) {
        return Err(bad_limit);
    }
    Ok(ActivityParams {
        since_ms,
        until_ms,
        offset,
        limit,
        date: date.cloned(),
    })
}

/// `/generation?id=…`: the id, None when absent or empty (a 400).
#[must_use]
pub fn generation_id(q: &HashMap<String, String>) -> Option<&str> {
    q.get("id").map(String::as_str).filter(|s| !s.is_empty())
}

/// `/keys?include_disabled=true&offset=N`'s parameters (an unparsable offset counts as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysListParams {
    /// `include_disabled=true`: disabled keys listed too.
    pub include_disabled: bool,
    /// Keys skipped.
    pub offset: usize,
}

/// `/keys`' list parameters.
#[must_use]
pub fn keys_list_params(q: &HashMap<String, String>) -> KeysListParams {
    KeysListParams {
        include_disabled: q.get("include_disabled").is_some_and(|v| v == "true"),
        offset: q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_hostile_ones() {
        assert_eq!(
            parse_iso("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_iso("2000-02-29"), Some(951_782_400_000));
        // What the gateway's parser (moved here) got wrong: a huge year overflowed (a panic in debug, e.g. a
        // key's `expires_at`), a negative hour or fraction was accepted.
        assert_eq!(parse_iso("9223372036854775807-01-01"), None);
        assert_eq!(parse_iso("2027-01-01T-1:00"), None);
        assert_eq!(parse_iso("2027-01-01T00:00:00.-5"), None);
    }

    #[test]
    fn queries() {
        let q =
            query_pairs("date=2027-03-09&limit=2&offset=%35&id=gen%2B1+x&include_disabled=true");
        assert_eq!(generation_id(&q), Some("gen+1 x"));
        let p = activity_params(&q, parse_iso("2027-03-10").unwrap_or_default());
        assert_eq!(p.map(|p| (p.offset, p.limit)), Ok((5, 2)));
        assert_eq!(
            keys_list_params(&q),
            KeysListParams {
                include_disabled: true,
                offset: 5
            }
        );
        assert!(generation_id(&query_pairs("id=")).is_none());
    }
}
