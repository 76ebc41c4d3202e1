//! Frames and plots as script values: `sql(...)` and `compare(...)` return a `Frame` (a Polars
//! DataFrame from the results crate), `plot(frame, #{...})` returns a `Plot`. In a notebook a
//! Frame shows as an HTML table (with its plots, for a `compare` summary) and a Plot as SVG or
//! PNG; in a terminal a Frame is a text table.

use std::path::Path;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt32Type, UInt64Type,
};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};
use webaccel_results::{plot, ExportFormat, Frame, Plot, PlotFormat, PlotKind, PlotOptions, PlotSpec};

use crate::error::ApiError;
use crate::options::OptionValue;
use crate::services::Services;

/// A frame as scripts hold it; cheap to clone (Rhai clones values freely).
#[derive(Debug, Clone)]
pub struct FrameValue {
    pub frame: Arc<Frame>,
    /// What a notebook shows of it, when that is less than the whole (a `compare` summary's
    /// leading columns); `columns`, `rows()` and every method see the whole frame.
    pub view: Option<Arc<Frame>>,
    /// Drawn with the frame (a `compare` summary's default plots).
    pub plots: Vec<Plot>,
    /// The `compare` this summarises, if any.
    pub experiment_id: Option<String>,
    /// For a `compare` summary: the grid's wall time, and the sum of its cells' own times (the
    /// two differ when cells on different machines ran at once).
    pub times: Option<(f64, f64)>,
}

impl FrameValue {
    fn derived(&self, frame: Frame) -> FrameValue {
        FrameValue { frame: Arc::new(frame), view: None, plots: vec![], experiment_id: None, times: None }
    }
}

type Rhai<T> = Result<T, Box<EvalAltResult>>;

fn err(e: impl Into<ApiError>) -> Box<EvalAltResult> {
    e.into().into()
}

/// Rows as maps of plain values, for scripts that read numbers out of a frame.
pub fn rows(frame: &Frame) -> Result<Array, ApiError> {
    let table = frame.to_arrow()?;
    let mut out = Array::new();
    for batch in &table.batches {
        let schema = batch.schema();
        let columns: Vec<Vec<Dynamic>> = batch.columns().iter().map(|c| values(c.as_ref())).collect();
        for row in 0..batch.num_rows() {
            let mut map = Map::new();
            for (field, column) in schema.fields().iter().zip(&columns) {
                map.insert(field.name().as_str().into(), column[row].clone());
            }
            out.push(Dynamic::from_map(map));
        }
    }
    Ok(out)
}

/// One column as script values; nulls are `()`. Types without a natural script value are
/// shown as their text.
fn values(array: &dyn arrow::array::Array) -> Vec<Dynamic> {
    let n = array.len();
    let pick =
        |f: &dyn Fn(usize) -> Dynamic| (0..n).map(|i| if array.is_null(i) { Dynamic::UNIT } else { f(i) }).collect();
    match array.data_type() {
        DataType::Boolean => pick(&|i| Dynamic::from_bool(array.as_boolean().value(i))),
        DataType::Int8 => pick(&|i| Dynamic::from_int(array.as_primitive::<Int8Type>().value(i) as i64)),
        DataType::Int16 => pick(&|i| Dynamic::from_int(array.as_primitive::<Int16Type>().value(i) as i64)),
        DataType::Int32 => pick(&|i| Dynamic::from_int(array.as_primitive::<Int32Type>().value(i) as i64)),
        DataType::Int64 => pick(&|i| Dynamic::from_int(array.as_primitive::<Int64Type>().value(i))),
        DataType::UInt32 => pick(&|i| Dynamic::from_int(array.as_primitive::<UInt32Type>().value(i) as i64)),
        DataType::UInt64 => pick(&|i| Dynamic::from_int(array.as_primitive::<UInt64Type>().value(i) as i64)),
        DataType::Float32 => pick(&|i| Dynamic::from_float(array.as_primitive::<Float32Type>().value(i) as f64)),
        DataType::Float64 => pick(&|i| Dynamic::from_float(array.as_primitive::<Float64Type>().value(i))),
        DataType::Utf8 => pick(&|i| array.as_string::<i32>().value(i).into()),
        DataType::LargeUtf8 => pick(&|i| array.as_string::<i64>().value(i).into()),
        DataType::Utf8View => pick(&|i| array.as_string_view().value(i).into()),
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            pick(&|i| Dynamic::from_array(values(list.value(i).as_ref())))
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            pick(&|i| Dynamic::from_array(values(list.value(i).as_ref())))
        }
        _ => {
            let formatter = arrow::util::display::ArrayFormatter::try_new(array, &Default::default());
            match formatter {
                Ok(f) => pick(&|i| f.value(i).to_string().into()),
                Err(_) => vec![Dynamic::UNIT; n],
            }
        }
    }
}

