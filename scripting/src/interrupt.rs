//! The user's interrupt (a kernel's interrupt request or SIGINT, Ctrl-C under `webaccel run`)
//! as every long call sees it. Rhai itself checks it between script operations, but
//! `accelerate` or `compare` is one native call: so each wait inside one (a browser load or
//! run, a launch, a gateway fetch) races it, and a native run checks it between its runs. A call
//! stops within a second of the interrupt, whatever it was waiting on.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use crate::error::ApiError;

/// Raised by the kernel or a signal, cleared when the next evaluation starts.
#[derive(Clone)]
pub struct Interrupt(Arc<watch::Sender<bool>>);

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt(Arc::new(watch::channel(false).0))
    }
}

impl Interrupt {
    pub fn raise(&self) {
        self.0.send_replace(true);
    }

    pub fn clear(&self) {
        self.0.send_replace(false);
    }

    pub fn is_raised(&self) -> bool {
        *self.0.borrow()
    }

    /// The interrupt as an error, for the checks between a call's steps.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        if self.is_raised() {
            Err(ApiError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Resolves once the interrupt is raised (at once when it already is).
    pub async fn raised(&self) {
        let mut seen = self.0.subscribe();
        let _ = seen.wait_for(|raised| *raised).await;
    }

    /// `work`, unless the interrupt comes first; then `work` is dropped where it waits.
    pub(crate) async fn race<T>(&self, work: impl Future<Output = T>) -> Result<T, ApiError> {
        tokio::select! {
            biased;
            _ = self.raised() => Err(ApiError::Interrupted),
            done = work => Ok(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_wait_stops_when_the_interrupt_is_raised() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let interrupt = Interrupt::default();
        let raiser = interrupt.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            raiser.raise();
        });
        let started = Instant::now();
        let outcome = runtime.block_on(async { interrupt.race(tokio::time::sleep(Duration::from_secs(30))).await });
        assert!(matches!(outcome, Err(ApiError::Interrupted)));
        assert!(started.elapsed() < Duration::from_secs(5));
        // Raised stays raised until cleared, so the next wait of the same call stops at once.
        assert!(runtime.block_on(interrupt.race(std::future::pending::<()>())).is_err());
        interrupt.clear();
        assert_eq!(runtime.block_on(interrupt.race(async { 7 })).unwrap(), 7);
        assert!(interrupt.check().is_ok());
    }
}
