//! Statistics of latencies per group (model × browser × platform × precision, or any columns):
//! n, median, p90, mean, sample standard deviation, a bootstrap 95% confidence interval of the
//! median, and the speedup against a baseline (say, `platform = 'wasm'`) with its own interval.
//!
//! Definitions, so a figure can be checked by hand or in DuckDB:
//! - **Quantiles** interpolate linearly between order statistics (Hyndman & Fan type 7, the
//!   default of numpy and R, and DuckDB's `quantile_cont`): for sorted `x[0..n]` and `q`, take
//!   `h = (n - 1)·q`, then `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`. The median is `q = 0.5`
//!   (the middle value, or the mean of the two middle ones); p90 is `q = 0.9`.
//! - **std** is the sample standard deviation (divides by `n − 1`); none below two samples.
//! - **Bootstrap CI of the median** (percentile method): draw `resamples` samples of size `n`
//!   with replacement, take each one's median, and report the type-7 quantiles at 2.5% and
//!   97.5% of those medians. None below two samples.
//! - **Speedup** of a cell is `median(baseline) / median(cell)`: above 1 the cell is faster.
//!   Its interval resamples the baseline and the cell independently, `resamples` times, and
//!   takes the same percentiles of the ratio of the two medians.
//!
//! The resampling is seeded, so a figure is the same on every run and machine. The generator
//! is SplitMix64 (Steele, Lea & Flood 2014), written out here because its whole definition is
//! five lines: a result can be recomputed in any language (the test does, against Python), and
//! no library update can change it (`rand`'s `StdRng` says its stream may change between
//! versions). An index below `n` is the high 64 bits of `next() · n` (Lemire's multiply-shift;
//! its bias, under `n / 2⁶⁴`, is far below anything a bootstrap can see). Each group seeds from
//! the seed and its own key, so adding a group to a frame leaves the others' intervals alone.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray, UInt32Array};
use arrow::compute::{concat, take};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::error::{Result, ResultsError};
use crate::frame::Frame;

/// Resamples per interval: enough that the 2.5% and 97.5% points move by well under a
/// percent between seeds.
pub const DEFAULT_RESAMPLES: usize = 10_000;
pub const DEFAULT_SEED: u64 = 0x5745_4241_4343_454c; // "WEBACCEL"

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    pub resamples: usize,
    pub seed: u64,
    /// 0.95 for a 95% interval.
    pub confidence: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { resamples: DEFAULT_RESAMPLES, seed: DEFAULT_SEED, confidence: 0.95 }
    }
}

/// The type-7 quantile `q` of already sorted data; None when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

pub fn mean(samples: &[f64]) -> Option<f64> {
    (!samples.is_empty()).then(|| samples.iter().sum::<f64>() / samples.len() as f64)
}

/// Sample standard deviation (n − 1).
pub fn sample_std(samples: &[f64]) -> Option<f64> {
    let n = samples.len();
    if n < 2 {
        return None;
    }
    let m = mean(samples)?;
    Some((samples.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt())
}

/// SplitMix64; see the module docs for why it is written out.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An index below `n` (multiply-shift).
    pub fn index(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

fn resampled_median(rng: &mut SplitMix64, samples: &[f64], scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..samples.len()).map(|_| samples[rng.index(samples.len())]));
    scratch.sort_by(f64::total_cmp);
    quantile_sorted(scratch, 0.5).expect("resample of a non-empty sample")
}

fn percentile_interval(mut stats: Vec<f64>, confidence: f64) -> Option<(f64, f64)> {
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some((quantile_sorted(&stats, tail)?, quantile_sorted(&stats, 1.0 - tail)?))
}

fn check(b: &Bootstrap) -> Result<()> {
    if b.resamples == 0 || !(b.confidence > 0.0 && b.confidence < 1.0) {
        return Err(ResultsError::Invalid(format!(
            "bootstrap needs resamples > 0 and 0 < confidence < 1, got {} and {}",
            b.resamples, b.confidence
        )));
    }
    Ok(())
}

/// Percentile bootstrap interval of the median, drawing from `rng`. None below two samples.
pub fn bootstrap_median_ci(samples: &[f64], b: &Bootstrap, rng: &mut SplitMix64) -> Option<(f64, f64)> {
    if samples.len() < 2 {
        return None;
    }
    let mut scratch = Vec::with_capacity(samples.len());
    let medians = (0..b.resamples).map(|_| resampled_median(rng, samples, &mut scratch)).collect();
    percentile_interval(medians, b.confidence)
}

