//! Per-model facts computed once per catalog, the capability filter, and the `openrouter/auto` and
//! `openrouter/free` choices.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

use super::classify::TaskType;
use super::pareto::frontier_price;
use super::settings::{allowed_by, AutoSettings, CostTier, PriceSource};
use crate::catalog::{Catalog, Model};
use crate::types::ChatRequest;

/// Score given to an index a model has no figure for, when it has none of the three (0..1 scale).
pub const UNKNOWN_SCORE: f64 = 0.3;

const IMAGE: u8 = 1;
const AUDIO: u8 = 2;
const FILE: u8 = 4;
const VIDEO: u8 = 8;

fn modality_bits<'a>(mods: impl IntoIterator<Item = &'a str>) -> u8 {
    mods.into_iter().fold(0, |acc, m| {
        acc | match m {
            "image" => IMAGE,
            "audio" => AUDIO,
            "file" => FILE,
            "video" => VIDEO,
            _ => 0,
        }
    })
}

/// What a request needs from a model, computed once per request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Need {
    modalities: u8,
    tools: bool,
    json_schema: bool,
    json_object: bool,
    prompt_tokens: u64,
    output_tokens: u64,
}

impl Need {
    /// The needs of `req`.
    #[must_use]
    pub fn of(req: &ChatRequest) -> Self {
        let rf = req
            .response_format
            .as_ref()
            .and_then(|v| v.get("type"))
            .and_then(Value::as_str);
        Self {
            modalities: modality_bits(req.input_modalities()),
            tools: req.tools.as_ref().is_some_and(|t| !t.is_empty()),
            json_schema: rf == Some("json_schema"),
            json_object: rf == Some("json_object"),
            prompt_tokens: req.estimate_prompt_tokens(),
            output_tokens: req.output_limit().unwrap_or(0),
        }
    }
}

/// The capabilities of a model that the filter checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    modalities: u8,
    tools: bool,
    structured_outputs: bool,
    response_format: bool,
    context: Option<u64>,
    max_output: Option<u64>,
    text_out: bool,
}

impl Caps {
    /// The capabilities of `m`.
    #[must_use]
    pub fn of(m: &Model) -> Self {
        let has = |p: &str| m.supported_parameters.iter().any(|s| s == p);
        let out = &m.architecture.output_modalities;
        Self {
            modalities: modality_bits(m.architecture.input_modalities.iter().map(String::as_str)),
            tools: has("tools"),
            structured_outputs: has("structured_outputs"),
            response_format: has("response_format") || has("structured_outputs"),
            context: m.context_length.or(m.top_provider.context_length),
            max_output: m.top_provider.max_completion_tokens,
            text_out: out.is_empty() || out.iter().any(|o| o == "text"),
        }
    }

    /// Whether these capabilities serve `need`: every input modality, tools, structured outputs (`json_schema`
    /// needs `structured_outputs`; `json_object` needs `response_format`), text output, and the estimated prompt
    /// plus requested output fits the context window (and the output limit, when the catalog gives one).
    #[must_use]
    pub fn serves(&self, need: &Need) -> bool {
        self.text_out
            && need.modalities & !self.modalities == 0
            && (!need.tools || self.tools)
            && (!need.json_schema || self.structured_outputs)
            && (!need.json_object || self.response_format)
            && self
                .context
                .is_none_or(|c| need.prompt_tokens + need.output_tokens <= c)
            && self
                .max_output
                .is_none_or(|m| m == 0 || need.output_tokens <= m)
    }
}

/// Whether `model` can serve `req` at all: vision and other input modalities, tools, structured outputs, text
/// output, and context fit. This is the capability filter of `openrouter/free` and `openrouter/auto`.
#[must_use]
pub fn supports_request(model: &Model, req: &ChatRequest) -> bool {
    Caps::of(model).serves(&Need::of(req))
}

