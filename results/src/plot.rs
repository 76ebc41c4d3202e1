//! Charts of frames, drawn with plotters as SVG (or PNG where asked):
//! - `latency_by_platform`: a summary's median latency per platform, one bar per precision,
//!   with the bootstrap interval as whiskers;
//! - `speedup`: the same for the speedup against the baseline, with a line at 1×;
//! - `accuracy_vs_latency`: a scatter of accuracy against latency, coloured by a column;
//! - `plot`: any frame, given x, y, an optional colour column and a kind.
//!
//! A chart is first built as plain data (`Chart`), then drawn on either backend.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Result, ResultsError};
use crate::export::sql_ident;
use crate::font::{ensure_font, FAMILY};
use crate::frame::Frame;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlotFormat {
    #[default]
    Svg,
    Png,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotKind {
    /// One bar per x category (dodged per colour), whiskers where given.
    Bar,
    /// Points (dodged per colour on a category axis), whiskers where given.
    Point,
    /// Points joined in x order, per colour.
    Line,
    /// Points, per colour.
    Scatter,
}

impl PlotKind {
    pub const NAMES: [&'static str; 4] = ["bar", "point", "line", "scatter"];

    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "bar" => Ok(PlotKind::Bar),
            "point" => Ok(PlotKind::Point),
            "line" => Ok(PlotKind::Line),
            "scatter" => Ok(PlotKind::Scatter),
            other => Err(ResultsError::Invalid(format!("unknown plot kind {other:?}; use one of {:?}", Self::NAMES))),
        }
    }
}

/// Size, format and title; every field has a default.
#[derive(Debug, Clone, Default)]
pub struct PlotOptions {
    pub format: PlotFormat,
    /// Pixels; by default wide enough for every category label.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub title: Option<String>,
}

/// What `plot` draws from a frame.
#[derive(Debug, Clone)]
pub struct PlotSpec {
    pub x: String,
    pub y: String,
    pub color: Option<String>,
    pub kind: PlotKind,
    /// Columns with the lower and upper ends of whiskers (e.g. a confidence interval).
    pub y_low: Option<String>,
    pub y_high: Option<String>,
    pub x_label: Option<String>,
    pub y_label: Option<String>,
    /// A dashed horizontal line (e.g. 1.0 on a speedup chart).
    pub reference_y: Option<f64>,
}

impl PlotSpec {
    pub fn new(x: &str, y: &str, kind: PlotKind) -> Self {
        PlotSpec {
            x: x.into(),
            y: y.into(),
            color: None,
            kind,
            y_low: None,
            y_high: None,
            x_label: None,
            y_label: None,
            reference_y: None,
        }
    }
}

/// A drawn chart: SVG text or PNG bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub format: PlotFormat,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Plot {
    pub fn mime_type(&self) -> &'static str {
        match self.format {
            PlotFormat::Svg => "image/svg+xml",
            PlotFormat::Png => "image/png",
        }
    }

    /// The SVG document, for an SVG plot.
    pub fn svg(&self) -> Option<&str> {
        match self.format {
            PlotFormat::Svg => std::str::from_utf8(&self.bytes).ok(),
            PlotFormat::Png => None,
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, &self.bytes).map_err(|source| ResultsError::Io { path: path.to_path_buf(), source })
    }
}

// ---------------------------------------------------------------------------------------------
// The chart as data.

#[derive(Debug, Clone, PartialEq)]
struct Point {
    x: f64,
    y: f64,
    whisker: Option<(f64, f64)>,
}

#[derive(Debug, Clone)]
struct Series {
    name: String,
    points: Vec<Point>,
}

#[derive(Debug, Clone)]
enum XAxis {
    /// Category labels; point x values are category indexes.
    Categories(Vec<String>),
    Numeric,
}

#[derive(Debug, Clone)]
struct Chart {
    title: String,
    /// The legend's heading: the colour column's name.
    legend_title: Option<String>,
    x_label: String,
    y_label: String,
    x: XAxis,
    series: Vec<Series>,
    kind: PlotKind,
    reference_y: Option<f64>,
}

