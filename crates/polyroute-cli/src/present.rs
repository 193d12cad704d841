//! Output people read: tables that fit the terminal, one money format, colour only on a terminal, and
//! "did you mean" suggestions for mistyped names.

use std::io::IsTerminal as _;

use comfy_table::{
    presets, Attribute, Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table,
};
use rust_decimal::Decimal;

/// Where a table is going: its width limit and whether it may use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    /// Fit the table in this many columns (`None`: no limit, one line per row).
    pub width: Option<u16>,
    /// Use bold and colour.
    pub color: bool,
}

impl Screen {
    /// Standard output: on a terminal, its width and colour (unless `NO_COLOR` is set); otherwise `COLUMNS`
    /// decides the width (none when unset) and there is no colour.
    #[must_use]
    pub fn stdout() -> Self {
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|w| *w >= 20);
        if std::io::stdout().is_terminal() {
            let width = crossterm_width().or(columns).or(Some(100));
            let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            Self { width, color }
        } else {
            Self {
                width: columns,
                color: false,
            }
        }
    }

    /// No width limit, no colour (tests, JSON-adjacent use).
    #[must_use]
    pub const fn plain() -> Self {
        Self {
            width: None,
            color: false,
        }
    }
}

fn crossterm_width() -> Option<u16> {
    // comfy-table measures the terminal when it is one; a throwaway table asks it.
    Table::new().width().filter(|w| *w >= 20)
}

/// How a column is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// Never shrunk (ids people copy).
    Keep,
    /// Right-aligned, never shrunk (numbers).
    Number,
    /// May wrap to fit the width.
    Wrap,
}

/// A plain table (no borders, one header row) fitted to `screen`.
#[must_use]
pub fn table(screen: Screen, header: &[(&str, Col)], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    t.force_no_tty();
    if screen.color {
        t.enforce_styling();
    }
    match screen.width {
        Some(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic);
            t.set_width(w);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    t.set_header(header.iter().map(|(name, col)| {
        let c = Cell::new(name).set_alignment(if *col == Col::Number {
            CellAlignment::Right
        } else {
            CellAlignment::Left
        });
        if screen.color {
            c.add_attribute(Attribute::Bold)
        } else {
            c
        }
    }));
    for row in rows {
        t.add_row(row);
    }
    let last = header.len().saturating_sub(1);
    for (i, (_, col)) in header.iter().enumerate() {
        if let Some(c) = t.column_mut(i) {
            // Two spaces between columns, none at the edges.
            c.set_padding((0, if i == last { 0 } else { 2 }));
            match col {
                Col::Number => {
                    c.set_cell_alignment(CellAlignment::Right);
                    c.set_constraint(ColumnConstraint::ContentWidth);
                }
                Col::Keep => {
                    c.set_constraint(ColumnConstraint::ContentWidth);
                }
                Col::Wrap => {}
            }
        }
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A decimal in plain notation, without trailing zeros (never `4.35e-6`).
#[must_use]
pub fn decimal(d: Decimal) -> String {
    let s = d.normalize().to_string();
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// US dollars: `$` and [`decimal`].
#[must_use]
pub fn usd(d: Decimal) -> String {
    format!("${}", decimal(d))
}

/// Pad numbers so that, right-aligned in one column, their decimal points line up (`0.13 `, `0.135`, `10    `).
/// Values without a digit (`var`, `-`) are left as they are.
#[must_use]
pub fn align_decimals(values: &[String]) -> Vec<String> {
    let is_num = |v: &str| v.bytes().any(|b| b.is_ascii_digit());
    let frac = |v: &str| v.find('.').map_or(0, |i| v.len() - i);
    let width = values
        .iter()
        .filter(|v| is_num(v))
        .map(|v| frac(v))
        .max()
        .unwrap_or(0);
    values
        .iter()
        .map(|v| {
            if is_num(v) {
                format!("{v}{}", " ".repeat(width - frac(v)))
            } else {
                v.clone()
            }
        })
        .collect()
}

/// The candidates closest to `input` (case-insensitive edit distance), best first, at most three, only those
/// close enough to be a plausible typo or prefix.
#[must_use]
pub fn close_matches<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let needle = input.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let lc = c.to_ascii_lowercase();
            let d = strsim::damerau_levenshtein(&needle, &lc);
            let limit = (needle.chars().count().max(lc.chars().count()) / 3).max(1);
            let prefix = needle.len() >= 3 && lc.starts_with(&needle);
            (d <= limit || prefix).then_some((if prefix { d.min(limit) } else { d }, c))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// `unknown <what> "<input>"` with the close matches, or the known values when there are few.
#[must_use]
pub fn unknown(what: &str, input: &str, known: &[&str]) -> String {
    let close = close_matches(input, known.iter().copied());
    let quoted = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !close.is_empty() {
        format!(
            "unknown {what} \"{input}\"; did you mean {}?",
            quoted(&close)
        )
    } else if known.len() <= 100 {
        format!("unknown {what} \"{input}\"; known: {}", known.join(", "))
    } else {
        format!("unknown {what} \"{input}\" ({} known)", known.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_line_up() {
        let v: Vec<String> = ["0.13", "0.135", "10", "var"].map(String::from).into();
        assert_eq!(align_decimals(&v), ["0.13 ", "0.135", "10    ", "var"]);
    }

    #[test]
    fn money_is_plain() {
        let d = Decimal::new(435, 8);
        assert_eq!(usd(d), "$0.00000435");
        assert_eq!(decimal(Decimal::new(2500, 3)), "2.5");
    }

    #[test]
    fn suggestions_are_close_only() {
        let known = ["openai", "anthropic", "deepinfra", "azure"];
        assert_eq!(close_matches("opneai", known), ["openai"]);
        assert_eq!(close_matches("deep", known), ["deepinfra"]);
        assert!(close_matches("nonexistent", known).is_empty());
        assert!(unknown("provider", "opneai", &known).contains("did you mean \"openai\""));
        assert!(unknown("provider", "zzz", &known).contains("known: openai, anthropic"));
    }

    #[test]
    fn tables_fit_the_width() {
        let rows = vec![vec![
            "a/model".to_string(),
            "1.5".to_string(),
            "one two three four five six seven eight nine ten".to_string(),
        ]];
        let header = [
            ("model", Col::Keep),
            ("$/M", Col::Number),
            ("why", Col::Wrap),
        ];
        let narrow = table(
            Screen {
                width: Some(40),
                color: false,
            },
            &header,
            rows.clone(),
        );
        assert!(narrow.lines().all(|l| l.chars().count() <= 40), "{narrow}");
        assert!(narrow.lines().count() > 2, "{narrow}");
        let wide = table(Screen::plain(), &header, rows);
        assert_eq!(wide.lines().count(), 2, "{wide}");
        assert!(!wide.contains('\u{1b}'));
    }
}