/// Facts about one catalog model, precomputed so that routing never re-reads JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFacts {
    /// Index in [`Catalog::models`].
    pub index: usize,
    /// Slug.
    pub id: String,
    /// Artificial Analysis intelligence index divided by the catalog maximum (0..1).
    pub intelligence: Option<f64>,
    /// Coding index divided by the catalog maximum (0..1).
    pub coding: Option<f64>,
    /// Agentic index divided by the catalog maximum (0..1).
    pub agentic: Option<f64>,
    /// USD per million input tokens.
    pub prompt_price: f64,
    /// USD per million output tokens.
    pub completion_price: f64,
    /// Capabilities.
    pub caps: Caps,
    /// Reasoning model.
    pub reasoning: bool,
    /// Router or alias row (never a candidate).
    pub router: bool,
    /// Every token price zero.
    pub free: bool,
    /// A `:batch` listing (Batch API only; never a candidate).
    pub batch: bool,
    /// [`ModelFacts::task_score`] for every task, indexed like [`TaskType::ALL`].
    scores: [f64; 8],
    /// Position of this model in the catalog-wide ranking order of every task (best score first, then cheaper,
    /// then slug), indexed like [`TaskType::ALL`]: comparing two positions is comparing the two models.
    rank: [u32; 8],
    blended: f64,
}

impl ModelFacts {
    /// (3 × input + 1 × output) / 4, USD per million tokens: the price the cost tiers rank by.
    #[must_use]
    pub fn blended_price(&self) -> f64 {
        self.blended
    }

    /// The precomputed [`ModelFacts::task_score`].
    #[must_use]
    pub fn score(&self, task: TaskType) -> f64 {
        self.scores[task_slot(task)]
    }

    fn finish(mut self) -> Self {
        self.blended = (3.0 * self.prompt_price + self.completion_price) / 4.0;
        for (k, t) in TaskType::ALL.into_iter().enumerate() {
            self.scores[k] = self.task_score(t);
        }
        self
    }

    /// Whether this model can be chosen by a paid router (`auto`, `pareto-code`).
    #[must_use]
    pub fn paid_candidate(&self) -> bool {
        !self.router && !self.free && !self.batch
    }

    /// The task-specific quality score (0..1) used to rank models within a cost tier. A missing index is
    /// replaced by the mean of the model's other indices, or [`UNKNOWN_SCORE`] when it has none.
    #[must_use]
    pub fn task_score(&self, task: TaskType) -> f64 {
        let known = [self.intelligence, self.coding, self.agentic];
        let n = known.iter().flatten().count();
        let fill = if n == 0 {
            UNKNOWN_SCORE
        } else {
            known.iter().flatten().sum::<f64>() / n as f64
        };
        let i = self.intelligence.unwrap_or(fill);
        let c = self.coding.unwrap_or(fill);
        let a = self.agentic.unwrap_or(fill);
        match task {
            TaskType::Coding => 0.6 * c + 0.25 * a + 0.15 * i,
            TaskType::Agentic => 0.6 * a + 0.2 * c + 0.2 * i,
            TaskType::MathReasoning => 0.7 * i + 0.3 * c + if self.reasoning { 0.05 } else { 0.0 },
            TaskType::Extraction => 0.6 * i + 0.4 * a,
            TaskType::Summarization | TaskType::Translation | TaskType::Chat | TaskType::Vision => {
                i
            }
        }
    }
}

/// The index of `task` in [`TaskType::ALL`].
fn task_slot(task: TaskType) -> usize {
    match task {
        TaskType::Coding => 0,
        TaskType::Agentic => 1,
        TaskType::MathReasoning => 2,
        TaskType::Extraction => 3,
        TaskType::Summarization => 4,
        TaskType::Translation => 5,
        TaskType::Chat => 6,
        TaskType::Vision => 7,
    }
}

fn per_million(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::INFINITY) * 1_000_000.0
}

fn aa_index(m: &Model, key: &str) -> Option<f64> {
    m.benchmarks
        .as_ref()?
        .get("artificial_analysis")?
        .get(key)?
        .as_f64()
        .filter(|x| x.is_finite() && *x >= 0.0)
}