/// Tableau 10: distinct to most eyes, in print and on screen.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// Distinct values in first-seen order.
fn distinct(values: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    values.iter().filter(|v| seen.insert(v.as_str())).cloned().collect()
}

/// Builds the chart from a frame's columns. Rows with a null x or y are left out.
fn chart_from(frame: &Frame, spec: &PlotSpec, title: String) -> Result<Chart> {
    let ys = frame.f64_column(&spec.y)?;
    let lows = spec.y_low.as_deref().map(|c| frame.f64_column(c)).transpose()?;
    let highs = spec.y_high.as_deref().map(|c| frame.f64_column(c)).transpose()?;
    let colors: Vec<String> = match &spec.color {
        Some(c) => frame.text_column(c)?.into_iter().map(|v| v.unwrap_or_else(|| "null".into())).collect(),
        None => vec![spec.y.clone(); frame.height()],
    };
    let categorical = matches!(spec.kind, PlotKind::Bar | PlotKind::Point) || frame.f64_column(&spec.x).is_err();
    let (x_axis, xs): (XAxis, Vec<Option<f64>>) = if categorical {
        let labels = frame.text_column(&spec.x)?;
        let names = distinct(&labels.iter().flatten().cloned().collect::<Vec<_>>());
        let xs = labels.iter().map(|l| l.as_ref().and_then(|l| names.iter().position(|n| n == l)).map(|i| i as f64));
        let xs = xs.collect();
        (XAxis::Categories(names), xs)
    } else {
        (XAxis::Numeric, frame.f64_column(&spec.x)?)
    };
    let mut series: Vec<Series> =
        distinct(&colors).into_iter().map(|name| Series { name, points: Vec::new() }).collect();
    for row in 0..frame.height() {
        let (Some(x), Some(y)) = (xs[row], ys[row]) else { continue };
        let whisker = match (lows.as_ref().and_then(|l| l[row]), highs.as_ref().and_then(|h| h[row])) {
            (Some(lo), Some(hi)) => Some((lo, hi)),
            _ => None,
        };
        let s = series.iter_mut().find(|s| s.name == colors[row]).expect("every colour has a series");
        s.points.push(Point { x, y, whisker });
    }
    series.retain(|s| !s.points.is_empty());
    if series.is_empty() {
        return Err(ResultsError::Plot(format!(
            "no row has both {} and {}; nothing to draw (the frame has {} rows)",
            spec.x,
            spec.y,
            frame.height()
        )));
    }
    if matches!(spec.kind, PlotKind::Line) {
        for s in &mut series {
            s.points.sort_by(|a, b| a.x.total_cmp(&b.x));
        }
    }
    Ok(Chart {
        title,
        legend_title: spec.color.clone(),
        x_label: spec.x_label.clone().unwrap_or_else(|| spec.x.clone()),
        y_label: spec.y_label.clone().unwrap_or_else(|| spec.y.clone()),
        x: x_axis,
        series,
        kind: spec.kind,
        reference_y: spec.reference_y,
    })
}

/// Draws any frame: `x` and `y` columns, series per `color`, as bars, points, lines or a scatter.
pub fn plot(frame: &Frame, spec: &PlotSpec, options: &PlotOptions) -> Result<Plot> {
    let title = options.title.clone().unwrap_or_else(|| format!("{} by {}", spec.y, spec.x));
    render(&chart_from(frame, spec, title)?, options)
}

