//! The bridge from a `%%rust` cell to the webaccel kernel it runs under. `sql` runs a read
//! query on the results database the kernel holds open (DuckDB locks its file per process, so a
//! cell cannot open it itself), and `var` reads a Rhai variable. Both ask the kernel over the
//! Unix socket named in `WEBACCEL_CELL_SOCKET`.
//!
//! The wire, one request per connection: the cell sends `sql\n<query>` or `var\n<name>` and
//! closes its writing half; the kernel answers `err\n<message>`, or `ok\n` and fields. A field
//! is `<length in bytes>:<bytes>`, or `~` for null. `sql`'s fields: the column count, the
//! names, the types, the row count, then the values row by row in text form; `var`'s: one
//! field, the JSON (or `~` when there is no such variable).

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// Why a request to the kernel failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Not running under a webaccel kernel (no socket in the environment), or it went away.
    NoKernel(String),
    /// The kernel refused or failed the request (for `sql`: DuckDB's error, or the read-only rule).
    Kernel(String),
    /// A column that the table does not have.
    NoColumn { column: String, columns: Vec<String> },
    /// A value that is not a number where `f64s` wanted one.
    NotNumber { column: String, row: usize, value: String },
    /// The kernel's answer did not follow the wire format (a bug).
    Garbled(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoKernel(why) => write!(f, "cannot reach the webaccel kernel: {why}"),
            Error::Kernel(message) => write!(f, "{message}"),
            Error::NoColumn { column, columns } => {
                write!(f, "no column '{column}'; the table's columns are {}", columns.join(", "))
            }
            Error::NotNumber { column, row, value } => {
                write!(f, "column '{column}' row {row} is '{value}', not a number")
            }
            Error::Garbled(why) => write!(f, "the kernel's answer is garbled ({why}); please report it"),
        }
    }
}

impl std::error::Error for Error {}

/// A query's result: column names and types, and every value in text form (None for null).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    columns: Vec<String>,
    types: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

impl Table {
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The DuckDB/Arrow type of each column, in column order.
    pub fn types(&self) -> &[String] {
        &self.types
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value at `row` in `column` (text form); None for null, a missing row or column.
    pub fn value(&self, row: usize, column: &str) -> Option<&str> {
        let index = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row)?.get(index)?.as_deref()
    }

    /// A column's values as numbers (None for null).
    pub fn f64s(&self, column: &str) -> Result<Vec<Option<f64>>, Error> {
        let index = self.index(column)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(row, values)| match &values[index] {
                None => Ok(None),
                Some(text) => text.parse::<f64>().map(Some).map_err(|_| Error::NotNumber {
                    column: column.to_string(),
                    row,
                    value: text.clone(),
                }),
            })
            .collect()
    }

    /// A column's values as text (None for null).
    pub fn strings(&self, column: &str) -> Result<Vec<Option<String>>, Error> {
        let index = self.index(column)?;
        Ok(self.rows.iter().map(|values| values[index].clone()).collect())
    }

    fn index(&self, column: &str) -> Result<usize, Error> {
        self.columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| Error::NoColumn { column: column.to_string(), columns: self.columns.clone() })
    }

    /// The table as HTML (values escaped; null shown as an empty, grey cell).
    pub fn to_html(&self) -> String {
        let mut html = String::from("<table class=\"webaccel-cell\"><thead><tr>");
        for column in &self.columns {
            html.push_str(&format!("<th>{}</th>", escape(column)));
        }
        html.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            html.push_str("<tr>");
            for value in row {
                match value {
                    Some(text) => html.push_str(&format!("<td>{}</td>", escape(text))),
                    None => html.push_str("<td style=\"color:#999\">null</td>"),
                }
            }
            html.push_str("</tr>");
        }
        html.push_str(&format!("</tbody></table><p>{} rows × {} columns</p>", self.len(), self.columns.len()));
        html
    }

    /// How evcxr shows a value: each MIME type between its markers on stdout.
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/plain\n{self}\nEVCXR_END_CONTENT");
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", self.to_html());
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.columns.join("\t"))?;
        for row in &self.rows {
            let cells: Vec<&str> = row.iter().map(|v| v.as_deref().unwrap_or("null")).collect();
            writeln!(f, "{}", cells.join("\t"))?;
        }
        write!(f, "({} rows)", self.len())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Runs one read statement (SELECT, WITH, DESCRIBE, ...) on the kernel's results database
/// (tables `runs`, `environments`, `experiments`), under the same read-only rule as Rhai's `sql()`.
pub fn sql(query: &str) -> Result<Table, Error> {
    let answer = ask("sql", query)?;
    let mut fields = Fields { rest: &answer };
    let count = |fields: &mut Fields, what: &str| -> Result<usize, Error> {
        let text = fields.next()?.ok_or_else(|| Error::Garbled(format!("null {what}")))?;
        text.parse().map_err(|_| Error::Garbled(format!("{what} '{text}'")))
    };
    let width = count(&mut fields, "column count")?;
    let names = |fields: &mut Fields| -> Result<Vec<String>, Error> {
        (0..width).map(|_| fields.next()?.ok_or_else(|| Error::Garbled("a null name".into()))).collect()
    };
    let columns = names(&mut fields)?;
    let types = names(&mut fields)?;
    let height = count(&mut fields, "row count")?;
    let rows = (0..height)
        .map(|_| (0..width).map(|_| fields.next()).collect::<Result<Vec<_>, _>>())
        .collect::<Result<Vec<_>, _>>()?;
    if !fields.rest.is_empty() {
        return Err(Error::Garbled(format!("{} bytes after the last row", fields.rest.len())));
    }
    Ok(Table { columns, types, rows })
}

