//! The cells this kernel has run, for Jupyter's `history_request` (a console's up-arrow, `%history`
//! in a notebook front end). Kept for the kernel's life only: a new kernel starts a new history.

use jupyter_protocol::{HistoryEntry, HistoryRequest};

/// The session number of this kernel's history. Earlier sessions are not kept, so any other
/// session number asks for nothing.
const SESSION: usize = 1;

#[derive(Default)]
pub struct History {
    cells: Vec<Cell>,
}

struct Cell {
    line: usize,
    input: String,
    /// The result's plain text, when the cell had one.
    output: Option<String>,
}

impl History {
    /// Records a cell stored under execution count `line`.
    pub fn record(&mut self, line: usize, input: &str, output: Option<String>) {
        self.cells.push(Cell { line, input: input.to_string(), output });
    }

    pub fn answer(&self, request: &HistoryRequest) -> Vec<HistoryEntry> {
        let (chosen, output): (Vec<&Cell>, bool) = match request {
            HistoryRequest::Tail { n, output, .. } => (last(self.cells.iter().collect(), *n), *output),
            HistoryRequest::Range { session, start, stop, output, .. } => {
                let ours = session.is_none_or(|s| s == 0 || s == SESSION as i32);
                let (start, stop) = (*start as i64, *stop as i64);
                let cells = self
                    .cells
                    .iter()
                    .filter(|c| ours && c.line as i64 >= start && (stop <= start || (c.line as i64) < stop))
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
                false => HistoryEntry::Input(SESSION, c.line, c.input.clone()),
                true => {
                    HistoryEntry::InputOutput(SESSION, c.line, (c.input.clone(), c.output.clone().unwrap_or_default()))
                }
            })
            .collect()
    }
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
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
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
        let mut h = History::default();
        h.record(1, "6 * 7", Some("42".into()));
        h.record(2, "let r = accelerate(\"minilm\", \"hi\");", None);
        h.record(3, "6 * 7", Some("42".into()));
        h
    }

    fn lines(entries: Vec<HistoryEntry>) -> Vec<usize> {
        entries
            .into_iter()
            .map(|e| match e {
                HistoryEntry::Input(_, line, _) | HistoryEntry::InputOutput(_, line, _) => line,
            })
            .collect()
    }

    #[test]
    fn tail_range_and_search() {
        let h = history();
        assert_eq!(lines(h.answer(&HistoryRequest::Tail { n: 2, output: false, raw: true })), [2, 3]);
        let range = HistoryRequest::Range { session: Some(1), start: 2, stop: 3, output: false, raw: true };
        assert_eq!(lines(h.answer(&range)), [2]);
        let earlier = HistoryRequest::Range { session: Some(-1), start: 1, stop: 3, output: false, raw: true };
        assert!(h.answer(&earlier).is_empty());
        let search = |pattern: &str, unique| HistoryRequest::Search {
            pattern: pattern.into(),
            unique,
            output: false,
            raw: true,
            n: 0,
        };
        assert_eq!(lines(h.answer(&search("6*", false))), [1, 3]);
        assert_eq!(lines(h.answer(&search("6*", true))), [3]);
        assert_eq!(lines(h.answer(&search("*accelerate(?minilm*", false))), [2]);
        assert!(h.answer(&search("7", false)).is_empty());
        match &h.answer(&HistoryRequest::Tail { n: 1, output: true, raw: true })[0] {
            HistoryEntry::InputOutput(1, 3, (input, output)) => {
                assert_eq!((input.as_str(), output.as_str()), ("6 * 7", "42"))
            }
            other => panic!("{other:?}"),
        }
    }
}
