//! Prices: the catalog's [`Pricing`] (exact decimals in USD per unit, per token for token prices, parsed once from
//! the decimal strings OpenRouter's `/api/v1/models` writes), its conditional [`PricingOverride`]s (parsed and
//! validated at load, so costing parses nothing), and the per-route [`RoutePrices`] every plan reads.

use std::collections::BTreeMap;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Unit prices of a model or endpoint, in USD per unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// Per input token.
    #[serde(with = "rust_decimal::serde::str")]
    pub prompt: Decimal,
    /// Per output token (reasoning tokens included unless `internal_reasoning` is listed).
    #[serde(with = "rust_decimal::serde::str")]
    pub completion: Decimal,
    /// Per request.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub request: Option<Decimal>,
    /// Per input image.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub image: Option<Decimal>,
    /// Per image token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub image_token: Option<Decimal>,
    /// Per output image.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub image_output: Option<Decimal>,
    /// Per input audio token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub audio: Option<Decimal>,
    /// Per output audio token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub audio_output: Option<Decimal>,
    /// Per cached input audio token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub input_audio_cache: Option<Decimal>,
    /// Per web search.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub web_search: Option<Decimal>,
    /// Per internal reasoning token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub internal_reasoning: Option<Decimal>,
    /// Per cache-read input token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub input_cache_read: Option<Decimal>,
    /// Per cache-write input token (5-minute TTL).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub input_cache_write: Option<Decimal>,
    /// Per cache-write input token (1-hour TTL).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub input_cache_write_1h: Option<Decimal>,
    /// Fraction taken off every price: effective = price × (1 − discount).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "discount_serde"
    )]
    pub discount: Option<Decimal>,
    /// Conditional prices (long prompts, UTC time windows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<PricingOverride>,
}

/// A conditional price set: applies when the prompt is longer than `min_prompt_tokens` and/or the UTC time is in
/// `[utc_start, utc_end)`. Later matching overrides win per key; missing keys inherit the base price.
///
/// In JSON the prices sit beside the conditions as decimal strings (`{"min_prompt_tokens": 200000, "prompt":
/// "0.000006"}`); they are parsed when the catalog is read, and an unknown key, a price that is not a decimal or a
/// window that is not `HHMM` is an error there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawOverride", into = "RawOverride")]
pub struct PricingOverride {
    /// Applies when prompt tokens are strictly greater than this.
    pub min_prompt_tokens: Option<u64>,
    /// Applies inside this UTC window.
    pub window: Option<UtcWindow>,
    /// The prices it sets, in key order.
    pub prices: Vec<(PriceKey, Decimal)>,
}

/// A UTC time window `[start, end)` in minutes of the day; it wraps midnight when `start > end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcWindow {
    /// First minute inside the window (0..=1440).
    pub start: u16,
    /// First minute after the window.
    pub end: u16,
}

impl UtcWindow {
    /// Whether minute `t` of the UTC day is inside the window.
    #[must_use]
    pub fn contains(self, t: u16) -> bool {
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

/// A price field an override may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PriceKey {
    /// `prompt`.
    Prompt,
    /// `completion`.
    Completion,
    /// `request`.
    Request,
    /// `image`.
    Image,
    /// `image_token`.
    ImageToken,
    /// `image_output`.
    ImageOutput,
    /// `audio`.
    Audio,
    /// `audio_output`.
    AudioOutput,
    /// `input_audio_cache`.
    InputAudioCache,
    /// `web_search`.
    WebSearch,
    /// `internal_reasoning`.
    InternalReasoning,
    /// `input_cache_read`.
    InputCacheRead,
    /// `input_cache_write`.
    InputCacheWrite,
    /// `input_cache_write_1h`.
    InputCacheWrite1h,
}

impl PriceKey {
    /// Every key, in declaration order.
    pub const ALL: [Self; 14] = [
        Self::Prompt,
        Self::Completion,
        Self::Request,
        Self::Image,
        Self::ImageToken,
        Self::ImageOutput,
        Self::Audio,
        Self::AudioOutput,
        Self::InputAudioCache,
        Self::WebSearch,
        Self::InternalReasoning,
        Self::InputCacheRead,
        Self::InputCacheWrite,
        Self::InputCacheWrite1h,
    ];