/// The catalog plus precomputed per-model facts. Build it once per catalog ([`AutoIndex::new`] reads every model's
/// benchmarks and prices) and keep it next to the catalog — e.g. in an `Arc` built whenever the catalog is loaded or
/// overlaid; routing with it only reads plain numbers.
#[derive(Debug, Clone)]
pub struct AutoIndex {
    pub(crate) catalog: Catalog,
    pub(crate) facts: std::sync::Arc<Vec<ModelFacts>>,
    /// The precomputed orders of [`Orders`], packed in one vector (the form the catalog caches).
    orders: std::sync::Arc<Vec<usize>>,
}

impl AutoIndex {
    /// Precompute facts for every model of `catalog`.
    ///
    /// Benchmark normalization: each Artificial Analysis index (`intelligence_index`, `coding_index`,
    /// `agentic_index`) is divided by the largest value of that index in the catalog, so the best model scores 1.0.
    #[must_use]
    pub fn new(catalog: &Catalog) -> Self {
        let (facts, orders) = Self::compute(catalog);
        Self {
            catalog: catalog.clone(),
            facts: std::sync::Arc::new(facts),
            orders: std::sync::Arc::new(orders),
        }
    }

    /// The index of `catalog`, with the facts computed on first use and cached inside the catalog (so every plan
    /// after the first reads precomputed numbers).
    #[must_use]
    pub fn cached(catalog: &Catalog) -> Self {
        type Memo = (std::sync::Arc<Vec<ModelFacts>>, std::sync::Arc<Vec<usize>>);
        let memo = catalog.memo::<Memo>(|| {
            let (f, p) = Self::compute(catalog);
            (std::sync::Arc::new(f), std::sync::Arc::new(p))
        });
        match memo {
            Some(m) => Self {
                catalog: catalog.clone(),
                facts: std::sync::Arc::clone(&m.0),
                orders: std::sync::Arc::clone(&m.1),
            },
            None => Self::new(catalog),
        }
    }

    fn compute(catalog: &Catalog) -> (Vec<ModelFacts>, Vec<usize>) {
        let models = catalog.models();
        let raw: Vec<[Option<f64>; 3]> = models
            .iter()
            .map(|m| {
                [
                    aa_index(m, "intelligence_index"),
                    aa_index(m, "coding_index"),
                    aa_index(m, "agentic_index"),
                ]
            })
            .collect();
        let mut max = [0f64; 3];
        for (r, m) in raw.iter().zip(models) {
            if m.is_router() {
                continue;
            }
            for k in 0..3 {
                max[k] = max[k].max(r[k].unwrap_or(0.0));
            }
        }
        let norm =
            |x: Option<f64>, k: usize| x.filter(|_| max[k] > 0.0).map(|x| (x / max[k]).min(1.0));
        let mut facts: Vec<ModelFacts> = models
            .iter()
            .zip(&raw)
            .enumerate()
            .map(|(index, (m, r))| {
                ModelFacts::finish(ModelFacts {
                    index,
                    id: m.id.clone(),
                    intelligence: norm(r[0], 0),
                    coding: norm(r[1], 1),
                    agentic: norm(r[2], 2),
                    prompt_price: per_million(m.pricing.prompt),
                    completion_price: per_million(m.pricing.completion),
                    caps: Caps::of(m),
                    reasoning: m.reasoning.is_some()
                        || m.supported_parameters.iter().any(|p| p == "reasoning"),
                    // Embedding models are never a router's choice for chat.
                    router: m.is_router() || m.id.starts_with('~') || m.is_embedding(),
                    free: m.is_free(),
                    batch: m.id.ends_with(":batch"),
                    scores: [0.0; 8],
                    rank: [0; 8],
                    blended: 0.0,
                })
            })
            .collect();
        let mut order: Vec<usize> = (0..facts.len()).collect();
        order.sort_by(|&a, &b| facts[a].id.cmp(&facts[b].id));
        // Position by slug, so that the task orders below compare integers instead of strings.
        let mut by_slug = vec![0usize; facts.len()];
        for (pos, &i) in order.iter().enumerate() {
            by_slug[i] = pos;
        }
        for k in 0..TaskType::ALL.len() {
            order.sort_by(|&a, &b| {
                let (x, y) = (&facts[a], &facts[b]);
                y.scores[k]
                    .total_cmp(&x.scores[k])
                    .then(x.blended.total_cmp(&y.blended))
                    .then(by_slug[a].cmp(&by_slug[b]))
            });
            for (pos, &i) in order.iter().enumerate() {
                facts[i].rank[k] = u32::try_from(pos).unwrap_or(u32::MAX);
            }
        }
        let orders = Orders::pack(&facts);
        (facts, orders)
    }