/// The x category of a summary chart: platform, prefixed by model and browser where they vary
/// (a constant column would only lengthen every label). Returns the frame with that column
/// added, its name, and the axis description.
fn category_column(summary: &Frame, color: Option<&str>) -> Result<(Frame, String, String)> {
    let names = summary.column_names();
    if !names.iter().any(|n| n == "platform") {
        return Err(summary_missing(summary, "platform"));
    }
    let mut parts = Vec::new();
    for c in ["model_name", "browser", "platform"] {
        if Some(c) == color || !names.iter().any(|n| n == c) {
            continue;
        }
        let values = summary.text_column(c)?;
        if c == "platform" || distinct(&values.into_iter().flatten().collect::<Vec<_>>()).len() > 1 {
            parts.push(c);
        }
    }
    let label = "chart_category";
    let sql = parts.iter().map(|c| sql_ident(c)).collect::<Vec<_>>().join(", ");
    let frame = summary.sql(&format!("SELECT *, concat_ws(' · ', {sql}) AS {label} FROM frame"))?;
    Ok((frame, label.to_string(), parts.join(" · ")))
}

fn summary_missing(summary: &Frame, column: &str) -> ResultsError {
    ResultsError::Invalid(format!(
        "this chart draws a summary (stats::summarize_frame) with a {column:?} column; the frame has {:?}",
        summary.column_names()
    ))
}

fn color_of(summary: &Frame) -> Option<String> {
    summary.column_names().into_iter().find(|c| c == "precision")
}

/// One of a summary's figures (`y`, with its interval `{y}_ci_low`..`{y}_ci_high`) per category,
/// one bar per precision.
pub fn summary_bars(
    summary: &Frame,
    y: &str,
    y_label: &str,
    reference_y: Option<f64>,
    title: String,
    options: &PlotOptions,
) -> Result<Plot> {
    if !summary.column_names().iter().any(|c| c == y) {
        return Err(summary_missing(summary, y));
    }
    let color = color_of(summary);
    let (frame, x, x_label) = category_column(summary, color.as_deref())?;
    let spec = PlotSpec {
        color,
        y_low: Some(format!("{y}_ci_low")),
        y_high: Some(format!("{y}_ci_high")),
        x_label: Some(x_label),
        y_label: Some(y_label.into()),
        reference_y,
        ..PlotSpec::new(&x, y, PlotKind::Bar)
    };
    render(&chart_from(&frame, &spec, options.title.clone().unwrap_or(title))?, options)
}

/// Median latency per platform (× model and browser where they vary), one bar per precision,
/// whiskers at the median's confidence interval.
pub fn latency_by_platform(summary: &Frame, options: &PlotOptions) -> Result<Plot> {
    let title = "Latency by platform and precision".to_string();
    summary_bars(summary, "median", "median latency (ms), 95% CI", None, title, options)
}

/// Speedup against the baseline per platform (× model and browser where they vary), one bar
/// per precision, whiskers at its confidence interval, and a line at 1×.
pub fn speedup(summary: &Frame, options: &PlotOptions) -> Result<Plot> {
    let title = "Speedup against the baseline".to_string();
    summary_bars(summary, "speedup", "speedup vs baseline (×), 95% CI", Some(1.0), title, options)
}

/// Accuracy (`accuracy`, e.g. `accuracy_cosine`) against latency (`latency`, e.g. `median`
/// or `latency_ms`), one colour per value of `color` (e.g. `precision`).
pub fn accuracy_vs_latency(
    frame: &Frame,
    latency: &str,
    accuracy: &str,
    color: Option<&str>,
    options: &PlotOptions,
) -> Result<Plot> {
    let spec = PlotSpec {
        color: color.map(String::from),
        x_label: Some(format!("{latency} (ms)")),
        y_label: Some(accuracy.to_string()),
        ..PlotSpec::new(latency, accuracy, PlotKind::Scatter)
    };
    let title = options.title.clone().unwrap_or_else(|| "Accuracy against latency".into());
    render(&chart_from(frame, &spec, title)?, options)
}

// ---------------------------------------------------------------------------------------------
// Drawing.

/// A category axis: category `i` sits at `i`, the axis runs from −0.5 to n − 0.5, and each
/// tick is labelled with its category's name.
struct Categories(Vec<String>);