/// A Rhai variable of the notebook's session, as JSON (a value that has no JSON form, such as
/// a frame, as its text); None when no such variable exists.
pub fn var(name: &str) -> Result<Option<String>, Error> {
    let answer = ask("var", name)?;
    Fields { rest: &answer }.next()
}

/// The kernel reads no more than this of a request (`MAX_REQUEST` in `kernel/src/cell_bridge.rs`).
const MAX_REQUEST: usize = 1 << 20;

fn ask(op: &str, argument: &str) -> Result<Vec<u8>, Error> {
    let request = format!("{op}\n{argument}");
    // Said here: the kernel would stop reading, and the write would fail as a broken pipe.
    if request.len() > MAX_REQUEST {
        return Err(Error::Kernel(format!("the {op} request is {} bytes; the kernel takes up to 1 MiB", request.len())));
    }
    let path = std::env::var("WEBACCEL_CELL_SOCKET")
        .map_err(|_| Error::NoKernel("WEBACCEL_CELL_SOCKET is not set (run this in a webaccel %%rust cell)".into()))?;
    let io = |e: std::io::Error| Error::NoKernel(format!("{path}: {e}"));
    let mut stream = UnixStream::connect(&path).map_err(io)?;
    stream.write_all(request.as_bytes()).map_err(io)?;
    stream.shutdown(std::net::Shutdown::Write).map_err(io)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(io)?;
    if let Some(message) = answer.strip_prefix(b"err\n") {
        return Err(Error::Kernel(String::from_utf8_lossy(message).into_owned()));
    }
    match answer.strip_prefix(b"ok\n") {
        Some(fields) => Ok(fields.to_vec()),
        None => Err(Error::Garbled("no status line".into())),
    }
}

/// Reads the wire's fields in order.
struct Fields<'a> {
    rest: &'a [u8],
}

impl Fields<'_> {
    fn next(&mut self) -> Result<Option<String>, Error> {
        if let Some(rest) = self.rest.strip_prefix(b"~") {
            self.rest = rest;
            return Ok(None);
        }
        let colon = self
            .rest
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| Error::Garbled("a field without a length".into()))?;
        let length: usize = std::str::from_utf8(&self.rest[..colon])
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::Garbled("a field's length is not a number".into()))?;
        let body =
            self.rest.get(colon + 1..colon + 1 + length).ok_or_else(|| Error::Garbled("a field cut short".into()))?;
        self.rest = &self.rest[colon + 1 + length..];
        String::from_utf8(body.to_vec()).map(Some).map_err(|_| Error::Garbled("a field is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: Option<&str>) -> String {
        text.map_or("~".into(), |t| format!("{}:{t}", t.len()))
    }

    #[test]
    fn fields_read_back_with_nulls_colons_and_multibyte_text() {
        let wire: String = [Some("2"), Some("a:b"), None, Some("µs"), Some("")].iter().map(|f| field(*f)).collect();
        let mut fields = Fields { rest: wire.as_bytes() };
        let got: Vec<_> = (0..5).map(|_| fields.next().unwrap()).collect();
        assert_eq!(got, vec![Some("2".into()), Some("a:b".into()), None, Some("µs".into()), Some("".into())]);
        assert!(fields.rest.is_empty());
        assert!(matches!(Fields { rest: b"9:short" }.next(), Err(Error::Garbled(_))));
    }

    #[test]
    fn a_table_answers_by_column_name_and_refuses_unknown_columns() {
        let table = Table {
            columns: vec!["platform".into(), "ms".into()],
            types: vec!["Utf8".into(), "Float64".into()],
            rows: vec![vec![Some("wasm".into()), Some("2.5".into())], vec![Some("<b>".into()), None]],
        };
        assert_eq!(table.value(0, "ms"), Some("2.5"));
        assert_eq!(table.value(1, "ms"), None);
        assert_eq!(table.f64s("ms").unwrap(), vec![Some(2.5), None]);
        assert_eq!(table.strings("platform").unwrap()[1].as_deref(), Some("<b>"));
        assert!(table.to_html().contains("&lt;b&gt;"));
        let Err(Error::NoColumn { columns, .. }) = table.f64s("latency") else { panic!("an unknown column") };
        assert_eq!(columns, vec!["platform", "ms"]);
        assert!(matches!(table.f64s("platform"), Err(Error::NotNumber { row: 0, .. })));
    }

    #[test]
    fn outside_a_kernel_the_error_says_where_to_run_it() {
        std::env::remove_var("WEBACCEL_CELL_SOCKET");
        let error = sql("select 1").unwrap_err();
        assert!(error.to_string().contains("%%rust cell"), "{error}");
    }
}