/// Percentile bootstrap interval of `median(baseline) / median(cell)`, each resample drawing
/// the baseline first, then the cell. None when either has fewer than two samples.
pub fn bootstrap_speedup_ci(baseline: &[f64], cell: &[f64], b: &Bootstrap, rng: &mut SplitMix64) -> Option<(f64, f64)> {
    if baseline.len() < 2 || cell.len() < 2 {
        return None;
    }
    let mut scratch = Vec::with_capacity(baseline.len().max(cell.len()));
    let ratios = (0..b.resamples)
        .map(|_| {
            let base = resampled_median(rng, baseline, &mut scratch);
            base / resampled_median(rng, cell, &mut scratch)
        })
        .collect();
    percentile_interval(ratios, b.confidence)
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub median_ci: Option<(f64, f64)>,
}

/// The figures of one sample (non-finite values are dropped as unmeasured).
pub fn summarize(samples: &[f64], b: &Bootstrap, rng: &mut SplitMix64) -> Summary {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    Summary {
        n: sorted.len(),
        median: quantile_sorted(&sorted, 0.5),
        p90: quantile_sorted(&sorted, 0.9),
        mean: mean(&sorted),
        std: sample_std(&sorted),
        median_ci: bootstrap_median_ci(&sorted, b, rng),
    }
}

/// FNV-1a: a stable hash (std's `DefaultHasher` may change between Rust releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The baseline the speedup is measured against: the group that has `value` in `column` and
/// agrees with the cell on every other grouping column; where there is none, one that agrees
/// on every grouping column except those in `relaxed` (for a grid, the browser: wasm ran in
/// Chromium, webnn in headless-shell, and the webnn cells still want their speedup against
/// wasm). The summary then says, per relaxed column, where its baseline came from
/// (`baseline_<column>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub column: String,
    pub value: String,
    pub relaxed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SummaryOptions {
    pub group_by: Vec<String>,
    /// A numeric column, or a list of numbers (each row's timed runs, pooled per group).
    pub value: String,
    pub baseline: Option<Baseline>,
    /// A text column whose non-null values count as failed rows; the summary then has
    /// `errors` (how many) and `error` (the first one).
    pub error_column: Option<String>,
    pub bootstrap: Bootstrap,
}

impl SummaryOptions {
    /// The grid of a `compare`: model × browser × platform × precision, over the pooled timed
    /// runs, with `error` counted.
    pub fn latency_grid(baseline_platform: Option<&str>) -> Self {
        SummaryOptions {
            group_by: ["model_name", "browser", "platform", "precision"].map(String::from).to_vec(),
            value: "latencies_ms".into(),
            baseline: baseline_platform.map(|p| Baseline {
                column: "platform".into(),
                value: p.into(),
                relaxed: vec!["browser".into()],
            }),
            error_column: Some("error".into()),
            bootstrap: Bootstrap::default(),
        }
    }
}

struct Group {
    /// The group's first row, whose grouping values the summary shows.
    first_row: u32,
    key: Vec<String>,
    samples: Vec<f64>,
    errors: i64,
    first_error: Option<String>,
}

