//! Calls waiting for their answers, by request id: what the page's data channel and Firefox's
//! WebDriver BiDi connection both do with the requests they send. Once a connection closes,
//! every waiting call wakes and no new call can start waiting on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::oneshot;

pub(crate) struct Calls<T> {
    /// `None` once closed.
    waiting: Mutex<Option<HashMap<u64, oneshot::Sender<T>>>>,
    next_id: AtomicU64,
}

impl<T> Calls<T> {
    pub fn new() -> Self {
        Calls { waiting: Mutex::new(Some(HashMap::new())), next_id: AtomicU64::new(1) }
    }

    /// A new call's id and where its answer will arrive; None once closed.
    pub fn open(&self) -> Option<(u64, oneshot::Receiver<T>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().as_mut()?.insert(id, tx);
        Some((id, rx))
    }

    /// Hands `answer` to the call waiting under `id`; dropped when none is (it gave up).
    pub fn answer(&self, id: u64, answer: T) {
        let waiting = self.lock().as_mut().and_then(|calls| calls.remove(&id));
        if let Some(waiting) = waiting {
            let _ = waiting.send(answer);
        }
    }

    /// Stops waiting for `id` (its request could not be sent).
    pub fn forget(&self, id: u64) {
        if let Some(calls) = self.lock().as_mut() {
            calls.remove(&id);
        }
    }

    /// Closes: every waiting call wakes with its sender dropped.
    pub fn close(&self) {
        self.lock().take();
    }

    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<HashMap<u64, oneshot::Sender<T>>>> {
        self.waiting.lock().expect("waiting calls poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_reach_their_calls_and_closing_wakes_the_rest() {
        let calls = Calls::new();
        let (a, mut rx_a) = calls.open().unwrap();
        let (_b, mut rx_b) = calls.open().unwrap();
        calls.answer(a, "for a");
        assert_eq!(rx_a.try_recv().unwrap(), "for a");
        calls.close();
        assert!(rx_b.try_recv().is_err() && !calls.is_open());
        assert!(calls.open().is_none(), "a closed connection takes no new call");
    }
}
