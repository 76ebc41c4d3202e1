//! The kernel's side of `webaccel_cell` (the crate every Rust cell gets): a Unix socket on
//! which a cell's `sql(query)` runs on the results database this kernel holds open (DuckDB
//! locks its file per process, so the cell could not open it) and `var(name)` reads a Rhai
//! variable. The wire is the crate's (`rust-cells/webaccel_cell/src/lib.rs`): one request per
//! connection, answered `ok\n` and length-prefixed fields, or `err\n` and a message.

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::evaluator::Evaluator;

/// A request larger than this is refused (a query is text; this bounds a confused client).
/// webaccel_cell checks it too, before it sends.
const MAX_REQUEST: u64 = 1 << 20;

/// Listens at `path` (replacing a stale socket) and answers on a task of its own.
pub fn listen(path: &Path, evaluator: Arc<Evaluator>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, evaluator.clone()));
                }
                // Out of descriptors, say: this connection is lost, the next may not be, and
                // the socket must outlive the moment for the rest of the session.
                Err(e) => {
                    tracing::warn!("the Rust cells' bridge could not accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

async fn answer(mut stream: UnixStream, evaluator: Arc<Evaluator>) {
    let mut request = Vec::new();
    let read = (&mut stream).take(MAX_REQUEST + 1).read_to_end(&mut request).await;
    let reply = match read {
        Err(e) => failure(&format!("cannot read the request: {e}")),
        Ok(_) if request.len() as u64 > MAX_REQUEST => failure("the request is over 1 MiB"),
        Ok(_) => match String::from_utf8(request) {
            Err(_) => failure("the request is not UTF-8"),
            Ok(text) => match text.split_once('\n') {
                Some(("sql", query)) => {
                    let (query, services) = (query.to_string(), evaluator.services.clone());
                    // DuckDB blocks; the query may wait for the store's lock too.
                    match tokio::task::spawn_blocking(move || services.query(&query)).await {
                        Ok(Ok(frame)) => match frame.text_rows() {
                            Ok((names, types, rows)) => table(&names, &types, &rows),
                            Err(e) => failure(&e.to_string()),
                        },
                        Ok(Err(e)) => failure(&e.to_string()),
                        Err(e) => failure(&format!("the query stopped: {e}")),
                    }
                }
                Some(("var", name)) => {
                    let mut reply = b"ok\n".to_vec();
                    field(&mut reply, evaluator.view().variable_json(name).as_deref());
                    reply
                }
                _ => failure("unknown request: webaccel_cell sends `sql` or `var`"),
            },
        },
    };
    if let Err(e) = stream.write_all(&reply).await {
        tracing::debug!("a Rust cell left before its answer: {e}");
    }
}

fn failure(message: &str) -> Vec<u8> {
    format!("err\n{message}").into_bytes()
}

fn field(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.push(b'~'),
        Some(text) => {
            out.extend_from_slice(format!("{}:", text.len()).as_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }
}

fn table(names: &[String], types: &[String], rows: &[Vec<Option<String>>]) -> Vec<u8> {
    let mut out = b"ok\n".to_vec();
    field(&mut out, Some(&names.len().to_string()));
    for text in names.iter().chain(types) {
        field(&mut out, Some(text));
    }
    field(&mut out, Some(&rows.len().to_string()));
    for value in rows.iter().flatten() {
        field(&mut out, value.as_deref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_counts_names_types_then_values_row_by_row() {
        let rows = vec![vec![Some("a:b".to_string()), None]];
        let wire = table(&["x".into(), "y".into()], &["Utf8".into(), "Int64".into()], &rows);
        assert_eq!(String::from_utf8(wire).unwrap(), "ok\n1:21:x1:y4:Utf85:Int641:13:a:b~");
    }
}
