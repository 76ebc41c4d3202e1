//! The progress bar `webaccel run` draws on stderr during a `compare` grid. indicatif hides it
//! when stderr is not a terminal, so piped output and CI logs stay clean.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;
use webaccel_scripting::Progress;

#[derive(Default)]
pub struct Bar(Mutex<Option<ProgressBar>>);

impl Progress for Bar {
    fn start(&self, cells: usize) {
        let bar = ProgressBar::new(cells as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} compare [{bar:30}] {pos}/{len} cells, {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        *self.0.lock().expect("progress bar poisoned") = Some(bar);
    }

    fn cell(&self, label: &str, outcome: Result<f64, &str>) {
        if let Some(bar) = self.0.lock().expect("progress bar poisoned").as_ref() {
            match outcome {
                Ok(ms) => bar.set_message(format!("{label}: {ms:.2} ms")),
                Err(_) => bar.set_message(format!("{label}: failed (recorded)")),
            }
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.0.lock().expect("progress bar poisoned").take() {
            bar.finish_and_clear();
        }
    }
}