    /// The JSON field name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prompt => "prompt",
            Self::Completion => "completion",
            Self::Request => "request",
            Self::Image => "image",
            Self::ImageToken => "image_token",
            Self::ImageOutput => "image_output",
            Self::Audio => "audio",
            Self::AudioOutput => "audio_output",
            Self::InputAudioCache => "input_audio_cache",
            Self::WebSearch => "web_search",
            Self::InternalReasoning => "internal_reasoning",
            Self::InputCacheRead => "input_cache_read",
            Self::InputCacheWrite => "input_cache_write",
            Self::InputCacheWrite1h => "input_cache_write_1h",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl Pricing {
    /// Set the price named by `key`.
    pub fn set(&mut self, key: PriceKey, d: Decimal) {
        match key {
            PriceKey::Prompt => self.prompt = d,
            PriceKey::Completion => self.completion = d,
            PriceKey::Request => self.request = Some(d),
            PriceKey::Image => self.image = Some(d),
            PriceKey::ImageToken => self.image_token = Some(d),
            PriceKey::ImageOutput => self.image_output = Some(d),
            PriceKey::Audio => self.audio = Some(d),
            PriceKey::AudioOutput => self.audio_output = Some(d),
            PriceKey::InputAudioCache => self.input_audio_cache = Some(d),
            PriceKey::WebSearch => self.web_search = Some(d),
            PriceKey::InternalReasoning => self.internal_reasoning = Some(d),
            PriceKey::InputCacheRead => self.input_cache_read = Some(d),
            PriceKey::InputCacheWrite => self.input_cache_write = Some(d),
            PriceKey::InputCacheWrite1h => self.input_cache_write_1h = Some(d),
        }
    }
}

/// The JSON form of a [`PricingOverride`].
#[derive(Serialize, Deserialize)]
struct RawOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    utc_start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    utc_end: Option<String>,
    #[serde(flatten)]
    prices: BTreeMap<String, Value>,
}

/// Parse `HHMM` into the minute of the day.
fn parse_hhmm(s: &str) -> Option<u16> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u16 = s[..2].parse().ok()?;
    let m: u16 = s[2..].parse().ok()?;
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

fn hhmm(minute: u16) -> String {
    format!("{:02}{:02}", minute / 60, minute % 60)
}

impl TryFrom<RawOverride> for PricingOverride {
    type Error = String;

    fn try_from(raw: RawOverride) -> Result<Self, String> {
        let minute = |name: &str, v: Option<&str>| -> Result<Option<u16>, String> {
            v.map(|t| parse_hhmm(t).ok_or_else(|| format!("{name}: expected HHMM, got {t:?}")))
                .transpose()
        };
        let start = minute("utc_start", raw.utc_start.as_deref())?;
        let end = minute("utc_end", raw.utc_end.as_deref())?;
        let window = match (start, end) {
            (Some(start), Some(end)) => Some(UtcWindow { start, end }),
            (None, None) => None,
            _ => return Err("utc_start and utc_end must be given together".into()),
        };
        let mut prices = Vec::with_capacity(raw.prices.len());
        for (k, v) in raw.prices {
            let key = PriceKey::from_name(&k).ok_or_else(|| {
                let known: Vec<&str> = PriceKey::ALL.iter().map(|k| k.as_str()).collect();
                format!("{k}: unknown price key (known: {})", known.join(", "))
            })?;
            let d = match &v {
                Value::String(s) => s.parse::<Decimal>().ok(),
                Value::Number(n) => n.to_string().parse::<Decimal>().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("{k}: expected a decimal string, got {v}"))?;
            prices.push((key, d));
        }
        Ok(Self {
            min_prompt_tokens: raw.min_prompt_tokens,
            window,
            prices,
        })
    }
}

impl From<PricingOverride> for RawOverride {
    fn from(o: PricingOverride) -> Self {
        Self {
            min_prompt_tokens: o.min_prompt_tokens,
            utc_start: o.window.map(|w| hhmm(w.start)),
            utc_end: o.window.map(|w| hhmm(w.end)),
            prices: o
                .prices
                .into_iter()
                .map(|(k, d)| (k.as_str().to_string(), Value::String(d.to_string())))
                .collect(),
        }
    }
}

/// Unit prices in USD per million tokens (and per unit for fees), for display.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitPrices {
    /// USD per million prompt tokens.
    #[serde(with = "rust_decimal::serde::str")]
    pub prompt: Decimal,
    /// USD per million completion tokens.
    #[serde(with = "rust_decimal::serde::str")]
    pub completion: Decimal,
    /// USD per request.
    #[serde(with = "rust_decimal::serde::str")]
    pub request: Decimal,
}

