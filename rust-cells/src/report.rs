//! evcxr's errors as Jupyter sees errors: a name, a one-line value, and a traceback of lines.

use evcxr::{CompilationError, Error, Theme};
use webaccel_rust_protocol::Event;

pub fn failed(ename: &str, evalue: &str, traceback: &[String]) -> Event {
    let mut lines = vec![format!("\u{1b}[0;31m{ename}\u{1b}[0m: {evalue}")];
    lines.extend(traceback.iter().cloned());
    Event::Failed { ename: ename.into(), evalue: evalue.into(), traceback: lines }
}

/// `code` is what was evaluated (its line numbers are the cell's); `context`, when not empty,
/// says what was being done.
pub fn error(error: &Error, code: &str, context: &str) -> Event {
    let prefix = |message: String| if context.is_empty() { message } else { format!("{context}: {message}") };
    match error {
        Error::CompilationErrors(errors) => {
            let evalue = prefix(errors.iter().map(|e| e.message()).collect::<Vec<_>>().join("; "));
            let traceback: Vec<String> = errors.iter().flat_map(|e| compile_report(e, code)).collect();
            failed("CompileError", &evalue, &traceback)
        }
        Error::TypeRedefinedVariablesLost(names) => failed(
            "VariablesLost",
            &prefix(format!("redefining a type lost these variables: {}", names.join(", "))),
            &[],
        ),
        Error::SubprocessTerminated(message) => failed(
            "ChildTerminated",
            &prefix(format!("{message}; the Rust session's variables were lost, and the next Rust cell starts afresh")),
            &[],
        ),
        Error::Message(message) => failed("EvcxrError", &prefix(message.clone()), &[]),
    }
}

/// evcxr's own report of one compile error: drawn over the cell's source when the error is in
/// the user's code (with the line in the cell), else rustc's rendering.
fn compile_report(error: &CompilationError, code: &str) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(span) = error.primary_spanned_message().and_then(|m| m.span.as_ref()) {
        lines.push(format!("at line {} of the cell, column {}", span.start_line, span.start_column));
    }
    let drawn =
        error.is_from_user_code().then(|| error.build_report("cell".into(), code.into(), Theme::Light)).flatten();
    let text = match drawn {
        Some(report) => {
            let mut out = Vec::new();
            match report.write(("cell".to_string(), ariadne::Source::from(code.to_string())), &mut out) {
                Ok(()) => String::from_utf8_lossy(&out).into_owned(),
                Err(_) => error.rendered(),
            }
        }
        None => error.rendered(),
    };
    lines.extend(text.lines().map(str::to_string));
    lines
}
