//! The helper's stdout: one thread writes every event, so lines never interleave, and a cell's
//! printed lines always go out before the event that ends it.

use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, never, select, unbounded, Receiver, Sender};
use evcxr::EvalContextOutputs;
use webaccel_rust_protocol::{send, Event};

/// How long stderr must be quiet before a cell's end is written. evcxr waits for the cell's
/// stdout to drain, but its stderr comes through a thread of its own that may still be behind.
const STDERR_QUIET: Duration = Duration::from_millis(20);

/// Takes the process's stdout for the protocol alone: the events go to a copy of it that no
/// child inherits, and stdout itself becomes stderr, so that a stray print (evcxr's own, from
/// `:load_config` or `:internal_debug`) can neither block on the writer's lock nor break a line.
pub fn take_stdout() -> io::Result<File> {
    // SAFETY: fcntl and dup2 on descriptors 1 and 2, which are open for the whole process; the
    // new descriptor is owned by the File from here on.
    unsafe {
        let events = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if events < 0 || libc::dup2(2, 1) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(events))
    }
}

pub struct Output {
    finals: Sender<Event>,
    written: Receiver<()>,
}

impl Output {
    /// Starts the writer; `streams` are evcxr's stdout and stderr lines (None before evcxr runs).
    pub fn start(events: File, streams: Option<EvalContextOutputs>) -> Output {
        let (finals, final_rx) = unbounded::<Event>();
        let (written_tx, written) = bounded::<()>(0);
        let (mut out_rx, mut err_rx) = match streams {
            Some(s) => (s.stdout, s.stderr),
            None => (never(), never()),
        };
        let mut stdout = io::BufWriter::new(events);
        thread::spawn(move || {
            let mut write = |event: &Event| {
                if send(&mut stdout, event).is_err() {
                    // The kernel is gone; nobody is left to tell. The whole group goes, so that
                    // evcxr's child (the cell's code) does not outlive it.
                    // SAFETY: kill(2) on our own process group (pid 0); no memory is shared.
                    unsafe { libc::kill(0, libc::SIGKILL) };
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
                        while let Ok(text) = err_rx.recv_timeout(STDERR_QUIET) {
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
