//! Exact integer keys for comparing prices: a `Decimal` comparison rescales its operands on every call.

use rust_decimal::Decimal;

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
fn price_key(d: Decimal) -> Option<i128> {
    let scale = usize::try_from(d.scale()).ok()?;
    d.mantissa()
        .checked_mul(*POW10.get(28usize.checked_sub(scale)?)?)
}

/// The largest price, the last of equal ones (what `Iterator::max` returns), compared by integer keys where they
/// fit (a `Decimal` comparison rescales on every call); zero when there is none.
pub(super) fn max_price(prices: impl Iterator<Item = Decimal>) -> Decimal {
    let mut best: Option<(Decimal, Option<i128>)> = None;
    for d in prices {
        let k = price_key(d);
        let take = match &best {
            None => true,
            Some((b, bk)) => match (k, bk) {
                (Some(k), Some(bk)) => k >= *bk,
                _ => d >= *b,
            },
        };
        if take {
            best = Some((d, k));
        }
    }
    best.map(|(d, _)| d).unwrap_or_default()
}

#[cfg(test)]
mod tests {
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

    proptest! {
        /// The same value (and the same representation: scale included) as `Iterator::max`.
        #[test]
        fn max_price_is_iterator_max(v in proptest::collection::vec(dec(), 0..12)) {
            let want = v.iter().copied().max().unwrap_or_default();
            let got = max_price(v.iter().copied());
            prop_assert_eq!(got, want);
            prop_assert_eq!(got.scale(), want.scale());
            prop_assert_eq!(got.to_string(), want.to_string());
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
        assert_eq!(max_price([a, b].into_iter()).to_string(), "0.1");
        assert_eq!(max_price([b, a].into_iter()).to_string(), "0.10");
    }
}