/// Summarises `frame` per group: the grouping columns (with their types), then `n`, `median`,
/// `p90`, `mean`, `std`, `median_ci_low`, `median_ci_high`; with a baseline also `speedup`,
/// `speedup_ci_low`, `speedup_ci_high`; with an error column `errors` and `error`. Groups keep
/// the order of their first row. A group with no samples has n = 0 and nulls.
pub fn summarize_frame(frame: &Frame, opts: &SummaryOptions) -> Result<Frame> {
    check(&opts.bootstrap)?;
    if let Some(b) = &opts.baseline {
        if let Some(c) = b.relaxed.iter().find(|c| !opts.group_by.contains(c) || **c == b.column) {
            return Err(ResultsError::Invalid(format!(
                "a relaxed baseline column ({c:?}) must be a grouping column other than {:?}",
                b.column
            )));
        }
        if !opts.group_by.contains(&b.column) {
            return Err(ResultsError::Invalid(format!(
                "the baseline column {:?} must be one of the grouping columns {:?}",
                b.column, opts.group_by
            )));
        }
    }
    let keys: Vec<Vec<Option<String>>> = opts.group_by.iter().map(|c| frame.text_column(c)).collect::<Result<_>>()?;
    let values = frame.sample_column(&opts.value)?;
    let errors = opts.error_column.as_deref().map(|c| frame.text_column(c)).transpose()?;

    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    for row in 0..frame.height() {
        let key: Vec<String> = keys.iter().map(|k| k[row].clone().unwrap_or_else(|| "∅".into())).collect();
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push(Group { first_row: row as u32, key, samples: Vec::new(), errors: 0, first_error: None });
            groups.len() - 1
        });
        let group = &mut groups[g];
        group.samples.extend(values[row].iter().copied().filter(|x| x.is_finite()));
        if let Some(e) = errors.as_ref().and_then(|e| e[row].as_ref()) {
            group.errors += 1;
            group.first_error.get_or_insert_with(|| e.clone());
        }
    }

    let seed_of = |key: &[String]| opts.bootstrap.seed ^ fnv1a(&key.join("\u{1f}"));
    let summaries: Vec<Summary> =
        groups.iter().map(|g| summarize(&g.samples, &opts.bootstrap, &mut SplitMix64::new(seed_of(&g.key)))).collect();

    let (schema, batches) = frame.arrow_parts()?;
    let rows = UInt32Array::from(groups.iter().map(|g| g.first_row).collect::<Vec<_>>());
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for name in &opts.group_by {
        let i = schema.index_of(name).map_err(|_| frame.no_such_column(name))?;
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
        let whole =
            if parts.is_empty() { arrow::array::new_empty_array(schema.field(i).data_type()) } else { concat(&parts)? };
        columns.push(take(&whole, &rows, None)?);
        fields.push(Field::new(name, schema.field(i).data_type().clone(), true));
    }
    let mut float = |name: &str, values: Vec<Option<f64>>| {
        fields.push(Field::new(name, DataType::Float64, true));
        columns.push(Arc::new(Float64Array::from(values)) as ArrayRef);
    };
    let pick = |f: fn(&Summary) -> Option<f64>| summaries.iter().map(f).collect::<Vec<_>>();
    let n = Int64Array::from(summaries.iter().map(|s| s.n as i64).collect::<Vec<_>>());
    float("median", pick(|s| s.median));
    float("p90", pick(|s| s.p90));
    float("mean", pick(|s| s.mean));
    float("std", pick(|s| s.std));
    float("median_ci_low", pick(|s| s.median_ci.map(|c| c.0)));
    float("median_ci_high", pick(|s| s.median_ci.map(|c| c.1)));

    if let Some(b) = &opts.baseline {
        let at = opts.group_by.iter().position(|c| c == &b.column).expect("checked above");
        let loose: Vec<usize> =
            b.relaxed.iter().map(|c| opts.group_by.iter().position(|g| g == c).expect("checked above")).collect();
        let mut speedup = Vec::new();
        let mut ci = Vec::new();
        let mut relaxed_from: Vec<Vec<Option<String>>> = vec![Vec::new(); loose.len()];
        for (g, s) in groups.iter().zip(&summaries) {
            let mut base_key = g.key.clone();
            base_key[at] = b.value.clone();
            // The exact match first; else the first baseline group (in frame order) that agrees
            // on everything but the relaxed columns.
            let found = index.get(&base_key).copied().or_else(|| {
                groups.iter().position(|other| {
                    other.key.iter().enumerate().all(|(c, v)| loose.contains(&c) || *v == base_key[c])
                })
            });
            for (slot, &c) in relaxed_from.iter_mut().zip(&loose) {
                slot.push(found.map(|i| groups[i].key[c].clone()));
            }
            let base = found.map(|i| (&groups[i], &summaries[i]));
            match (base, s.median) {
                (Some((bg, bs)), Some(m)) if bs.median.is_some() && m > 0.0 => {
                    speedup.push(Some(bs.median.unwrap() / m));
                    // A stream of its own, apart from the one the median interval used.
                    let mut rng = SplitMix64::new(seed_of(&g.key) ^ fnv1a("speedup"));
                    ci.push(bootstrap_speedup_ci(&bg.samples, &g.samples, &opts.bootstrap, &mut rng));
                }
                _ => {
                    speedup.push(None);
                    ci.push(None);
                }
            }
        }
        float("speedup", speedup);
        float("speedup_ci_low", ci.iter().map(|c| c.map(|c| c.0)).collect());
        float("speedup_ci_high", ci.iter().map(|c| c.map(|c| c.1)).collect());
        for (column, from) in b.relaxed.iter().zip(relaxed_from) {
            fields.push(Field::new(format!("baseline_{column}"), DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from(from)) as ArrayRef);
        }
    }
    let at_n = opts.group_by.len();
    fields.insert(at_n, Field::new("n", DataType::Int64, false));
    columns.insert(at_n, Arc::new(n));
    if opts.error_column.is_some() {
        fields.push(Field::new("errors", DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from(groups.iter().map(|g| g.errors).collect::<Vec<_>>())));
        fields.push(Field::new("error", DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(groups.iter().map(|g| g.first_error.clone()).collect::<Vec<_>>())));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Frame::from_batches(schema, vec![batch])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::query_arrow;
    use duckdb::Connection;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn figures_by_hand() {
        // Sorted 10, 11, 12, 13, 15. Median the middle one; p90 at h = 4 · 0.9 = 3.6, so
        // 13 + 0.6 · (15 − 13) = 14.2; mean 61 / 5; deviations −2.2, −1.2, −0.2, 0.8, 2.8 square
        // to 14.8 in all, so std = √(14.8 / 4). (numpy: quantile 0.9 → 14.2, std ddof=1 → 1.92353840616713.)
        let s = summarize(&[12.0, 10.0, 11.0, 15.0, 13.0], &Bootstrap::default(), &mut SplitMix64::new(1));
        assert_eq!((s.n, s.median, s.mean), (5, Some(12.0), Some(12.2)));
        assert!(close(s.p90.unwrap(), 14.2), "{s:?}");
        assert!(close(s.std.unwrap(), 3.7f64.sqrt()), "{s:?}");
        // Even n: the mean of the two middle values; p90 at h = 2.7 → 3 + 0.7.
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.5), Some(2.5));
        assert!(close(quantile(&[4.0, 1.0, 3.0, 2.0], 0.9).unwrap(), 3.7));
        // One sample: no spread, no interval. None: nothing at all.
        let one = summarize(&[7.0], &Bootstrap::default(), &mut SplitMix64::new(1));
        assert_eq!((one.median, one.p90, one.std, one.median_ci), (Some(7.0), Some(7.0), None, None));
        let none = summarize(&[f64::NAN], &Bootstrap::default(), &mut SplitMix64::new(1));
        assert_eq!((none.n, none.median, none.mean), (0, None, None));
    }

    #[test]
    fn the_generator_is_splitmix64() {
        // The reference outputs of SplitMix64 seeded with 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f]
        );
        let mut r = SplitMix64::new(3);
        assert!((0..10_000).all(|_| r.index(7) < 7));
    }

    /// Fixed-seed intervals recomputed independently in Python with the algorithm the module
    /// docs give (SplitMix64, multiply-shift indexes, type-7 percentiles):
    ///
    /// ```python
    /// M = (1 << 64) - 1
    /// class SplitMix64:
    ///     def __init__(self, seed): self.s = seed & M
    ///     def next(self):
    ///         self.s = (self.s + 0x9e3779b97f4a7c15) & M
    ///         z = self.s
    ///         z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    ///         z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    ///         return z ^ (z >> 31)
    ///     def index(self, n): return (self.next() * n) >> 64
    /// def q7(s, q):
    ///     h = (len(s) - 1) * q; lo = int(h); hi = min(lo + 1, len(s) - 1)
    ///     return s[lo] + (h - lo) * (s[hi] - s[lo])
    /// def med(xs): return q7(sorted(xs), 0.5)
    /// def ci(stats): s = sorted(stats); return q7(s, 0.025), q7(s, 0.975)
    /// r = SplitMix64(42)
    /// ci([med([cell[r.index(len(cell))] for _ in cell]) for _ in range(2000)])   # (17.5, 21.0)
    /// r = SplitMix64(7)
    /// ratios = []
    /// for _ in range(2000):
    ///     b = med([base[r.index(len(base))] for _ in base])
    ///     c = med([cell[r.index(len(cell))] for _ in cell])
    ///     ratios.append(b / c)
    /// ci(ratios)   # (1.4599291557113647, 1.7671481040301764)
    /// ```
    #[test]
    fn bootstrap_intervals_match_an_independent_computation() {
        let cell = [18.5, 17.25, 18.0, 19.75, 21.0, 17.5, 18.25, 30.0];
        let base = [30.0, 31.5, 29.0, 33.0, 30.5, 29.5];
        let b = Bootstrap { resamples: 2000, ..Bootstrap::default() };
        assert_eq!(bootstrap_median_ci(&cell, &b, &mut SplitMix64::new(42)), Some((17.5, 21.0)));
        assert_eq!(
            bootstrap_speedup_ci(&base, &cell, &b, &mut SplitMix64::new(7)),
            Some((1.4599291557113647, 1.7671481040301764))
        );
        // The point estimate sits inside its interval: 30.25 / 18.375.
        let (lo, hi) = bootstrap_speedup_ci(&base, &cell, &b, &mut SplitMix64::new(7)).unwrap();
        assert!(lo < 30.25 / 18.375 && 30.25 / 18.375 < hi);
        assert_eq!(bootstrap_median_ci(&[1.0], &b, &mut SplitMix64::new(1)), None);
    }

    fn frame(sql: &str) -> Frame {
        let conn = Connection::open_in_memory().unwrap();
        Frame::from_query(query_arrow(&conn, sql).unwrap()).unwrap()
    }

    const GRID: &str = "SELECT * FROM (VALUES
        ('m', 'wasm', 8, [30.0, 31.5, 29.0], NULL),
        ('m', 'wasm', 8, [33.0, 30.5, 29.5], NULL),
        ('m', 'webgpu', 8, [18.5, 17.25, 18.0, 19.75], NULL),
        ('m', 'webgpu', 8, [21.0, 17.5, 18.25, 30.0], NULL),
        ('m', 'webnn', 8, NULL, 'NotSupportedError: no WebNN'),
        ('m', 'webgpu', 16, [10.0, 12.0], NULL)
    ) AS t(model_name, platform, precision, latencies_ms, error)";

    #[test]
    fn a_grid_summary_with_speedups_by_hand() {
        let opts = SummaryOptions {
            group_by: vec!["model_name".into(), "platform".into(), "precision".into()],
            value: "latencies_ms".into(),
            baseline: Some(Baseline { column: "platform".into(), value: "wasm".into(), relaxed: vec![] }),
            error_column: Some("error".into()),
            bootstrap: Bootstrap { resamples: 2000, ..Bootstrap::default() },
        };
        let s = summarize_frame(&frame(GRID), &opts).unwrap();
        assert_eq!(
            s.column_names(),
            [
                "model_name",
                "platform",
                "precision",
                "n",
                "median",
                "p90",
                "mean",
                "std",
                "median_ci_low",
                "median_ci_high",
                "speedup",
                "speedup_ci_low",
                "speedup_ci_high",
                "errors",
                "error"
            ]
        );
        let platform: Vec<_> = s.text_column("platform").unwrap().into_iter().flatten().collect();
        assert_eq!(platform, ["wasm", "webgpu", "webnn", "webgpu"]);
        // Grouping columns keep their type.
        assert_eq!(s.f64_column("precision").unwrap(), [Some(8.0), Some(8.0), Some(8.0), Some(16.0)]);
        assert_eq!(s.f64_column("n").unwrap(), [Some(6.0), Some(8.0), Some(0.0), Some(2.0)]);
        // wasm pooled: 29, 29.5, 30, 30.5, 31.5, 33 → median 30.25; webgpu/8 pooled (the same
        // eight values as the fixed-seed test) → median (18.25 + 18.5) / 2 = 18.375.
        let median = s.f64_column("median").unwrap();
        assert_eq!(median, [Some(30.25), Some(18.375), None, Some(11.0)]);
        let speedup = s.f64_column("speedup").unwrap();
        assert_eq!(speedup[0], Some(1.0));
        assert!(close(speedup[1].unwrap(), 30.25 / 18.375));
        // No samples, so no speedup; and precision 16 has no wasm baseline at 16.
        assert_eq!((speedup[2], speedup[3]), (None, None));
        assert_eq!(s.f64_column("errors").unwrap(), [Some(0.0), Some(0.0), Some(1.0), Some(0.0)]);
        assert_eq!(s.text_column("error").unwrap()[2].as_deref(), Some("NotSupportedError: no WebNN"));
        // Intervals hold their estimate, and are reproducible.
        let (lo, hi) = (s.f64_column("speedup_ci_low").unwrap(), s.f64_column("speedup_ci_high").unwrap());
        assert!(lo[1].unwrap() < speedup[1].unwrap() && speedup[1].unwrap() < hi[1].unwrap());
        let (mlo, mhi) = (s.f64_column("median_ci_low").unwrap(), s.f64_column("median_ci_high").unwrap());
        for g in [0, 1, 3] {
            assert!(mlo[g].unwrap() <= median[g].unwrap() && median[g].unwrap() <= mhi[g].unwrap(), "group {g}");
        }
        let again = summarize_frame(&frame(GRID), &opts).unwrap();
        assert_eq!(again.f64_column("speedup_ci_low").unwrap(), lo);

        // A group's interval depends on its own rows, not on which other groups are present.
        let alone =
            summarize_frame(&frame(GRID).filter("platform = 'webgpu' AND precision = 8").unwrap(), &opts).unwrap();
        assert_eq!(alone.f64_column("median_ci_low").unwrap()[0], mlo[1]);
        assert_eq!(alone.f64_column("median_ci_high").unwrap()[0], mhi[1]);
    }

    #[test]
    fn the_baseline_comes_from_another_browser_when_the_cells_own_has_none() {
        // As a compare on auto browsers runs it here: wasm in chromium, webnn in headless-shell.
        let f = frame(
            "SELECT * FROM (VALUES
                ('m', 'chromium', 'wasm', [30.0, 30.0]),
                ('m', 'headless-shell', 'webnn', [10.0, 10.0]),
                ('m', 'chromium', 'webgpu', [60.0, 60.0]),
                ('m', 'native', 'native', [15.0, 15.0])
            ) AS t(model_name, browser, platform, latencies_ms)",
        );
        let opts = |value: &str, relaxed: Vec<String>| SummaryOptions {
            group_by: vec!["model_name".into(), "browser".into(), "platform".into()],
            value: "latencies_ms".into(),
            baseline: Some(Baseline { column: "platform".into(), value: value.into(), relaxed }),
            error_column: None,
            bootstrap: Bootstrap { resamples: 200, ..Bootstrap::default() },
        };
        let strict = summarize_frame(&f, &opts("wasm", vec![])).unwrap();
        assert_eq!(strict.f64_column("speedup").unwrap()[1], None, "no wasm cell in headless-shell");
        let s = summarize_frame(&f, &opts("wasm", vec!["browser".into()])).unwrap();
        assert_eq!(s.f64_column("speedup").unwrap(), [Some(1.0), Some(3.0), Some(0.5), Some(2.0)]);
        let from: Vec<_> = s.text_column("baseline_browser").unwrap().into_iter().flatten().collect();
        assert_eq!(from, ["chromium", "chromium", "chromium", "chromium"]);
        // Against native, every cell has one.
        let s = summarize_frame(&f, &opts("native", vec!["browser".into()])).unwrap();
        assert_eq!(s.f64_column("speedup").unwrap(), [Some(0.5), Some(1.5), Some(0.25), Some(1.0)]);
        assert_eq!(s.text_column("baseline_browser").unwrap()[0].as_deref(), Some("native"));
    }

    #[test]
    fn scalar_values_and_option_errors() {
        let f = frame("SELECT * FROM (VALUES ('a', 1.0), ('a', 3.0), ('b', 10.0)) AS t(g, latency_ms)");
        let opts = SummaryOptions {
            group_by: vec!["g".into()],
            value: "latency_ms".into(),
            baseline: None,
            error_column: None,
            bootstrap: Bootstrap::default(),
        };
        let s = summarize_frame(&f, &opts).unwrap();
        assert_eq!(s.f64_column("median").unwrap(), [Some(2.0), Some(10.0)]);
        assert!(!s.column_names().contains(&"speedup".to_string()));

        let bad = |o: SummaryOptions| summarize_frame(&f, &o).unwrap_err().to_string();
        assert!(bad(SummaryOptions { value: "g".into(), ..opts.clone() }).contains("numbers"));
        assert!(bad(SummaryOptions { group_by: vec!["nope".into()], ..opts.clone() }).contains("nope"));
        let b = Some(Baseline { column: "platform".into(), value: "wasm".into(), relaxed: vec![] });
        assert!(bad(SummaryOptions { baseline: b, ..opts.clone() }).contains("grouping columns"));
        let zero = Bootstrap { resamples: 0, ..Bootstrap::default() };
        assert!(bad(SummaryOptions { bootstrap: zero, ..opts.clone() }).contains("resamples"));
    }
}
