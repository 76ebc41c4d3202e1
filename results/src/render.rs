//! A frame as a table people read: text for a terminal, HTML for a notebook. Values are
//! formatted by arrow-rs's display (the same text in both), nulls show as `null`, and long
//! frames show their first rows with a count of the rest.

use std::fmt::Write;

use arrow::array::Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow::util::pretty::pretty_format_batches_with_options;

use crate::error::Result;

/// Rows shown before "… N more rows".
pub const MAX_ROWS: usize = 50;

fn options() -> FormatOptions<'static> {
    FormatOptions::default().with_null("null")
}

/// At most `MAX_ROWS` rows of `batches` (slicing is zero-copy).
fn shown(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    let mut left = MAX_ROWS;
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        out.push(b.slice(0, take));
        left -= take;
    }
    out
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
        format!("{}\n", pretty_format_batches_with_options(&shown(batches), &options())?)
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
    for batch in shown(batches) {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push_str("<tr>");
            for (column, formatter) in batch.columns().iter().zip(&formatters) {
                // Numbers align right, as in every spreadsheet.
                let numeric = column.data_type().is_numeric();
                out.push_str(if numeric { "<td style=\"text-align:right\">" } else { "<td>" });
                escape(&formatter.value(row).to_string(), &mut out);
                out.push_str("</td>");
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</tbody>\n</table>\n<p><small>");
    escape(&footer(height, schema.fields().len()), &mut out);
    let _ = write!(out, "</small></p>\n");
    Ok(out)
}