    /// The precomputed orders.
    pub(crate) fn orders(&self) -> Orders<'_> {
        Orders::unpack(&self.orders)
    }

    /// The catalog this index was built from.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The precomputed facts, in catalog order.
    #[must_use]
    pub fn facts(&self) -> &[ModelFacts] {
        &self.facts
    }

    pub(crate) fn model(&self, f: &ModelFacts) -> &Model {
        &self.catalog.models()[f.index]
    }
}

/// Index lists of [`AutoIndex::facts`], computed once per catalog.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Orders<'a> {
    /// Paid candidates ([`ModelFacts::paid_candidate`]) by blended price, then slug.
    pub paid_by_price: &'a [usize],
    /// Paid candidates with a coding index, cheapest first by input price, then best coding score, then slug.
    pub pareto_prompt: &'a [usize],
    /// The same by blended price.
    pub pareto_weighted: &'a [usize],
    /// Free, non-router models, by slug.
    pub free_by_slug: &'a [usize],
}

impl<'a> Orders<'a> {
    /// The four lists, packed as `[len₁, len₂, len₃, len₄, list₁…, list₂…, list₃…, list₄…]`.
    fn pack(facts: &[ModelFacts]) -> Vec<usize> {
        let sorted =
            |keep: &dyn Fn(&ModelFacts) -> bool,
             cmp: &dyn Fn(&ModelFacts, &ModelFacts) -> std::cmp::Ordering| {
                let mut v: Vec<usize> = (0..facts.len()).filter(|&i| keep(&facts[i])).collect();
                v.sort_by(|&a, &b| cmp(&facts[a], &facts[b]));
                v
            };
        let pareto = |source: PriceSource| {
            sorted(
                &|f| f.paid_candidate() && f.coding.is_some(),
                &move |x, y| {
                    let (sx, sy) = (x.coding.unwrap_or(0.0), y.coding.unwrap_or(0.0));
                    frontier_price(x, source)
                        .total_cmp(&frontier_price(y, source))
                        .then(sy.total_cmp(&sx))
                        .then(x.id.cmp(&y.id))
                },
            )
        };
        let lists = [
            sorted(&ModelFacts::paid_candidate, &|x, y| {
                x.blended.total_cmp(&y.blended).then(x.id.cmp(&y.id))
            }),
            pareto(PriceSource::Prompt),
            pareto(PriceSource::WeightedAvg),
            sorted(&|f| f.free && !f.router, &|x, y| x.id.cmp(&y.id)),
        ];
        let mut out: Vec<usize> = lists.iter().map(Vec::len).collect();
        for l in &lists {
            out.extend_from_slice(l);
        }
        out
    }

    fn unpack(packed: &'a [usize]) -> Self {
        let mut rest = packed.get(4..).unwrap_or(&[]);
        let mut take = |k: usize| {
            let n = packed.get(k).copied().unwrap_or(0).min(rest.len());
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head
        };
        Orders {
            paid_by_price: take(0),
            pareto_prompt: take(1),
            pareto_weighted: take(2),
            free_by_slug: take(3),
        }
    }
}

/// The result of the auto ranking: models, the tier actually used, and how many candidates there were.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AutoRanking {
    pub models: Vec<String>,
    pub tier: CostTier,
    pub candidates: usize,
}

