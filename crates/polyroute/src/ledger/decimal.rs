//! Decimal text, both ways, as rust_decimal writes and reads it, without its cost: `Display` divides the
//! 96-bit mantissa by ten once per digit, `FromStr` handles every notation. The ledger writes a few decimals
//! per record (its JSON, the `cost` column, each scope's spend) and the spend sum reads two per scope.

use rust_decimal::Decimal;

/// A decimal's text as its `Display` writes it (and `rust_decimal::serde::str`): the sign of a negative value
/// (negative zero included), the whole digits (`0` when none), then, with a scale, `.` and exactly `scale`
/// fraction digits (trailing zeros kept).
pub(crate) fn push_decimal(out: &mut String, d: &Decimal) {
    if d.is_sign_negative() {
        out.push('-');
    }
    let scale = d.scale() as usize;
    let abs = d.mantissa().unsigned_abs();
    let mut buf = itoa::Buffer::new();
    let digits = match u64::try_from(abs) {
        Ok(0) => "",
        Ok(v) => buf.format(v),
        Err(_) => buf.format(abs),
    };
    if digits.len() > scale {
        let (whole, frac) = digits.split_at(digits.len() - scale);
        out.push_str(whole);
        if scale > 0 {
            out.push('.');
            out.push_str(frac);
        }
    } else {
        out.push('0');
        if scale > 0 {
            out.push('.');
            for _ in digits.len()..scale {
                out.push('0');
            }
            out.push_str(digits);
        }
    }
}

/// [`push_decimal`] into a new string (what `d.to_string()` returns).
pub(crate) fn decimal_text(d: &Decimal) -> String {
    let mut s = String::with_capacity(32);
    push_decimal(&mut s, d);
    s
}

/// The decimal `text` stands for, as `text.parse::<Decimal>()` reads it (None where that fails). Plain text
/// (`-`, at most 19 digits, `.` and at least one digit) is read here; anything else by rust_decimal.
pub(crate) fn parse_decimal(text: &[u8]) -> Option<Decimal> {
    let (neg, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mut m, mut digits, mut scale, mut point) = (0u64, 0u32, 0u32, false);
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'0'..=b'9' if digits < 19 => {
                m = m * 10 + u64::from(b - b'0');
                digits += 1;
                scale += u32::from(point);
            }
            b'.' if !point && i > 0 && i + 1 < body.len() => point = true,
            _ => return std::str::from_utf8(text).ok()?.parse().ok(),
        }
    }
    if digits == 0 {
        return std::str::from_utf8(text).ok()?.parse().ok();
    }
    let lo = u32::try_from(m & 0xffff_ffff).ok()?;
    let mid = u32::try_from(m >> 32).ok()?;
    Some(Decimal::from_parts(lo, mid, 0, neg, scale))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ledger::json::tests::any_decimal;
    use proptest::prelude::*;

    /// Text rust_decimal reads, or refuses: plain, with leading zeros, signs, points, exponents, underscores.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any_decimal().prop_map(|d| d.to_string()),
            "-?[0-9]{0,22}(\\.[0-9]{0,22})?",
            "[-+]?[0-9_.eE]{0,12}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn decimal_text_is_displays(d in any_decimal()) {
            prop_assert_eq!(decimal_text(&d), d.to_string());
        }

        /// The same value, scale and sign as FromStr (Decimal's `==` ignores the scale: compare the parts).
        #[test]
        fn parsed_as_from_str(t in any_text()) {
            let ours = parse_decimal(t.as_bytes()).map(|d| d.serialize());
            let theirs = t.parse::<Decimal>().ok().map(|d| d.serialize());
            prop_assert_eq!(ours, theirs, "{:?}", t);
        }
    }

    #[test]
    fn decimal_text_examples() {
        let cases = [
            ("0", "0"),
            ("0.00", "0.00"),
            ("1.500", "1.500"),
            ("0.0000012", "0.0000012"),
            ("-12.5", "-12.5"),
            (
                "79228162514264337593543950335",
                "79228162514264337593543950335",
            ),
            (
                "7.9228162514264337593543950335",
                "7.9228162514264337593543950335",
            ),
        ];
        for (input, text) in cases {
            let d: Decimal = input.parse().unwrap();
            assert_eq!(decimal_text(&d), text);
            assert_eq!(d.to_string(), text);
        }
        // Negative zero (parsing "-0.000" drops the sign; set_sign_negative keeps it) keeps it, as in Display.
        for (scale, text) in [(0, "-0"), (3, "-0.000")] {
            let mut d = Decimal::from_parts(0, 0, 0, false, scale);
            d.set_sign_negative(true);
            assert_eq!(decimal_text(&d), text);
            assert_eq!(d.to_string(), text);
        }
    }

    #[test]
    fn parse_examples() {
        for t in [
            "0",
            "-0",
            "0.000",
            "-0.000",
            "007.50",
            "1.",
            ".5",
            "-",
            "",
            "1.2.3",
            "1e3",
            "+1",
            "1_000",
            "9999999999999999999",
            "99999999999999999999",
            "0.0000000000000000000000000001",
            "-12.3456789012345678901234567890",
        ] {
            let ours = parse_decimal(t.as_bytes()).map(|d| d.serialize());
            let theirs = t.parse::<Decimal>().ok().map(|d| d.serialize());
            assert_eq!(ours, theirs, "{t:?}");
        }
    }
}
