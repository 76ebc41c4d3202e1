//! `webaccel-rust`: the kernel's Rust cells, one evcxr session per process. The kernel starts it
//! on the first `%%rust` cell and speaks `webaccel_rust_protocol` over its stdin and stdout; it
//! stops it by killing its process group (evcxr has no interrupt), which also takes evcxr's
//! child and any cargo build under it.

mod output;
mod report;

use std::io;
use std::path::Path;

use evcxr::{CommandContext, EvalContext};
use webaccel_rust_protocol::{receive, Event, Request, CELL_CRATE_ENV};

use crate::output::Output;

fn main() {
    // First of all: evcxr's child process is this binary again, with no arguments, and this
    // call runs the child's loop (or wraps rustc) and never returns there.
    evcxr::runtime_hook();
    std::process::exit(match serve() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("webaccel-rust: {e}");
            1
        }
    });
}

fn serve() -> io::Result<()> {
    watch_the_kernel();
    let events = output::take_stdout()?;
    let (context, streams) = match EvalContext::new() {
        Ok(started) => started,
        Err(e) => {
            let output = Output::start(events, None);
            output.finish(report::failed("EvcxrError", &format!("evcxr did not start: {e}"), &[]));
            return Ok(());
        }
    };
    let output = Output::start(events, Some(streams));
    let mut context = CommandContext::with_eval_context(context);

    // Every session has the bridge crate and its names; its first compile happens here.
    let prelude = match std::env::var(CELL_CRATE_ENV) {
        Ok(dir) => format!(":dep webaccel_cell = {{ path = {dir:?} }}\nuse webaccel_cell::*;"),
        Err(_) => String::new(),
    };
    if !prelude.is_empty() {
        if let Err(e) = context.execute(&prelude) {
            output.finish(report::error(&e, &prelude, "the webaccel_cell bridge did not compile"));
            return Ok(());
        }
    }
    let completion = has_rust_src();
    output.finish(Event::Ready { completion });

    let mut input = io::stdin().lock();
    while let Some(request) = receive::<Request>(&mut input)? {
        let event = match request {
            Request::Execute { code } => match context.execute(&code) {
                Ok(outputs) => Event::Done { bundle: outputs.content_by_mime_type.into_iter().collect() },
                Err(e) => report::error(&e, &code, ""),
            },
            // Without rust-src, rust-analyzer cannot resolve std, and evcxr's first completion
            // may try `rustup component add rust-src` and stall the session.
            Request::Complete { code, position } => match completion.then(|| context.completions(&code, position)) {
                Some(Ok(found)) => Event::Completions {
                    start: found.start_offset,
                    end: found.end_offset,
                    matches: found.completions.into_iter().map(|c| c.code).collect(),
                },
                _ => Event::Completions { start: position, end: position, matches: vec![] },
            },
            Request::Inspect { code, position } => Event::Inspection {
                text: completion.then(|| context.hover_at(&code, position).ok()).flatten().map(|(plain, _)| plain),
            },
        };
        output.finish(event);
    }
    // The kernel closed our stdin: it is done with this session (or gone).
    Ok(())
}

/// Whether the toolchain has the standard library's source, which evcxr's completion needs.
fn has_rust_src() -> bool {
    let Ok(out) = std::process::Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout);
    Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library").is_dir()
}

/// When the kernel dies without stopping us (SIGKILL), we are reparented: then kill our whole
/// process group, so that no cell's code (evcxr's child) or cargo build outlives it.
fn watch_the_kernel() {
    let kernel = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        if std::os::unix::process::parent_id() != kernel {
            // SAFETY: kill(2) on our own process group (pid 0); no memory is shared.
            unsafe { libc::kill(0, libc::SIGKILL) };
        }
    });
}