impl UnitPrices {
    /// Unit prices of `p`, normalized.
    #[must_use]
    pub fn of(p: &Pricing) -> Self {
        let m = Decimal::from(1_000_000);
        Self {
            prompt: (p.prompt * m).normalize(),
            completion: (p.completion * m).normalize(),
            request: p.request.unwrap_or_default().normalize(),
        }
    }
}

/// `10^k` for `k` in `0..=28`.
const POW10: [i128; 29] = {
    let mut t = [1i128; 29];
    let mut i = 1;
    while i < 29 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// An exact integer key of a decimal (its value times 10²⁸), ordered as the decimal; `None` when it does not fit.
/// (A `Decimal` comparison rescales its operands on every call.)
pub(crate) fn price_key(d: Decimal) -> Option<i128> {
    let scale = usize::try_from(d.scale()).ok()?;
    d.mantissa()
        .checked_mul(*POW10.get(28usize.checked_sub(scale)?)?)
}

/// What planning reads about an endpoint's price, computed once per catalog: the display unit prices and the
/// blended price — `(3 × prompt + completion) / 4` in USD per million tokens, the one 3:1 blend every ordering,
/// weighting and tiering uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutePrices {
    /// Unit prices per million tokens (what plans display).
    pub unit: UnitPrices,
    /// The blend, exact (orderings and ties).
    pub blended: Decimal,
    /// The blend as `f64` (the weighted draw).
    pub blended_per_m: f64,
    /// Exact integer keys of `unit`'s prompt, completion and request prices ([`price_key`]), so a plan's
    /// worst-case prices compare integers instead of rescaling decimals; `None` where a key does not fit (and
    /// in a `default()` value, whose prices are then compared as decimals).
    unit_keys: [Option<i128>; 3],
}

impl RoutePrices {
    /// The prices of `p`.
    #[must_use]
    pub fn of(p: &Pricing) -> Self {
        let sum = p.prompt * Decimal::from(3) + p.completion;
        Self {
            unit: UnitPrices::of(p),
            blended: sum * Decimal::from(250_000),
            // Scaled in f64 the same way as before the blend got one unit: a power-of-two factor keeps the
            // weighted draw's keys (and so every seeded order) bit-for-bit what they were.
            blended_per_m: sum.to_f64().unwrap_or(f64::MAX) * 1e6 / 4.0,
            unit_keys: [None; 3],
        }
        .keyed()
    }

    /// These prices with `unit_keys` made from `unit`.
    fn keyed(mut self) -> Self {
        let u = &self.unit;
        self.unit_keys = [
            price_key(u.prompt),
            price_key(u.completion),
            price_key(u.request),
        ];
        self
    }

    /// Whether unit price `i` (0 prompt, 1 completion, 2 request) is at least `other`'s, by the integer keys
    /// where both have one, else as decimals.
    fn unit_ge(&self, other: &Self, i: usize) -> bool {
        let part = |p: &Self| match i {
            0 => p.unit.prompt,
            1 => p.unit.completion,
            _ => p.unit.request,
        };
        match (self.unit_keys[i], other.unit_keys[i]) {
            (Some(a), Some(b)) => a >= b,
            _ => part(self) >= part(other),
        }
    }

