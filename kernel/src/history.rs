//! The cells kernels have run, for Jupyter's `history_request` (a console's up-arrow, `%history`
//! in a notebook front end). Kept across kernel restarts, as IPython keeps its own: each cell is
//! appended as a JSON line to a file in the user's data directory (`WEBACCEL_HISTORY` names
//! another), and each kernel is a new session numbered after the ones in the file. The file is
//! bounded: past `MAX_CELLS * 2` lines a kernel starting rewrites it with the last `MAX_CELLS`.

use std::io::Write;
use std::path::{Path, PathBuf};

use jupyter_protocol::{HistoryEntry, HistoryRequest};
use serde::{Deserialize, Serialize};

/// How many cells are kept (in memory, and in the file after it is compacted).
const MAX_CELLS: usize = 10_000;
/// A result's text is kept up to this many characters (a table's plain text can be long).
const MAX_OUTPUT_CHARS: usize = 4_000;

/// Where the history lives: `WEBACCEL_HISTORY`, else `<data dir>/webaccel/history.jsonl`.
pub fn default_path() -> Option<PathBuf> {
    match std::env::var_os("WEBACCEL_HISTORY") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => dirs::data_dir().map(|d| d.join("webaccel").join("history.jsonl")),
    }
}

#[derive(Default)]
pub struct History {
    cells: Vec<Cell>,
    /// This kernel's session number.
    session: usize,
    file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cell {
    session: usize,
    line: usize,
    input: String,
    /// The result's plain text, when the cell had one.
    output: Option<String>,
}

impl History {
    /// The history in `file` (none yet when it does not exist), and a new session after its
    /// last. A file that cannot be read leaves an empty history, and this kernel still records.
    pub fn open(file: Option<PathBuf>) -> Self {
        let mut cells = Vec::new();
        let mut lines = 0;
        if let Some(text) = file.as_deref().and_then(|f| std::fs::read_to_string(f).ok()) {
            for line in text.lines() {
                lines += 1;
                // A torn last line (a kernel killed mid-write) is skipped.
                if let Ok(cell) = serde_json::from_str::<Cell>(line) {
                    cells.push(cell);
                }
            }
        }
        let skip = cells.len().saturating_sub(MAX_CELLS);
        cells.drain(..skip);
        let session = cells.iter().map(|c| c.session).max().unwrap_or(0) + 1;
        if let Some(file) = file.as_deref().filter(|_| lines > 2 * MAX_CELLS) {
            if let Err(e) = rewrite(file, &cells) {
                tracing::warn!("cannot compact the history file {}: {e}", file.display());
            }
        }
        History { cells, session, file }
    }

    /// Records a cell stored under execution count `line`, and appends it to the file.
    pub fn record(&mut self, line: usize, input: &str, output: Option<String>) {
        let output = output.map(|o| o.chars().take(MAX_OUTPUT_CHARS).collect());
        let cell = Cell { session: self.session, line, input: input.to_string(), output };
        if let Some(file) = &self.file {
            if let Err(e) = append(file, &cell) {
                tracing::warn!("cannot append to the history file {}: {e}", file.display());
            }
        }
        self.cells.push(cell);
        if self.cells.len() > MAX_CELLS {
            self.cells.remove(0);
        }
    }

    pub fn answer(&self, request: &HistoryRequest) -> Vec<HistoryEntry> {
        let (chosen, output): (Vec<&Cell>, bool) = match request {
            HistoryRequest::Tail { n, output, .. } => (last(self.cells.iter().collect(), *n), *output),
            HistoryRequest::Range { session, start, stop, output, .. } => {
                // 0 (or none) is this kernel's session, a negative one counts back from it.
                let wanted = match session.unwrap_or(0) {
                    0 => self.session as i64,
                    s if s < 0 => self.session as i64 + s as i64,
                    s => s as i64,
                };
                let (start, stop) = (*start as i64, *stop as i64);
                let cells = self
                    .cells
                    .iter()
                    .filter(|c| c.session as i64 == wanted)
                    .filter(|c| c.line as i64 >= start && (stop <= start || (c.line as i64) < stop))
                    .collect();
                (cells, *output)
            }
            HistoryRequest::Search { pattern, unique, n, output, .. } => {
                let mut cells: Vec<&Cell> = self.cells.iter().filter(|c| glob(pattern, &c.input)).collect();
                if *unique {
                    // The latest run of each input, in the order of those latest runs.
                    let mut seen = std::collections::HashSet::new();
                    cells.reverse();
                    cells.retain(|c| seen.insert(c.input.as_str()));
                    cells.reverse();
                }
                (last(cells, *n), *output)
            }
        };
        chosen
            .into_iter()
            .map(|c| match output {
                false => HistoryEntry::Input(c.session, c.line, c.input.clone()),
                true => HistoryEntry::InputOutput(
                    c.session,
                    c.line,
                    (c.input.clone(), c.output.clone().unwrap_or_default()),
                ),
            })
            .collect()
    }
}

fn append(file: &Path, cell: &Cell) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_string(cell)?;
    line.push('\n');
    // One write per line, in append mode, so two kernels writing at once do not interleave.
    std::fs::OpenOptions::new().create(true).append(true).open(file)?.write_all(line.as_bytes())
}

