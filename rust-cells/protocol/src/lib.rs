//! The helper's stdin carries [`Request`]s and its stdout [`Event`]s, one JSON object per
//! line. A request is answered by events in order: an execution by any number of `Stdout` and
//! `Stderr` events, then one `Done` or `Failed`; a completion by `Completions`; an inspection by
//! `Inspection`. The helper announces itself with one `Ready` (or a `Failed` and exit) before
//! it reads anything.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

/// Set in the helper's environment: the directory of the `webaccel_cell` crate it adds to every
/// session as a path dependency.
pub const CELL_CRATE_ENV: &str = "WEBACCEL_CELL_CRATE";
/// Set in the helper's (and so the evcxr child's) environment: the Unix socket on which the
/// kernel answers `webaccel_cell::sql` and `webaccel_cell::var`.
pub const CELL_SOCKET_ENV: &str = "WEBACCEL_CELL_SOCKET";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A cell's code, without its `%%rust` line.
    Execute {
        code: String,
    },
    /// `position` is a byte offset into `code`.
    Complete {
        code: String,
        position: usize,
    },
    Inspect {
        code: String,
        position: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Started, with the bridge crate compiled into the session. `completion` says whether
    /// evcxr can complete and inspect here (it needs the toolchain's `rust-src`).
    Ready {
        completion: bool,
    },
    Stdout {
        text: String,
    },
    Stderr {
        text: String,
    },
    /// The cell ran. `bundle` maps MIME types to content (evcxr's, as evcxr_jupyter sends it):
    /// empty when the cell's last expression had no value.
    Done {
        bundle: BTreeMap<String, String>,
    },
    /// The cell (or the helper's start) failed: `traceback` is evcxr's report, lines of text.
    Failed {
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    },
    /// Byte offsets into the request's code.
    Completions {
        start: usize,
        end: usize,
        matches: Vec<String>,
    },
    Inspection {
        text: Option<String>,
    },
}

/// Writes one message as one line and flushes it (the reader waits for whole lines).
pub fn send<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Reads the next message; None at the end of the stream.
pub fn receive<T: for<'de> Deserialize<'de>>(input: &mut impl BufRead) -> io::Result<Option<T>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_a_line_each_in_order() {
        let events = vec![
            Event::Stdout { text: "a line\nwith a newline inside".into() },
            Event::Done { bundle: BTreeMap::from([("text/plain".into(), "42".into())]) },
        ];
        let mut wire = Vec::new();
        for event in &events {
            send(&mut wire, event).unwrap();
        }
        assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 2, "one line per message");
        let mut input = io::Cursor::new(wire);
        let mut got = Vec::new();
        while let Some(event) = receive::<Event>(&mut input).unwrap() {
            got.push(event);
        }
        assert_eq!(got, events);
    }

    #[test]
    fn a_request_is_tagged_by_its_op() {
        let json = serde_json::to_string(&Request::Execute { code: "1".into() }).unwrap();
        assert_eq!(json, r#"{"op":"execute","code":"1"}"#);
        let bad = receive::<Request>(&mut io::Cursor::new(b"{\"op\":\"fly\"}\n".to_vec()));
        assert_eq!(bad.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