impl Ranged for Categories {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let fraction = (value + 0.5) / self.0.len() as f64;
        limit.0 + (fraction * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let step = self.0.len().div_ceil(hint.max_num_points().max(1)).max(1);
        (0..self.0.len()).step_by(step).map(|i| i as f64).collect()
    }

    fn range(&self) -> Range<f64> {
        -0.5..self.0.len() as f64 - 0.5
    }
}

impl ValueFormatter<f64> for Categories {
    fn format_ext(&self, value: &f64) -> String {
        let i = value.round();
        if i >= 0.0 && (i as usize) < self.0.len() {
            self.0[i as usize].clone()
        } else {
            String::new()
        }
    }
}

/// Label text is about 0.6 em per character in a sans font.
fn text_px(text: &str, size: f64) -> u32 {
    (text.chars().count() as f64 * size * 0.6).ceil() as u32
}

fn render(chart: &Chart, options: &PlotOptions) -> Result<Plot> {
    ensure_font()?;
    let width = options.width.unwrap_or_else(|| match &chart.x {
        XAxis::Categories(names) => {
            let widest = names.iter().map(|n| text_px(n, 12.0)).max().unwrap_or(0) + 24;
            (names.len() as u32 * widest.max(90) + 200).clamp(640, 2400)
        }
        XAxis::Numeric => 720,
    });
    let height = options.height.unwrap_or(440);
    if !(64..=8192).contains(&width) || !(64..=8192).contains(&height) {
        return Err(ResultsError::Invalid(format!("a plot is 64 to 8192 pixels a side, not {width}×{height}")));
    }
    let bytes = match options.format {
        PlotFormat::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                draw(root, chart)?;
            }
            svg.into_bytes()
        }
        PlotFormat::Png => {
            let mut rgb = vec![0u8; width as usize * height as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
                draw(root, chart)?;
            }
            encode_png(&rgb, width, height)?
        }
    };
    Ok(Plot { format: options.format, bytes, width, height })
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let failed = |e: png::EncodingError| ResultsError::Plot(format!("PNG encoding: {e}"));
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(rgb).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

fn plot_error<E: std::fmt::Display>(e: E) -> ResultsError {
    ResultsError::Plot(e.to_string())
}

/// The y range: from zero for bars (their length is the value), padded by a tenth.
fn y_range(chart: &Chart) -> Range<f64> {
    let values = chart.series.iter().flat_map(|s| &s.points).flat_map(|p| {
        let (lo, hi) = p.whisker.unwrap_or((p.y, p.y));
        [p.y, lo, hi]
    });
    let (mut lo, mut hi) =
        values.chain(chart.reference_y).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if matches!(chart.kind, PlotKind::Bar) {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.1 } else { hi.abs().max(1.0) * 0.1 };
    let lo = if matches!(chart.kind, PlotKind::Bar) && lo >= 0.0 { 0.0 } else { lo - pad };
    lo..hi + pad
}

fn x_numeric_range(chart: &Chart) -> Range<f64> {
    let (lo, hi) = chart
        .series
        .iter()
        .flat_map(|s| &s.points)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.x), hi.max(p.x)));
    let pad = if hi > lo { (hi - lo) * 0.05 } else { hi.abs().max(1.0) * 0.05 };
    lo - pad..hi + pad
}

