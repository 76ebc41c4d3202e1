//! A frame as a table people read: text for a terminal, HTML for a notebook. Values are
//! formatted by arrow-rs's display (the same text in both), except floating-point numbers,
//! which show six significant digits (31.2, not 31.200000000000003: the noise of binary
//! arithmetic is no figure); the frame itself, and anything exported from it, keeps every bit.
//! Nulls show as `null`, and long frames show their first rows with a count of the rest.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow::util::pretty::pretty_format_batches_with_options;

use crate::error::Result;

/// Rows shown before "… N more rows".
pub const MAX_ROWS: usize = 50;

fn options() -> FormatOptions<'static> {
    FormatOptions::default().with_null("null")
}

/// Six significant digits, trailing zeros dropped; exponent form outside 1e-4 .. 1e15.
pub(crate) fn float_text(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..15).contains(&magnitude) {
        return format!("{v:.5e}");
    }
    let text = format!("{:.*}", (5 - magnitude).max(0) as usize, v);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// At most `MAX_ROWS` rows of `batches` (slicing is zero-copy), floats as their display text.
fn shown(batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let mut left = MAX_ROWS;
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        out.push(for_display(&b.slice(0, take))?);
        left -= take;
    }
    Ok(out)
}

fn for_display(batch: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(field.data_type(), DataType::Float16 | DataType::Float32 | DataType::Float64) {
            let values = cast(column, &DataType::Float64)?;
            let text: StringArray =
                values.as_primitive::<arrow::datatypes::Float64Type>().iter().map(|v| v.map(float_text)).collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn footer(height: usize, width: usize) -> String {
    let more = height.saturating_sub(MAX_ROWS);
    let rows = if height == 1 { "1 row".to_string() } else { format!("{height} rows") };
    let columns = if width == 1 { "1 column".to_string() } else { format!("{width} columns") };
    if more > 0 {
        format!("{rows} × {columns} (the first {MAX_ROWS} shown; head(n), filter or to_parquet for the rest)")
    } else {
        format!("{rows} × {columns}")
    }
}

/// A short type name under each column header, as people know them from SQL.
fn type_name(dt: &DataType) -> String {
    use DataType::*;
    match dt {
        Boolean => "bool".into(),
        Int8 | Int16 | Int32 => "int".into(),
        Int64 => "bigint".into(),
        UInt8 | UInt16 | UInt32 | UInt64 => "uint".into(),
        Float16 | Float32 | Float64 => "double".into(),
        Utf8 | LargeUtf8 | Utf8View => "text".into(),
        Timestamp(..) => "timestamp".into(),
        Date32 | Date64 => "date".into(),
        List(f) | LargeList(f) => format!("{}[]", type_name(f.data_type())),
        other => other.to_string().to_lowercase(),
    }
}

pub(crate) fn text_table(schema: &SchemaRef, batches: &[RecordBatch], height: usize) -> Result<String> {
    let mut out = if schema.fields().is_empty() {
        String::new()
    } else if height == 0 {
        let header: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        format!("{}\n", header.join(" | "))
    } else {
        format!("{}\n", pretty_format_batches_with_options(&shown(batches)?, &options())?)
    };
    out.push_str(&footer(height, schema.fields().len()));
    Ok(out)
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

pub(crate) fn html_table(schema: &SchemaRef, batches: &[RecordBatch], height: usize) -> Result<String> {
    let mut out = String::from("<table class=\"webaccel-frame\">\n<thead><tr>");
    for f in schema.fields() {
        out.push_str("<th>");
        escape(f.name(), &mut out);
        out.push_str("<br><small>");
        escape(&type_name(f.data_type()), &mut out);
        out.push_str("</small></th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    let options = options();
    for batch in shown(batches)? {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push_str("<tr>");
            for (field, formatter) in schema.fields().iter().zip(&formatters) {
                // Numbers align right, as in every spreadsheet.
                let numeric = field.data_type().is_numeric();
                out.push_str(if numeric { "<td style=\"text-align:right\">" } else { "<td>" });
                escape(&formatter.value(row).to_string(), &mut out);
                out.push_str("</td>");
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</tbody>\n</table>\n<p><small>");
    escape(&footer(height, schema.fields().len()), &mut out);
    out.push_str("</small></p>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::float_text;

    #[test]
    fn floats_show_six_significant_digits() {
        for (v, want) in [
            (31.200000000000003, "31.2"),
            (0.8724029782856898, "0.872403"),
            (0.99991234, "0.999912"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (123456789.0, "123456789"),
            (0.0, "0"),
            (1.5e-7, "1.50000e-7"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(float_text(v), want, "{v}");
        }
    }
}
