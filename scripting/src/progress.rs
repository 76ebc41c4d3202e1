//! Progress of a long call, as the front ends show it: `webaccel run` draws an indicatif bar,
//! a notebook keeps one display up to date. A `compare` grid reports its cells; inside each
//! cell (and inside a lone `accelerate`) the long phases are reported too: choosing or
//! starting a browser, the model's transfer and session creation, warm-up and timed runs, and
//! the accuracy reference. A phase is named when it starts; its time is what the row records.
//!
//! `Tracker` holds the state both front ends render, so the bar and the notebook say the same.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Who hears about a call's progress.
pub trait Progress: Send + Sync {
    /// A call of `cells` cells starts (`what`: "compare", or "accelerate" with one cell).
    fn start(&self, what: &str, cells: usize);
    /// `cell` (model, browser, platform, precision) enters `phase`.
    fn phase(&self, cell: &str, phase: &str);
    /// `cell` ended: its median in ms, or its error (recorded in its row).
    fn cell(&self, cell: &str, outcome: Result<f64, &str>);
    fn finish(&self);
}

/// What a call has done so far.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub what: String,
    pub started: Instant,
    pub total: usize,
    pub done: usize,
    pub failed: usize,
    /// Cells in flight (several with `parallel: true`) and their phase.
    pub running: BTreeMap<String, String>,
    /// The last cell that ended, and its median or why it failed.
    pub last: Option<(String, Result<f64, String>)>,
}

impl Tracker {
    pub fn new(what: &str, cells: usize) -> Self {
        Tracker {
            what: what.to_string(),
            started: Instant::now(),
            total: cells,
            done: 0,
            failed: 0,
            running: BTreeMap::new(),
            last: None,
        }
    }

    pub fn phase(&mut self, cell: &str, phase: &str) {
        self.running.insert(cell.to_string(), phase.to_string());
    }

    pub fn cell(&mut self, cell: &str, outcome: Result<f64, &str>) {
        self.running.remove(cell);
        self.done += 1;
        if outcome.is_err() {
            self.failed += 1;
        }
        self.last = Some((cell.to_string(), outcome.map_err(str::to_string)));
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The time left at the pace so far (None before the first cell ends).
    pub fn remaining(&self) -> Option<Duration> {
        (self.done > 0 && self.done < self.total)
            .then(|| self.elapsed().mul_f64((self.total - self.done) as f64 / self.done as f64))
    }

    /// One line per fact: where the call is, what runs now, how the last cell went.
    pub fn lines(&self) -> Vec<String> {
        let mut head = format!("{}: {}/{} cells", self.what, self.done, self.total);
        if self.failed > 0 {
            head += &format!(" ({} failed)", self.failed);
        }
        head += &format!(", {} elapsed", clock(self.elapsed()));
        if let Some(left) = self.remaining() {
            head += &format!(", about {} left", clock(left));
        }
        let mut lines = vec![head];
        lines.extend(self.running.iter().map(|(cell, phase)| format!("now: {cell}: {phase}")));
        if let Some((cell, outcome)) = &self.last {
            lines.push(match outcome {
                Ok(ms) => format!("last: {cell}: median {ms:.3} ms"),
                Err(e) => format!("last: {cell}: failed ({})", e.chars().take(160).collect::<String>()),
            });
        }
        lines
    }

    /// The same lines as HTML, escaped.
    pub fn html(&self) -> String {
        let lines: Vec<String> = self.lines().iter().map(|l| escape(l)).collect();
        format!("<div class=\"webaccel-progress\"><pre>{}</pre></div>", lines.join("\n"))
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `m:ss`, or `h:mm:ss` past an hour.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_say_where_the_call_is_and_what_runs() {
        let mut t = Tracker::new("compare", 4);
        t.phase("minilm chromium wasm 8-bit", "model transfer and session creation");
        assert_eq!(t.remaining(), None, "no pace before a cell ends");
        t.cell("minilm chromium wasm 8-bit", Ok(12.3456));
        t.phase("minilm chromium webgpu 8-bit", "warm-up and 10 timed runs");
        let lines = t.lines();
        assert!(lines[0].starts_with("compare: 1/4 cells, 0:00 elapsed, about 0:00 left"), "{lines:?}");
        assert_eq!(lines[1], "now: minilm chromium webgpu 8-bit: warm-up and 10 timed runs");
        assert_eq!(lines[2], "last: minilm chromium wasm 8-bit: median 12.346 ms");
        t.cell("minilm chromium webgpu 8-bit", Err("no <adapter>"));
        assert!(t.lines()[0].contains("2/4 cells (1 failed)"));
        assert!(t.html().contains("failed (no &lt;adapter&gt;)"));
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}