/// The legend's width: its longest entry, a swatch and margins.
fn legend_width(chart: &Chart) -> u32 {
    let entries = chart.series.iter().map(|s| text_px(&s.name, 12.0) + 34);
    let heading = chart.legend_title.iter().map(|t| text_px(t, 13.0) + 16);
    entries.chain(heading).max().unwrap_or(0).max(80)
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> Result<()> {
    root.fill(&WHITE).map_err(plot_error)?;
    // The legend gets a column of its own at the right, so it never covers a bar or a point.
    let (width, _) = root.dim_in_pixel();
    let (plot_area, legend_area) = root.split_horizontally(width.saturating_sub(legend_width(chart)));
    let y = y_range(chart);
    match &chart.x {
        XAxis::Categories(names) => {
            let n = names.len();
            draw_on(&plot_area, chart, Categories(names.clone()), y, n)?;
        }
        XAxis::Numeric => draw_on(&plot_area, chart, RangedCoordf64::from(x_numeric_range(chart)), y, 10)?,
    }
    draw_legend(&legend_area, chart)?;
    root.present().map_err(plot_error)
}

fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<()> {
    let left = TextStyle::from((FAMILY, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = 56;
    if let Some(title) = &chart.legend_title {
        let heading = TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(title.clone(), (4, y), heading)).map_err(plot_error)?;
        y += 22;
    }
    for (i, series) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        area.draw(&Rectangle::new([(6, y - 6), (18, y + 6)], color.filled())).map_err(plot_error)?;
        area.draw(&Text::new(series.name.clone(), (26, y), left.clone())).map_err(plot_error)?;
        y += 20;
    }
    Ok(())
}

fn draw_on<DB, X>(root: &DrawingArea<DB, Shift>, chart: &Chart, x: X, y: Range<f64>, x_ticks: usize) -> Result<()>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, (FAMILY, 18))
        .margin(16)
        .margin_right(8)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(plot_error)?;
    ctx.configure_mesh()
        .disable_x_mesh()
        .max_light_lines(1)
        .x_labels(x_ticks)
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(plot_error)?;

    let categorical = matches!(chart.x, XAxis::Categories(_));
    let count = chart.series.len() as f64;
    // Within a category, series sit side by side in 80% of its width.
    let slot = 0.8 / count;
    for (i, series) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let offset = if categorical { -0.4 + slot * (i as f64 + 0.5) } else { 0.0 };
        let at = |p: &Point| p.x + offset;
        match chart.kind {
            PlotKind::Bar => {
                let half = slot * 0.45;
                let bars = series
                    .points
                    .iter()
                    .map(|p| Rectangle::new([(at(p) - half, 0.0), (at(p) + half, p.y)], color.filled()));
                ctx.draw_series(bars).map_err(plot_error)?;
            }
            PlotKind::Line => {
                let line = LineSeries::new(series.points.iter().map(|p| (at(p), p.y)), color.stroke_width(2));
                ctx.draw_series(line).map_err(plot_error)?;
                ctx.draw_series(series.points.iter().map(|p| Circle::new((at(p), p.y), 3, color.filled())))
                    .map_err(plot_error)?;
            }
            PlotKind::Point | PlotKind::Scatter => {
                ctx.draw_series(series.points.iter().map(|p| Circle::new((at(p), p.y), 4, color.filled())))
                    .map_err(plot_error)?;
            }
        }
        let whiskers: Vec<_> = series
            .points
            .iter()
            .filter_map(|p| {
                p.whisker.map(|(lo, hi)| ErrorBar::new_vertical(at(p), lo, p.y, hi, BLACK.stroke_width(1), 8))
            })
            .collect();
        if !whiskers.is_empty() {
            ctx.draw_series(whiskers).map_err(plot_error)?;
        }
    }
    if let Some(r) = chart.reference_y {
        let range = ctx.x_range();
        ctx.draw_series(DashedLineSeries::new([(range.start, r), (range.end, r)], 6, 4, BLACK.stroke_width(1)))
            .map_err(plot_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{summarize_frame, Bootstrap, SummaryOptions};
    use crate::store::query_arrow;
    use duckdb::Connection;

    fn frame(sql: &str) -> Frame {
        let conn = Connection::open_in_memory().unwrap();
        Frame::from_query(query_arrow(&conn, sql).unwrap()).unwrap()
    }

    /// 2 models × 3 platforms × 2 precisions, three rows of five timed runs per cell, with
    /// an accuracy per cell.
    fn runs() -> Frame {
        frame(
            "SELECT m AS model_name, 'chromium' AS browser, p AS platform, prec AS precision,
                    [base * f * (1 + 0.01 * ((r * 7 + k * 3) % 5)) FOR k IN range(5)] AS latencies_ms,
                    base * f AS latency_ms,
                    1 - 0.001 * (32 / prec) - (CASE WHEN p = 'webnn' THEN 0.002 ELSE 0 END) AS accuracy_cosine,
                    NULL::VARCHAR AS error
             FROM (VALUES ('minilm-l3', 10.0), ('minilm-l6', 20.0)) AS models(m, base),
                  (VALUES ('wasm', 3.0), ('webgpu', 1.5), ('webnn', 1.0)) AS platforms(p, f),
                  (VALUES (32), (8)) AS precisions(prec),
                  range(3) AS reps(r)
             ORDER BY m, p, prec",
        )
    }

    fn summary() -> Frame {
        let opts = SummaryOptions {
            bootstrap: Bootstrap { resamples: 500, ..Bootstrap::default() },
            ..SummaryOptions::latency_grid(Some("wasm"))
        };
        summarize_frame(&runs(), &opts).unwrap()
    }

    /// Parses the SVG (so it is well-formed XML) and returns its text elements' contents.
    fn texts(plot: &Plot) -> (roxmltree::Document<'_>, Vec<String>) {
        assert_eq!(plot.mime_type(), "image/svg+xml");
        let doc = roxmltree::Document::parse(plot.svg().unwrap()).expect("well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or("").trim().to_string())
            .collect();
        (doc, texts)
    }

    fn filled(doc: &roxmltree::Document, color: RGBColor, tag: &str) -> usize {
        let hex = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
        doc.descendants()
            .filter(|n| n.has_tag_name(tag) && n.attribute("fill").is_some_and(|f| f.eq_ignore_ascii_case(&hex)))
            .count()
    }

    #[test]
    fn latency_chart_has_a_bar_and_whisker_per_cell_and_every_label() {
        let plot = latency_by_platform(&summary(), &PlotOptions::default()).unwrap();
        let (doc, texts) = texts(&plot);
        for want in [
            "Latency by platform and precision",
            "model_name · platform",
            "precision",
            "median latency (ms), 95% CI",
            "32",
            "8",
            "minilm-l3 · wasm",
            "minilm-l6 · webnn",
        ] {
            assert!(texts.iter().any(|t| t == want), "no text {want:?} in {texts:?}");
        }
        // One browser only, so it is not part of the category labels.
        assert!(!texts.iter().any(|t| t.contains("chromium")), "{texts:?}");
        // Six categories × one bar per precision (precision 32 first: first-seen order), plus
        // one legend swatch each.
        assert_eq!(filled(&doc, PALETTE[0], "rect"), 6 + 1);
        assert_eq!(filled(&doc, PALETTE[1], "rect"), 6 + 1);
        // Whiskers: each error bar is three lines (the stem and two caps).
        let lines = doc.descendants().filter(|n| n.has_tag_name("line") || n.has_tag_name("polyline")).count();
        assert!(lines >= 12 * 3, "{lines} lines for 12 whiskers");
    }

    #[test]
    fn speedup_chart_draws_the_baseline_line_and_its_bars() {
        let plot =
            speedup(&summary(), &PlotOptions { title: Some("Speedup vs wasm".into()), ..Default::default() }).unwrap();
        let (doc, texts) = texts(&plot);
        assert!(texts.iter().any(|t| t == "Speedup vs wasm"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "speedup vs baseline (×), 95% CI"), "{texts:?}");
        assert_eq!(filled(&doc, PALETTE[0], "rect") + filled(&doc, PALETTE[1], "rect"), 12 + 2);
        // The summary's speedups: wasm 1×, webgpu 2×, webnn 3×, at both sizes and precisions.
        let s = summary().f64_column("speedup").unwrap();
        for (platform, want) in [("wasm", 1.0), ("webgpu", 2.0), ("webnn", 3.0)] {
            let rows = summary().filter(&format!("platform = '{platform}'")).unwrap().f64_column("speedup").unwrap();
            assert!(rows.iter().all(|v| (v.unwrap() - want).abs() < 0.05), "{platform}: {rows:?} of {s:?}");
        }
        // Without a baseline there is nothing to draw, and the error says what is needed.
        let plain = summarize_frame(&runs(), &SummaryOptions::latency_grid(None)).unwrap();
        let err = speedup(&plain, &PlotOptions::default()).unwrap_err().to_string();
        assert!(err.contains("speedup") && err.contains("summarize_frame"), "{err}");
    }

    #[test]
    fn accuracy_scatter_colours_by_precision() {
        let plot =
            accuracy_vs_latency(&runs(), "latency_ms", "accuracy_cosine", Some("precision"), &Default::default())
                .unwrap();
        let (doc, texts) = texts(&plot);
        assert!(texts.iter().any(|t| t == "accuracy_cosine"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "latency_ms (ms)"), "{texts:?}");
        // 36 rows, 18 per precision: one circle each.
        assert_eq!(filled(&doc, PALETTE[0], "circle"), 18);
        assert_eq!(filled(&doc, PALETTE[1], "circle"), 18);
    }

    #[test]
    fn the_generic_plot_takes_any_columns_and_kinds() {
        let f = frame("SELECT range AS x, range * range AS y, CASE WHEN range % 2 = 0 THEN 'even' ELSE 'odd' END AS c FROM range(10)");
        for kind in PlotKind::NAMES {
            let spec =
                PlotSpec { color: Some("c".into()), ..PlotSpec::new("x", "y", PlotKind::from_name(kind).unwrap()) };
            let plot = plot(&f, &spec, &PlotOptions::default()).unwrap();
            let (_, texts) = texts(&plot);
            assert!(texts.iter().any(|t| t == "even") && texts.iter().any(|t| t == "odd"), "{kind}: {texts:?}");
            assert!(texts.iter().any(|t| t == "c"), "the legend's heading: {kind}: {texts:?}");
            assert!(texts.iter().any(|t| t == "y by x"), "{kind}: {texts:?}");
        }
        let bad = |spec: PlotSpec| plot(&f, &spec, &PlotOptions::default()).unwrap_err().to_string();
        assert!(bad(PlotSpec::new("x", "nope", PlotKind::Line)).contains("nope"));
        assert!(bad(PlotSpec::new("x", "c", PlotKind::Line)).contains("numbers"));
        assert!(PlotKind::from_name("pie").unwrap_err().to_string().contains("scatter"));
        let empty = f.filter("x > 100").unwrap();
        let err = plot(&empty, &PlotSpec::new("x", "y", PlotKind::Scatter), &PlotOptions::default()).unwrap_err();
        assert!(err.to_string().contains("nothing to draw"), "{err}");
        let err = plot(
            &f,
            &PlotSpec::new("x", "y", PlotKind::Scatter),
            &PlotOptions { width: Some(10), ..Default::default() },
        );
        assert!(err.unwrap_err().to_string().contains("64 to 8192"));
    }

    #[test]
    fn png_is_a_real_image_with_the_series_colours() {
        let options =
            PlotOptions { format: PlotFormat::Png, width: Some(800), height: Some(500), ..Default::default() };
        let plot = latency_by_platform(&summary(), &options).unwrap();
        assert_eq!(plot.mime_type(), "image/png");
        assert!(plot.svg().is_none());
        let decoder = png::Decoder::new(std::io::Cursor::new(&plot.bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (800, 500));
        let count = |c: RGBColor| pixels.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count();
        // Both precisions' bars are there in their colours, and text was drawn (dark pixels).
        assert!(count(PALETTE[0]) > 1000 && count(PALETTE[1]) > 1000);
        assert!(pixels.chunks(3).filter(|p| p.iter().all(|&v| v < 60)).count() > 500);
    }
}
