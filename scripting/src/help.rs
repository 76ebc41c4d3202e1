//! What an editor asks of a language between evaluations: is this cell complete, what can
//! follow the cursor, and what is the name under it. The kernel answers Jupyter's
//! `is_complete_request`, `complete_request` and `inspect_request` from here.

use std::any::TypeId;

use rhai::{Engine, NativeCallContext, ParseErrorType, Scope, AST};

/// webaccel's own functions, as a user types them: name, call shape, what it does.
const API: &[(&str, &str, &str)] = &[
    ("accelerate", "accelerate(model, input, #{options})", "Runs one model on one input in a real browser (or on native onnxruntime: platform \"native\"); returns outputs, timings and accuracy against native onnxruntime, and appends a row to the results database."),
    ("plan", "plan(model, input, #{options})", "What accelerate would do, without running the model: the file, the input's assumptions, each platform's candidate browsers with their measured verdicts, the browser, platform and device it would pick, and the accuracy reference, each with its reason."),
    ("model_type", "model_type(name)", "The type webaccel gives a model (text_embedding, vision, audio, ...): the catalog's, or the name's rules refined by the graph's inputs."),
    ("compare", "compare(#{options})", "Runs a grid of models × platforms × precisions × browsers; streams every cell's row into DuckDB and returns the summary frame (median, p90, CIs, speedup, accuracy) with plots."),
    ("detect", "detect()", "What each browser can really do: version and path, WebGPU adapter, features and limits, WebNN contexts per device (with the exact error), wasm SIMD and threads."),
    ("sql", "sql(query)", "Runs one read statement (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, read-only PRAGMAs) over the results database (tables runs, environments, experiments) and returns a frame; nothing can erase or alter a row."),
    ("plot", "plot(frame, #{x, y, color, kind, y_low, y_high, title, format, width, height})", "Draws a frame as an SVG or PNG chart."),
    ("cosine", "cosine(a, b)", "Cosine similarity of two embeddings."),
    ("load_pipeline", "load_pipeline(name, #{platform, browser, parallel_loading})", "Loads a catalog pipeline's models into one page, concurrently or one after another, and times it."),
    ("configure_browsers", "configure_browsers(#{max_connections, idle_timeout_s, grid, advertise})", "Sets the browser pool's limits, the Selenium Grid hubs whose slots are grid:<name> browsers (a URL or a list), and the address (IP or IP:port) remote pages reach this machine at."),
    ("browsers", "browsers()", "The warm browsers in the pool."),
    ("display", "display(value)", "Shows a result, frame, plot or any value now, as a cell's last value would be shown at its end."),
    ("clear_output", "clear_output(wait)", "Clears the cell's output in a notebook; with wait = true, only when the next output arrives, so a loop can redraw a table in place."),
    ("ipfs::fetch", "ipfs::fetch(cid)", "Fetches a file by CID through the gateways, verified block by block, into the content store."),
    ("ipfs::add", "ipfs::add(path)", "Imports a file into the content store; returns its CID."),
    ("ipfs::stats", "ipfs::stats()", "The content store's size and this session's hits and misses."),
];

/// The properties and methods registered on values of `types` (results, frames, plots), as
/// completion offers them after a dot: read from the engine, so a getter added later is
/// offered without a list to keep up.
pub fn members(engine: &Engine, types: &[TypeId]) -> Vec<String> {
    let mut names = engine.collect_fn_metadata(
        None::<&NativeCallContext>,
        |info| {
            let f = info.metadata;
            if !f.param_types.first().is_some_and(|t| types.contains(t)) {
                return None;
            }
            // Getters are registered as `get$name`; setters, indexers and the debug form are
            // not something a user types after a dot.
            let name = f.name.as_str();
            if name.starts_with("set$") || name.starts_with("index$") || name == "to_debug" {
                return None;
            }
            Some(name.strip_prefix("get$").unwrap_or(name).to_string())
        },
        false,
    );
    names.sort();
    names.dedup();
    names
}