/// `plot(frame, #{x, y, color, kind, y_low, y_high, title, format, width, height})`.
pub fn plot_frame(frame: &FrameValue, options: &Map) -> Result<Plot, ApiError> {
    const FUNCTION: &str = "plot";
    const KEYS: [&str; 10] = ["x", "y", "color", "kind", "y_low", "y_high", "title", "format", "width", "height"];
    let mut spec = PlotSpec::new("", "", PlotKind::Point);
    let mut opts = PlotOptions::default();
    for (key, value) in options {
        let opt = OptionValue { function: FUNCTION, key, value };
        match key.as_str() {
            "x" => spec.x = opt.string()?,
            "y" => spec.y = opt.string()?,
            "color" => spec.color = Some(opt.string()?),
            "y_low" => spec.y_low = Some(opt.string()?),
            "y_high" => spec.y_high = Some(opt.string()?),
            "kind" => spec.kind = PlotKind::from_name(&opt.string()?)?,
            "title" => opts.title = Some(opt.string()?),
            "format" => {
                opts.format = match opt.string()?.as_str() {
                    "svg" => PlotFormat::Svg,
                    "png" => PlotFormat::Png,
                    other => return Err(opt.bad(format!("must be \"svg\" or \"png\", not \"{other}\""))),
                }
            }
            "width" => opts.width = Some(opt.count(100, 10_000)?),
            "height" => opts.height = Some(opt.count(100, 10_000)?),
            other => {
                return Err(ApiError::UnknownOption {
                    function: FUNCTION,
                    key: other.to_string(),
                    valid: KEYS.join(", "),
                })
            }
        }
    }
    for (key, value) in [("x", &spec.x), ("y", &spec.y)] {
        if value.is_empty() {
            return Err(ApiError::BadOption {
                function: FUNCTION,
                key: key.into(),
                problem: format!("is required; the frame's columns are {}", frame.frame.column_names().join(", ")),
            });
        }
    }
    Ok(plot::plot(&frame.frame, &spec, &opts)?)
}

pub fn register(engine: &mut Engine, services: Arc<Services>) {
    let s = services.clone();
    engine.register_fn("sql", move |query: &str| -> Rhai<FrameValue> {
        let frame = s.query(query).map_err(err)?;
        Ok(FrameValue { frame: Arc::new(frame), view: None, plots: vec![], experiment_id: None, times: None })
    });
    let s = services.clone();
    engine.register_fn("compare", move |options: Map| -> Rhai<FrameValue> {
        crate::compare::compare(&s, &options).map_err(err)
    });
    engine.register_fn("plot", |frame: &mut FrameValue, options: Map| -> Rhai<Plot> {
        plot_frame(frame, &options).map_err(err)
    });

    engine
        .register_type_with_name::<FrameValue>("Frame")
        .register_fn("head", |f: &mut FrameValue, n: i64| f.derived(f.frame.head(n.max(0) as usize)))
        .register_fn("head", |f: &mut FrameValue| f.derived(f.frame.head(10)))
        .register_fn("sort", |f: &mut FrameValue, column: &str| -> Rhai<FrameValue> {
            Ok(f.derived(f.frame.sort(column, false).map_err(err)?))
        })
        .register_fn("sort", |f: &mut FrameValue, column: &str, descending: bool| -> Rhai<FrameValue> {
            Ok(f.derived(f.frame.sort(column, descending).map_err(err)?))
        })
        .register_fn("select", |f: &mut FrameValue, columns: Array| -> Rhai<FrameValue> {
            let opt = OptionValue { function: "select", key: "columns", value: &Dynamic::from_array(columns) };
            let columns = opt.strings("must be an array of column names", "column names").map_err(err)?;
            Ok(f.derived(f.frame.select(&columns).map_err(err)?))
        })
        .register_fn("filter", |f: &mut FrameValue, condition: &str| -> Rhai<FrameValue> {
            Ok(f.derived(f.frame.filter(condition).map_err(err)?))
        })
        .register_fn("sql", |f: &mut FrameValue, query: &str| -> Rhai<FrameValue> {
            Ok(f.derived(f.frame.sql(query).map_err(err)?))
        })
        .register_fn("describe", |f: &mut FrameValue| -> Rhai<FrameValue> {
            Ok(f.derived(f.frame.describe().map_err(err)?))
        })
        .register_fn("to_parquet", |f: &mut FrameValue, path: &str| -> Rhai<i64> {
            Ok(f.frame.to_parquet(Path::new(path)).map_err(err)? as i64)
        })
        .register_fn("export", |f: &mut FrameValue, path: &str, format: &str| -> Rhai<i64> {
            let format = ExportFormat::from_name(format).map_err(err)?;
            Ok(f.frame.export(Path::new(path), format).map_err(err)? as i64)
        })
        .register_fn("rows", |f: &mut FrameValue| -> Rhai<Array> { rows(&f.frame).map_err(err) })
        .register_get("height", |f: &mut FrameValue| f.frame.height() as i64)
        .register_fn("len", |f: &mut FrameValue| f.frame.height() as i64)
        .register_get("columns", |f: &mut FrameValue| {
            f.frame.column_names().into_iter().map(Dynamic::from).collect::<Array>()
        })
        .register_get("plots", |f: &mut FrameValue| f.plots.iter().cloned().map(Dynamic::from).collect::<Array>())
        .register_get("wall_ms", |f: &mut FrameValue| f.times.map_or(Dynamic::UNIT, |t| Dynamic::from_float(t.0)))
        .register_get("cells_ms", |f: &mut FrameValue| f.times.map_or(Dynamic::UNIT, |t| Dynamic::from_float(t.1)))
        .register_get("experiment_id", |f: &mut FrameValue| {
            f.experiment_id.clone().map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_fn("to_string", |f: &mut FrameValue| crate::display::frame_text(f))
        .register_fn("to_debug", |f: &mut FrameValue| crate::display::frame_text(f));

    engine
        .register_type_with_name::<Plot>("Plot")
        .register_fn("save", |p: &mut Plot, path: &str| -> Rhai<()> { p.save(Path::new(path)).map_err(err) })
        .register_fn("to_svg", |p: &mut Plot| p.svg().map_or(Dynamic::UNIT, |s| s.to_string().into()))
        .register_get("width", |p: &mut Plot| p.width as i64)
        .register_get("height", |p: &mut Plot| p.height as i64)
        .register_fn("to_string", |p: &mut Plot| plot_text(p))
        .register_fn("to_debug", |p: &mut Plot| plot_text(p));
}

pub fn plot_text(p: &Plot) -> String {
    format!("<plot {}×{} {}; .save(path) writes it>", p.width, p.height, p.mime_type())
}