    /// The highest of each unit price across `prices` (the last of equal ones, as `Iterator::max` picks, so the
    /// representation is that one's: `0.10` and `0.1` stay what they are); zeros when there is none.
    #[must_use]
    pub(crate) fn worst_case<'a>(prices: impl IntoIterator<Item = &'a Self>) -> UnitPrices {
        let mut it = prices.into_iter();
        let Some(first) = it.next() else {
            return UnitPrices::default();
        };
        let mut best = [first; 3];
        for p in it {
            for (i, b) in best.iter_mut().enumerate() {
                if p.unit_ge(b, i) {
                    *b = p;
                }
            }
        }
        UnitPrices {
            prompt: best[0].unit.prompt,
            completion: best[1].unit.completion,
            request: best[2].unit.request,
        }
    }

    /// Prices with these unit prices (and their keys), the blend left zero.
    #[cfg(test)]
    pub(crate) fn of_unit(unit: UnitPrices) -> Self {
        Self {
            unit,
            ..Self::default()
        }
        .keyed()
    }

    /// Serialize as the [`UnitPrices`] (the `prices` of a plan attempt).
    pub(crate) fn ser_unit<S: serde::Serializer>(p: &Self, s: S) -> Result<S::Ok, S::Error> {
        p.unit.serialize(s)
    }
}

/// Check that no price is negative (routers may write `-1` for "variable") and the discount is a fraction; every
/// problem is pushed as `path.field: problem`.
pub(crate) fn validate_pricing(path: &str, p: &Pricing, router: bool, issues: &mut Vec<String>) {
    let mut non_negative = |name: &str, v: Option<Decimal>| {
        if let Some(v) = v {
            if v.is_sign_negative() && !(router && v == Decimal::NEGATIVE_ONE) {
                issues.push(format!(
                    "{path}.{name}: price must not be negative, got {v}"
                ));
            }
        }
    };
    non_negative("prompt", Some(p.prompt));
    non_negative("completion", Some(p.completion));
    non_negative("request", p.request);
    non_negative("image", p.image);
    non_negative("web_search", p.web_search);
    non_negative("internal_reasoning", p.internal_reasoning);
    non_negative("input_cache_read", p.input_cache_read);
    non_negative("input_cache_write", p.input_cache_write);
    non_negative("input_cache_write_1h", p.input_cache_write_1h);
    if let Some(d) = p.discount {
        if d.is_sign_negative() || d > Decimal::ONE {
            issues.push(format!("{path}.discount: must be between 0 and 1, got {d}"));
        }
    }
    for (k, o) in p.overrides.iter().enumerate() {
        for (key, d) in &o.prices {
            if d.is_sign_negative() {
                issues.push(format!(
                    "{path}.overrides[{k}].{}: price must not be negative, got {d}",
                    key.as_str()
                ));
            }
        }
    }
}