const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "switch", "for", "in", "while", "loop", "do", "until", "break", "continue",
    "return", "throw", "try", "catch", "true", "false", "print", "debug", "import", "export", "as", "private",
];

/// Whether a cell can run as it is (Jupyter's `is_complete` statuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// More input would finish it (an open block, bracket or string).
    Incomplete,
    /// No continuation can make it valid.
    Invalid,
}

pub fn completeness(engine: &Engine, scope: &Scope, code: &str) -> Completeness {
    let Err(e) = engine.compile_with_scope(scope, code) else { return Completeness::Complete };
    // More input can only help where the parser ran out of it: at the end of the code.
    let at_end = e.1.is_none()
        || match (e.1.line(), e.1.position()) {
            (Some(line), Some(column)) => offset_of(code, line, column) >= code.trim_end().len(),
            (Some(line), None) => line > code.trim_end().lines().count(),
            _ => true,
        };
    let runs_out = match &*e.0 {
        ParseErrorType::UnexpectedEOF => true,
        ParseErrorType::MissingToken(..) | ParseErrorType::MissingSymbol(..) => at_end,
        // Only a back-quoted string may go on over lines; a double-quoted one ends with its line.
        ParseErrorType::BadInput(rhai::LexError::UnterminatedString) => code.matches('`').count() % 2 == 1,
        _ => false,
    };
    if runs_out {
        Completeness::Incomplete
    } else {
        Completeness::Invalid
    }
}

/// The byte offset of Rhai's (1-based) line and column in `code`.
fn offset_of(code: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, text) in code.split('\n').enumerate() {
        if i + 1 == line {
            return offset + text.char_indices().nth(column.saturating_sub(1)).map_or(text.len(), |(b, _)| b);
        }
        offset += text.len() + 1;
    }
    code.len()
}

/// The name being typed at `cursor` (a byte offset): where it starts, and the text so far.
/// Names may hold `::` (module functions such as `ipfs::fetch`).
fn word_before(code: &str, cursor: usize) -> (usize, &str) {
    let cursor = floor_boundary(code, cursor);
    let start = code[..cursor]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| c.is_alphanumeric() || c == '_' || c == ':')
        .last()
        .map_or(cursor, |(i, _)| i);
    (start, &code[start..cursor])
}

/// The whole name the cursor is in or just after.
fn word_at(code: &str, cursor: usize) -> &str {
    let (start, _) = word_before(code, cursor);
    let cursor = floor_boundary(code, cursor);
    let end = code[cursor..]
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .map_or(code.len(), |(i, _)| cursor + i);
    &code[start..end]
}