/// The candidates of each price-percentile band (0..=4), as index ranges of `n` candidates whose prices
/// (`price(j)`) ascend. A model's percentile is 100 × (number of strictly cheaper candidates) / (number of
/// candidates), so equal prices share a band; the band grows with the price, so each band is a contiguous range.
pub(crate) fn band_ranges(n: usize, price: impl Fn(usize) -> f64) -> [(usize, usize); 5] {
    // Band `b` starts at the first candidate whose count of cheaper candidates `c` has `5c / n ≥ b`, i.e.
    // `c ≥ ⌈bn / 5⌉`: the first candidate at or after that position that is dearer than its predecessor.
    let mut starts = [0usize; 6];
    starts[5] = n;
    for (b, start) in starts.iter_mut().enumerate().take(5).skip(1) {
        let mut j = (b * n).div_ceil(5);
        while j > 0 && j < n && price(j) <= price(j - 1) {
            j += 1;
        }
        *start = j.min(n);
    }
    let mut ranges = [(0, 0); 5];
    for b in 0..5 {
        ranges[b] = (starts[b], starts[b + 1].max(starts[b]));
    }
    ranges
}

/// Band visiting order starting at `want`: the band itself, then outward, the cheaper neighbour first.
pub(crate) fn band_order(want: usize) -> impl Iterator<Item = usize> {
    let want = want.min(4);
    std::iter::once(want).chain((1..5).flat_map(move |d| {
        let lower = want.checked_sub(d);
        let upper = Some(want + d).filter(|u| *u <= 4);
        lower.into_iter().chain(upper)
    }))
}

/// The (up to) `k` best of `cands` by the precomputed rank of task slot `t`, best first.
fn top_k<'a>(cands: &[&'a ModelFacts], t: usize, k: usize) -> ([Option<&'a ModelFacts>; 3], usize) {
    let k = k.min(3);
    let mut best: [Option<&ModelFacts>; 3] = [None; 3];
    let mut len = 0;
    for &f in cands {
        let r = f.rank[t];
        // Insertion into the sorted prefix `best[..len]`, dropping what falls past `k`.
        let mut pos = len;
        while pos > 0 && best[pos - 1].is_some_and(|b| b.rank[t] > r) {
            pos -= 1;
        }
        if pos >= k {
            continue;
        }
        let end = len.min(k - 1);
        let mut q = end;
        while q > pos {
            best[q] = best[q - 1];
            q -= 1;
        }
        best[pos] = Some(f);
        len = (len + 1).min(k);
    }
    (best, len)
}

/// Rank for `openrouter/auto`: candidates are paid, non-router models that serve the request, pass the globs and
/// `eligible`; they are split into price-percentile bands; the requested band (or the nearest non-empty one) is
/// ordered by task score, then price, then slug; fallbacks come from the same band, then from neighbouring bands.
pub(crate) fn rank_auto(
    index: &AutoIndex,
    req: &ChatRequest,
    task: TaskType,
    settings: &AutoSettings,
    eligible: &dyn Fn(&Model) -> bool,
) -> Option<AutoRanking> {
    let need = Need::of(req);
    let paid = index.orders().paid_by_price;
    let models = index.catalog.models();
    let globs = !settings.allowed_models.is_empty() || !settings.excluded_models.is_empty();
    let mut cands: Vec<&ModelFacts> = Vec::with_capacity(paid.len());
    for &i in paid {
        let f = &index.facts[i];
        if f.caps.serves(&need)
            && (!globs || allowed_by(settings, &f.id))
            && models.get(f.index).is_some_and(eligible)
        {
            cands.push(f);
        }
    }
    if cands.is_empty() {
        return None;
    }
    let ranges = band_ranges(cands.len(), |j| cands[j].blended);
    let t = task_slot(task);
    let mut used = None;
    // Best score first, then cheaper, then slug (the precomputed rank); only the three best are kept.
    let mut chosen: Vec<String> = Vec::with_capacity(3);
    for b in band_order(settings.cost_tier.index()) {
        let (lo, hi) = ranges[b];
        if lo >= hi {
            if used.is_none() {
                continue;
            }
        } else {
            used.get_or_insert(b);
        }
        let (best, len) = top_k(&cands[lo.min(hi)..hi], t, 3 - chosen.len());
        chosen.extend(best[..len].iter().flatten().map(|f| f.id.clone()));
        if chosen.len() == 3 {
            break;
        }
    }
    if settings.pin_model {
        if let Some(pinned) = last_assistant_model(req) {
            if cands.iter().any(|f| f.id == pinned) {
                chosen.retain(|m| m != pinned);
                chosen.insert(0, pinned.to_string());
                chosen.truncate(3);
            }
        }
    }
    Some(AutoRanking {
        models: chosen,
        tier: CostTier::from_index(used.unwrap_or(0)),
        candidates: cands.len(),
    })
}

/// The `model` field of the last assistant message, when present.
fn last_assistant_model(req: &ChatRequest) -> Option<&str> {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == crate::types::Role::Assistant)
        .and_then(|m| m.extra.get("model"))
        .and_then(Value::as_str)
}