/// Writes `cells` beside `file` and renames it over, so a crash leaves the old file or the new.
fn rewrite(file: &Path, cells: &[Cell]) -> std::io::Result<()> {
    let temp = file.with_extension("jsonl.tmp");
    let mut text = String::new();
    for cell in cells {
        text += &serde_json::to_string(cell)?;
        text.push('\n');
    }
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, file)
}

/// The last `n` of `cells`; all of them when `n` is not positive.
fn last(cells: Vec<&Cell>, n: i32) -> Vec<&Cell> {
    let keep = if n > 0 { n as usize } else { cells.len() };
    let skip = cells.len().saturating_sub(keep);
    cells.into_iter().skip(skip).collect()
}

/// IPython's history search pattern: `*` any run of characters, `?` any one character, the
/// whole input matched.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Backtracking over the last `*`: linear in practice for history-sized inputs.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        // `*` first: a literal `*` in the input is matched by the wildcard, never as itself.
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> History {
        let mut h = History::open(None);
        h.record(1, "6 * 7", Some("42".into()));
        h.record(2, "let r = accelerate(\"minilm\", \"hi\");", None);
        h.record(3, "6 * 7", Some("42".into()));
        h
    }

    fn lines(entries: Vec<HistoryEntry>) -> Vec<(usize, usize)> {
        entries
            .into_iter()
            .map(|e| match e {
                HistoryEntry::Input(session, line, _) | HistoryEntry::InputOutput(session, line, _) => (session, line),
            })
            .collect()
    }

    fn search(pattern: &str, unique: bool) -> HistoryRequest {
        HistoryRequest::Search { pattern: pattern.into(), unique, output: false, raw: true, n: 0 }
    }

    #[test]
    fn tail_range_and_search() {
        let h = history();
        assert_eq!(lines(h.answer(&HistoryRequest::Tail { n: 2, output: false, raw: true })), [(1, 2), (1, 3)]);
        let range = HistoryRequest::Range { session: Some(1), start: 2, stop: 3, output: false, raw: true };
        assert_eq!(lines(h.answer(&range)), [(1, 2)]);
        let earlier = HistoryRequest::Range { session: Some(-1), start: 1, stop: 3, output: false, raw: true };
        assert!(h.answer(&earlier).is_empty());
        assert_eq!(lines(h.answer(&search("6*", false))), [(1, 1), (1, 3)]);
        assert_eq!(lines(h.answer(&search("6*", true))), [(1, 3)]);
        assert_eq!(lines(h.answer(&search("*accelerate(?minilm*", false))), [(1, 2)]);
        assert!(h.answer(&search("7", false)).is_empty());
        // The pattern's `*` is a wildcard even where the input has a `*` of its own.
        assert_eq!(lines(h.answer(&search("6 *", true))), [(1, 3)]);
        match &h.answer(&HistoryRequest::Tail { n: 1, output: true, raw: true })[0] {
            HistoryEntry::InputOutput(1, 3, (input, output)) => {
                assert_eq!((input.as_str(), output.as_str()), ("6 * 7", "42"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_new_kernel_reads_the_last_ones_history_as_an_earlier_session() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history.jsonl");
        let mut first = History::open(Some(file.clone()));
        first.record(1, "let kept = 1;", None);
        first.record(2, "kept + 1", Some("2".into()));
        // A kernel killed mid-write leaves a torn line; it is skipped.
        append(&file, &Cell { session: 1, line: 3, input: "x".into(), output: None }).unwrap();
        std::fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(b"{\"session\": 1, \"li").unwrap();

        let mut second = History::open(Some(file.clone()));
        second.record(1, "kept * 10", Some("10".into()));
        assert_eq!(lines(second.answer(&HistoryRequest::Tail { n: 2, output: false, raw: true })), [(1, 3), (2, 1)]);
        let previous = HistoryRequest::Range { session: Some(-1), start: 1, stop: 3, output: false, raw: true };
        assert_eq!(lines(second.answer(&previous)), [(1, 1), (1, 2)]);
        assert_eq!(lines(second.answer(&search("kept*", false))), [(1, 2), (2, 1)]);
    }

    #[test]
    fn the_file_is_compacted_to_the_last_cells() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history.jsonl");
        let text: String = (0..2 * MAX_CELLS + 5)
            .map(|i| {
                serde_json::to_string(&Cell { session: 1, line: i, input: format!("{i}"), output: None }).unwrap()
                    + "\n"
            })
            .collect();
        std::fs::write(&file, text).unwrap();
        let h = History::open(Some(file.clone()));
        assert_eq!(h.cells.len(), MAX_CELLS);
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), MAX_CELLS);
        assert_eq!(h.cells.last().unwrap().input, format!("{}", 2 * MAX_CELLS + 4));
    }
}