fn floor_boundary(code: &str, at: usize) -> usize {
    let mut at = at.min(code.len());
    while !code.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Names that can complete the one typed before `cursor`: after a dot, `members` of
/// webaccel's values; elsewhere the API, the session's variables and functions, and keywords.
/// Returns where the replaced text starts and ends, and the matches in order.
pub fn complete(
    members: &[String],
    scope: &Scope,
    ast: &AST,
    code: &str,
    cursor: usize,
) -> (usize, usize, Vec<String>) {
    let (start, typed) = word_before(code, cursor);
    let end = start + typed.len();
    let after_dot = code[..start].ends_with('.');
    let mut names: Vec<String> = if after_dot {
        members.to_vec()
    } else {
        let mut names: Vec<String> = API.iter().map(|(n, _, _)| n.to_string()).collect();
        names.extend(scope.iter_raw().map(|(name, _, _)| name.to_string()));
        names.extend(ast.iter_functions().map(|f| f.name.to_string()));
        // Names the cell itself defines before the cursor, though it has not run yet.
        names.extend(defined_in(&code[..start]));
        names.extend(KEYWORDS.iter().map(|k| k.to_string()));
        names
    };
    names.retain(|n| n.starts_with(typed) && n != typed);
    names.sort();
    names.dedup();
    (start, end, names)
}

/// The names `code` binds: after `let`, `const`, `fn` (the function and its parameters),
/// `for` (one name or a tuple of them) and in closures' `|a, b|`. Read from the words alone, so
/// it works on a cell that does not parse yet, as a cell being typed is.
fn defined_in(code: &str) -> Vec<String> {
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || "(|),".contains(c)))
        .flat_map(|w| w.split_inclusive(['(', ')', '|', ',']))
        .flat_map(|w| {
            let (name, mark) = w.split_at(w.trim_end_matches(['(', ')', '|', ',']).len());
            [name, mark]
        })
        .filter(|w| !w.is_empty())
        .collect();
    let is_name = |w: &str| w.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') && !KEYWORDS.contains(&w);
    let mut names = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match words[i] {
            "let" | "const" | "fn" if words.get(i + 1).is_some_and(|w| is_name(w)) => {
                names.push(words[i + 1].to_string());
                // A function's parameters, up to its closing parenthesis.
                if words[i] == "fn" && words.get(i + 2) == Some(&"(") {
                    let close = words[i + 2..].iter().position(|w| *w == ")").map_or(words.len(), |p| i + 2 + p);
                    names.extend(words[i + 3..close].iter().filter(|w| is_name(w)).map(|w| w.to_string()));
                    i = close;
                }
            }
            "for" => {
                let end = words[i + 1..].iter().position(|w| *w == "in").map_or(words.len(), |p| i + 1 + p);
                names.extend(words[i + 1..end].iter().filter(|w| is_name(w)).map(|w| w.to_string()));
                i = end;
            }
            "|" => {
                if let Some(close) = words[i + 1..].iter().position(|w| *w == "|") {
                    let params = &words[i + 1..i + 1 + close];
                    if params.iter().all(|w| is_name(w) || *w == ",") {
                        names.extend(params.iter().filter(|w| is_name(w)).map(|w| w.to_string()));
                        i += close + 1;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// Help for the name at `cursor`: an API function's call shape and purpose, a variable's
/// type and value, or a user function's parameters. None for anything else.
pub fn inspect(scope: &Scope, ast: &AST, code: &str, cursor: usize) -> Option<String> {
    let name = word_at(code, cursor);
    if name.is_empty() {
        return None;
    }
    if let Some((_, shape, doc)) = API.iter().find(|(n, _, _)| *n == name) {
        // The option names come from the parsers that accept them, so help cannot drift.
        let options = match name {
            "accelerate" | "plan" => &crate::options::KEYS[..],
            "compare" => &crate::compare::KEYS[..],
            _ => &[],
        };
        let listed = if options.is_empty() { String::new() } else { format!("\n\nOptions: {}.", options.join(", ")) };
        return Some(format!("{shape}\n\n{doc}{listed}"));
    }
    if let Some((_, constant, value)) = scope.iter_raw().find(|(n, _, _)| *n == name) {
        let mut shown = format!("{value:?}");
        if shown.len() > 500 {
            shown.truncate(floor_boundary(&shown, 500));
            shown.push('…');
        }
        let kind = if constant { "constant" } else { "variable" };
        return Some(format!("{kind} {name}: {}\n\n{shown}", value.type_name()));
    }
    ast.iter_functions()
        .find(|f| f.name == name)
        .map(|f| format!("fn {}({})  (defined in this session)", f.name, f.params.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Dynamic;

    #[test]
    fn open_blocks_and_strings_are_incomplete_and_garbage_is_invalid() {
        let engine = Engine::new();
        let scope = Scope::new();
        for code in ["1 + 1", "let x = 1;", "fn f(a) { a }", ""] {
            assert_eq!(completeness(&engine, &scope, code), Completeness::Complete, "{code:?}");
        }
        for code in ["fn f() {", "let x = [1, 2,", "if true {\n  print(1);", "let s = `abc", "accelerate(\"m\","] {
            assert_eq!(completeness(&engine, &scope, code), Completeness::Incomplete, "{code:?}");
        }
        for code in ["let = 5;", "1 +* 2", ")", "let s = \"abc", "fn f() { 1 +* 2"] {
            assert_eq!(completeness(&engine, &scope, code), Completeness::Invalid, "{code:?}");
        }
    }

    #[derive(Clone)]
    struct Run;

    #[test]
    fn members_are_what_the_engine_has_registered_on_the_type() {
        let mut engine = Engine::new();
        engine
            .register_type::<Run>()
            .register_get("latency_ms", |_: &mut Run| 1.0)
            .register_get_set("label", |_: &mut Run| String::new(), |_: &mut Run, _: String| {})
            .register_fn("head", |_: &mut Run, _: i64| Run)
            .register_fn("to_debug", |_: &mut Run| String::new())
            .register_fn("unrelated", |x: i64| x);
        assert_eq!(members(&engine, &[TypeId::of::<Run>()]), ["head", "label", "latency_ms"]);
    }

    #[test]
    fn completes_the_api_variables_and_members() {
        let engine = Engine::new();
        let mut scope = Scope::new();
        scope.push("accuracy_rows", Dynamic::from(3_i64));
        let ast = engine.compile("fn accumulate(a, b) { a + b }").unwrap();
        let members = ["latency_ms".to_string(), "head".to_string()];
        let (start, end, names) = complete(&members, &scope, &ast, "let r = acc", 11);
        assert_eq!((start, end), (8, 11));
        assert_eq!(names, ["accelerate", "accumulate", "accuracy_rows"]);
        assert_eq!(complete(&members, &scope, &ast, "ipfs::f", 7).2, ["ipfs::fetch"]);
        assert_eq!(complete(&members, &scope, &ast, "r.laten", 7).2, ["latency_ms"]);
        // The cursor mid-line: only what is before it counts.
        assert_eq!(complete(&members, &scope, &ast, "de + 1", 2).2, ["debug", "detect"]);
    }

    #[test]
    fn names_the_cell_defines_before_the_cursor_are_offered() {
        let code = "let budget_ms = 5;\nconst LIMIT = 3;\nfn scale(factor, offset) { factor }\n\
                    for (i, item) in [1] {}\nlet f = |acc_x, acc_y| acc_x;\n";
        let mut names = defined_in(code);
        names.sort();
        assert_eq!(names, ["LIMIT", "acc_x", "acc_y", "budget_ms", "f", "factor", "i", "item", "offset", "scale"]);
        let scope = Scope::new();
        let ast = AST::empty();
        let cell = format!("{code}budg");
        let (_, _, matches) = complete(&[], &scope, &ast, &cell, cell.len());
        assert_eq!(matches, ["budget_ms"]);
        // A cell that does not parse yet still offers what it has bound.
        let cell = "let reading = accelerate(\"m\", \nrea";
        assert!(complete(&[], &scope, &ast, cell, cell.len()).2.contains(&"reading".to_string()));
        assert_eq!(complete(&[], &scope, &ast, "ipfs::", 6).2, ["ipfs::add", "ipfs::fetch", "ipfs::stats"]);
    }

    #[test]
    fn inspects_functions_and_variables() {
        let engine = Engine::new();
        let mut scope = Scope::new();
        scope.push("grid", Dynamic::from(42_i64));
        let ast = engine.compile("fn twice(x) { 2 * x }").unwrap();
        let help = inspect(&scope, &ast, "accelerate(\"m\", \"x\")", 3).unwrap();
        assert!(help.starts_with("accelerate(model, input, #{options})") && help.contains("profile_ops"), "{help}");
        assert_eq!(inspect(&scope, &ast, "print(grid)", 8).unwrap(), "variable grid: i64\n\n42");
        assert_eq!(inspect(&scope, &ast, "twice(2)", 0).unwrap(), "fn twice(x)  (defined in this session)");
        assert_eq!(inspect(&scope, &ast, "1 + 1", 2), None);
    }
}