/// `openrouter/free`: the free (zero-price, non-router) models that serve the request and pass `eligible`, in a
/// seeded uniformly random order (ChaCha8 from `seed` over the slug-sorted list); the first is the choice, up to two
/// more are fallbacks.
///
/// # Errors
/// [`crate::Error::NoEndpoints`] with the message `No models match your request and model restrictions`.
pub fn pick_free(
    catalog: &Catalog,
    req: &ChatRequest,
    seed: u64,
    eligible: &dyn Fn(&Model) -> bool,
) -> crate::Result<Vec<String>> {
    AutoIndex::cached(catalog).pick_free(req, seed, eligible)
}

impl AutoIndex {
    /// [`pick_free`] on the precomputed slug-ordered list of free models.
    pub(crate) fn pick_free(
        &self,
        req: &ChatRequest,
        seed: u64,
        eligible: &dyn Fn(&Model) -> bool,
    ) -> crate::Result<Vec<String>> {
        let need = Need::of(req);
        let mut free: Vec<&str> = self
            .orders()
            .free_by_slug
            .iter()
            .map(|&i| &self.facts[i])
            .filter(|f| f.caps.serves(&need) && eligible(self.model(f)))
            .map(|f| f.id.as_str())
            .collect();
        if free.is_empty() {
            return Err(super::no_match("openrouter/free"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        free.shuffle(&mut rng);
        Ok(free.into_iter().take(3).map(str::to_string).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The band of every candidate, one at a time: 5 × (strictly cheaper candidates) / (candidates).
    fn naive_bands(prices: &[f64]) -> Vec<usize> {
        let n = prices.len().max(1);
        let mut cheaper = 0;
        (0..prices.len())
            .map(|j| {
                if j > 0 && prices[j] > prices[j - 1] {
                    cheaper = j;
                }
                ((cheaper * 5) / n).min(4)
            })
            .collect()
    }

    #[test]
    fn band_ranges_match_per_candidate_bands() {
        let mut seed = 7u64;
        for n in 0..60 {
            for _ in 0..50 {
                let mut prices: Vec<f64> = (0..n)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        (seed % 6) as f64
                    })
                    .collect();
                prices.sort_by(f64::total_cmp);
                let ranges = band_ranges(n, |j| prices[j]);
                let mut from_ranges = vec![usize::MAX; n];
                for (b, (lo, hi)) in ranges.into_iter().enumerate() {
                    for slot in &mut from_ranges[lo..hi] {
                        *slot = b;
                    }
                }
                assert_eq!(from_ranges, naive_bands(&prices), "{prices:?}");
            }
        }
    }

    #[test]
    fn band_order_goes_outward_cheaper_first() {
        assert_eq!(band_order(0).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert_eq!(band_order(2).collect::<Vec<_>>(), [2, 1, 3, 0, 4]);
        assert_eq!(band_order(4).collect::<Vec<_>>(), [4, 3, 2, 1, 0]);
    }
}
