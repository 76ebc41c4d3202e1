//! The helper's stdout: one thread writes every event, so lines never interleave, and a cell's
//! printed lines always go out before the event that ends it.

use std::io;
use std::thread;

use crossbeam_channel::{bounded, never, select, unbounded, Receiver, Sender};
use evcxr::EvalContextOutputs;
use webaccel_rust_protocol::{send, Event};

pub struct Output {
    finals: Sender<Event>,
    written: Receiver<()>,
}

impl Output {
    /// Starts the writer; `streams` are evcxr's stdout and stderr lines (None before evcxr runs).
    pub fn start(streams: Option<EvalContextOutputs>) -> Output {
        let (finals, final_rx) = unbounded::<Event>();
        let (written_tx, written) = bounded::<()>(0);
        let (mut out_rx, mut err_rx) = match streams {
            Some(s) => (s.stdout, s.stderr),
            None => (never(), never()),
        };
        thread::spawn(move || {
            let mut stdout = io::stdout().lock();
            let mut write = |event: &Event| {
                if send(&mut stdout, event).is_err() {
                    // The kernel is gone; nobody is left to tell.
                    std::process::exit(0);
                }
            };
            loop {
                select! {
                    recv(out_rx) -> line => match line {
                        Ok(text) => write(&Event::Stdout { text: text + "\n" }),
                        Err(_) => out_rx = never(),
                    },
                    recv(err_rx) -> line => match line {
                        Ok(text) => write(&Event::Stderr { text: text + "\n" }),
                        Err(_) => err_rx = never(),
                    },
                    recv(final_rx) -> event => {
                        let Ok(event) = event else { return };
                        // evcxr has queued all of a cell's stdout by the time the cell returns,
                        // so what is queued now belongs before its end.
                        while let Ok(text) = out_rx.try_recv() {
                            write(&Event::Stdout { text: text + "\n" });
                        }
                        while let Ok(text) = err_rx.try_recv() {
                            write(&Event::Stderr { text: text + "\n" });
                        }
                        write(&event);
                        let _ = written_tx.send(());
                    },
                }
            }
        });
        Output { finals, written }
    }

    /// Writes the event that ends a request, after the lines printed before it; returns once it
    /// is written.
    pub fn finish(&self, event: Event) {
        if self.finals.send(event).is_ok() {
            let _ = self.written.recv();
        }
    }
}