/// `discount` is a JSON number in OpenRouter's schema; accept a number or a decimal string, write a number.
mod discount_serde {
    use rust_decimal::prelude::ToPrimitive;
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v.and_then(|d| d.to_f64()) {
            Some(f) => s.serialize_f64(f),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .to_string()
                .parse()
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(Value::String(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
            Some(other) => Err(serde::de::Error::custom(format!(
                "expected a number, got {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hhmm() {
        assert_eq!(parse_hhmm("0000"), Some(0));
        assert_eq!(parse_hhmm("2359"), Some(1439));
        assert_eq!(parse_hhmm("2400"), Some(1440));
        assert_eq!(parse_hhmm("2460"), None);
        assert_eq!(parse_hhmm("12:00"), None);
    }

    #[test]
    fn overrides_are_parsed_once_and_written_back_alike() {
        let text = r#"{"min_prompt_tokens": 200000, "utc_start": "2200", "utc_end": "0600",
            "prompt": "0.000006", "completion": 0.0000225}"#;
        let o: PricingOverride = serde_json::from_str(text).unwrap_or_default();
        assert_eq!(o.min_prompt_tokens, Some(200_000));
        assert_eq!(
            o.window,
            Some(UtcWindow {
                start: 1320,
                end: 360
            })
        );
        assert_eq!(
            o.prices,
            vec![
                (
                    PriceKey::Completion,
                    "0.0000225".parse().unwrap_or_default()
                ),
                (PriceKey::Prompt, "0.000006".parse().unwrap_or_default()),
            ]
        );
        assert_eq!(
            serde_json::to_value(&o).ok(),
            Some(
                serde_json::json!({"min_prompt_tokens": 200000, "utc_start": "2200", "utc_end": "0600",
                "prompt": "0.000006", "completion": "0.0000225"})
            )
        );
        assert!(UtcWindow {
            start: 1320,
            end: 360
        }
        .contains(0));
        assert!(!UtcWindow {
            start: 1320,
            end: 360
        }
        .contains(360));
    }

    #[test]
    fn bad_overrides_are_refused_at_load() {
        for (text, why) in [
            (r#"{"promt": "0.1"}"#, "unknown price key"),
            (r#"{"prompt": "cheap"}"#, "expected a decimal string"),
            (
                r#"{"utc_start": "25:00", "utc_end": "0100", "prompt": "1"}"#,
                "expected HHMM",
            ),
            (r#"{"utc_start": "2200", "prompt": "1"}"#, "together"),
        ] {
            let err = serde_json::from_str::<PricingOverride>(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn the_blend_is_three_to_one_per_million() {
        let p = Pricing {
            prompt: "0.000001".parse().unwrap_or_default(),
            completion: "0.000005".parse().unwrap_or_default(),
            ..Pricing::default()
        };
        let r = RoutePrices::of(&p);
        assert_eq!(r.blended, Decimal::from(2));
        assert!((r.blended_per_m - 2.0).abs() < 1e-12);
        assert_eq!(r.unit.prompt, Decimal::ONE);
        assert_eq!(r.unit.completion, Decimal::from(5));
    }

    mod worst_case {
        use super::*;
        use proptest::prelude::*;

        fn dec() -> impl Strategy<Value = Decimal> {
            prop_oneof![
                (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
                (0i64..2000, 0u32..=12).prop_map(|(m, s)| Decimal::new(m, s)),
                Just(Decimal::MAX),
                Just(Decimal::MIN),
                Just(Decimal::ZERO),
            ]
        }

        /// Prices whose prompt, completion and request prices are the given decimals.
        fn routes(v: &[(Decimal, Decimal, Decimal)]) -> Vec<RoutePrices> {
            v.iter()
                .map(|&(prompt, completion, request)| {
                    RoutePrices::of_unit(UnitPrices {
                        prompt,
                        completion,
                        request,
                    })
                })
                .collect()
        }

        proptest! {
            /// Each price is the one `Iterator::max` picks (the same representation: scale included).
            #[test]
            fn is_iterator_max(v in proptest::collection::vec((dec(), dec(), dec()), 0..12)) {
                let got = RoutePrices::worst_case(&routes(&v));
                let max = |f: fn(&(Decimal, Decimal, Decimal)) -> Decimal| {
                    v.iter().map(f).max().unwrap_or_default()
                };
                for (g, w) in [
                    (got.prompt, max(|t| t.0)),
                    (got.completion, max(|t| t.1)),
                    (got.request, max(|t| t.2)),
                ] {
                    prop_assert_eq!(g, w);
                    prop_assert_eq!(g.to_string(), w.to_string());
                }
            }

            /// Keys order as the decimals do.
            #[test]
            fn keys_order_as_decimals(a in dec(), b in dec()) {
                if let (Some(x), Some(y)) = (price_key(a), price_key(b)) {
                    prop_assert_eq!(x.cmp(&y), a.cmp(&b));
                }
            }
        }

        #[test]
        fn equal_values_keep_the_last() {
            let a = Decimal::new(10, 2);
            let b = Decimal::new(1, 1);
            let z = Decimal::ZERO;
            let ab = RoutePrices::worst_case(&routes(&[(a, z, z), (b, z, z)]));
            assert_eq!(ab.prompt.to_string(), "0.1");
            let ba = RoutePrices::worst_case(&routes(&[(b, z, z), (a, z, z)]));
            assert_eq!(ba.prompt.to_string(), "0.10");
        }

        #[test]
        fn default_prices_compare_as_decimals() {
            let mut high = RoutePrices::default();
            high.unit.prompt = Decimal::new(5, 1);
            let keyed = RoutePrices::of_unit(UnitPrices {
                prompt: Decimal::new(4, 1),
                ..UnitPrices::default()
            });
            assert_eq!(
                RoutePrices::worst_case([&keyed, &high]).prompt,
                Decimal::new(5, 1)
            );
            assert_eq!(
                RoutePrices::worst_case([&high, &keyed]).prompt,
                Decimal::new(5, 1)
            );
        }
    }
}
