//! Progress of long calls as the two front ends show it, both from the scripting layer's
//! `Tracker`, so they say the same: the indicatif bar `webaccel run` draws on stderr (hidden
//! when stderr is not a terminal, so piped output and CI logs stay clean), and the notebook's
//! display, which the kernel publishes and keeps current (`Notebook`).

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use webaccel_scripting::{Progress, Tracker};

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
pub struct Bar(Mutex<Option<(ProgressBar, Tracker)>>);

impl Bar {
    fn redraw(bar: &ProgressBar, tracker: &Tracker) {
        // The bar itself shows cells done, elapsed and the estimate; the message the rest.
        bar.set_message(tracker.lines().into_iter().skip(1).collect::<Vec<_>>().join(" | "));
        bar.set_position(tracker.done as u64);
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, cells: usize) {
        let bar = ProgressBar::new(cells as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} cells, {{elapsed}} elapsed, about {{eta}} left {{wide_msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        *locked(&self.0) = Some((bar, Tracker::new(what, cells)));
    }

    fn phase(&self, cell: &str, phase: &str) {
        if let Some((bar, tracker)) = locked(&self.0).as_mut() {
            tracker.phase(cell, phase);
            Self::redraw(bar, tracker);
        }
    }

    fn cell(&self, cell: &str, outcome: Result<f64, &str>) {
        if let Some((bar, tracker)) = locked(&self.0).as_mut() {
            tracker.cell(cell, outcome);
            Self::redraw(bar, tracker);
        }
    }

    fn finish(&self) {
        if let Some((bar, _)) = locked(&self.0).take() {
            bar.finish_and_clear();
        }
    }
}

/// What the notebook's progress display should show now.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// Nothing yet (a call shorter than `Notebook::DELAY` never shows a display).
    Nothing,
    Progress {
        plain: String,
        html: String,
    },
    /// The call ended: the display is emptied, and the cell's result (its table and plots)
    /// takes its place below it.
    Ended,
}

/// The kernel's progress: the evaluator thread reports into it, and the kernel's execute loop
/// reads `shown()` a few times a second and publishes what changed (`display_data` with a
/// `display_id` the first time, `update_display_data` after), which bounds the update rate.
#[derive(Default)]
pub struct Notebook {
    state: Mutex<Option<Tracker>>,
    ended: Mutex<bool>,
}

impl Notebook {
    /// A call shows its progress once it has run this long, so quick calls stay quiet.
    pub const DELAY: Duration = Duration::from_millis(500);
    /// How often the execute loop looks.
    pub const PERIOD: Duration = Duration::from_millis(250);

    pub fn shown(&self) -> Shown {
        if let Some(tracker) = locked(&self.state).as_ref() {
            if tracker.elapsed() >= Self::DELAY {
                return Shown::Progress { plain: tracker.lines().join("\n"), html: tracker.html() };
            }
            return Shown::Nothing;
        }
        if *locked(&self.ended) {
            Shown::Ended
        } else {
            Shown::Nothing
        }
    }

    /// Forgets the last call, before a new cell.
    pub fn reset(&self) {
        *locked(&self.state) = None;
        *locked(&self.ended) = false;
    }
}

impl Progress for Notebook {
    fn start(&self, what: &str, cells: usize) {
        *locked(&self.state) = Some(Tracker::new(what, cells));
    }

    fn phase(&self, cell: &str, phase: &str) {
        if let Some(tracker) = locked(&self.state).as_mut() {
            tracker.phase(cell, phase);
        }
    }

    fn cell(&self, cell: &str, outcome: Result<f64, &str>) {
        if let Some(tracker) = locked(&self.state).as_mut() {
            tracker.cell(cell, outcome);
        }
    }

    fn finish(&self) {
        *locked(&self.state) = None;
        *locked(&self.ended) = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_shows_after_the_delay_and_empties_when_it_ends() {
        let notebook = Notebook::default();
        assert_eq!(notebook.shown(), Shown::Nothing);
        notebook.start("compare", 2);
        notebook.phase("m chromium wasm default", "chromium: model transfer and wasm session creation");
        assert_eq!(notebook.shown(), Shown::Nothing, "too early");
        std::thread::sleep(Notebook::DELAY);
        let Shown::Progress { plain, html } = notebook.shown() else { panic!("no progress shown") };
        assert!(plain.starts_with("compare: 0/2 cells") && plain.contains("now: m chromium wasm default"), "{plain}");
        assert!(html.contains("webaccel-progress"));
        notebook.cell("m chromium wasm default", Ok(3.0));
        notebook.finish();
        assert_eq!(notebook.shown(), Shown::Ended);
        notebook.reset();
        assert_eq!(notebook.shown(), Shown::Nothing);
    }
}
