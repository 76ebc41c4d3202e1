//! The results file with real processes: one killed with SIGKILL while it streams rows, and a
//! second one opening a file the first still holds. The other process is this test binary
//! again, running one of the `#[ignore]`d child entry points below with `--ignored --exact`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use webaccel_results::{ExperimentRecord, ResultStore, ResultsError, RunRecord};

const CHILD_DB: &str = "WEBACCEL_TEST_CHILD_DB";

fn spawn_child(entry: &str, db: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", entry, "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn child_db() -> PathBuf {
    PathBuf::from(std::env::var_os(CHILD_DB).expect("this entry point is run by another test, as a child process"))
}

/// What follows `marker` on a line of the child's. The harness prints its own lines too, and
/// "test NAME ... " just before the child's first line, so the marker is looked for anywhere.
fn after(line: &str, marker: &str) -> Option<String> {
    line.split_once(marker).map(|(_, rest)| rest.trim().to_string())
}

fn next_line(lines: &mut impl Iterator<Item = std::io::Result<String>>, marker: &str) -> Option<String> {
    lines.map_while(Result::ok).find_map(|l| after(&l, marker))
}

fn run(id: &str, i: usize) -> RunRecord {
    RunRecord {
        run_id: id.to_string(),
        model_name: "paraphrase-minilm-l3-v2".into(),
        model_type: "text_embedding".into(),
        platform: ["wasm", "webgpu", "webnn"][i % 3].into(),
        browser: "chromium".into(),
        precision: Some([32, 16, 8, 4][i % 4]),
        latency_ms: Some(10.0 + i as f64),
        experiment_id: Some("kill9".into()),
        cell_index: Some(i as i32),
        // Enough per row that the log crosses the child's small checkpoint threshold often,
        // so some kills land during a checkpoint.
        latencies_ms: Some((0..200).map(|k| k as f64 * 0.25 + i as f64).collect()),
        error: Some("x".repeat(2000)),
        ..RunRecord::default()
    }
}

/// Child: a long `compare`: an experiment row, then rows one at a time, each reported on
/// stdout only after `append` (and so its commit) returned.
#[test]
#[ignore = "a child process of kill_9_mid_stream_keeps_every_reported_row"]
fn child_streams_rows_until_killed() {
    let mut store = ResultStore::open(&child_db()).unwrap();
    store.connection().execute_batch("SET checkpoint_threshold = '256KB'").unwrap();
    let start: usize = store.count_runs().unwrap() as usize;
    if start == 0 {
        store
            .append_experiment(&ExperimentRecord {
                experiment_id: "kill9".into(),
                started_at: chrono::Utc::now(),
                spec: r#"{"models":["paraphrase-minilm-l3-v2"],"runs":10}"#.into(),
            })
            .unwrap();
    }
    let mut out = std::io::stdout().lock();
    for i in start.. {
        let id = format!("row-{i:06}");
        store.append(&[run(&id, i)]).unwrap();
        writeln!(out, "committed {id}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_mid_stream_keeps_every_reported_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.duckdb");
    let mut reported: Vec<String> = Vec::new();
    // Several kills at different depths; each child carries on where the file stands.
    for kill_after in [25, 140, 61, 300] {
        let mut child = spawn_child("child_streams_rows_until_killed", &db);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..kill_after {
            reported.push(next_line(&mut lines, "committed ").expect("the child reports each committed row"));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines written before the kill but not read yet were committed too.
        reported.extend(lines.map_while(Result::ok).filter_map(|l| after(&l, "committed ")));

        let store = ResultStore::open(&db).expect("the file opens after a kill -9");
        let present: Vec<String> = store
            .sql("SELECT run_id FROM runs ORDER BY run_id")
            .unwrap()
            .text_column("run_id")
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let missing: Vec<&String> = reported.iter().filter(|id| !present.contains(id)).collect();
        assert!(missing.is_empty(), "rows reported committed but lost: {missing:?}");
        // At most the one row whose commit finished as the kill landed, before it was reported.
        assert!(present.len() <= reported.len() + 1, "{} rows, {} reported", present.len(), reported.len());
        reported = present;
        // Every row reads whole: the lists and texts are intact.
        let (bad,): (i64,) = store
            .connection()
            .query_row("SELECT count(*) FROM runs WHERE len(latencies_ms) <> 200 OR length(error) <> 2000", [], |r| {
                Ok((r.get(0)?,))
            })
            .unwrap();
        assert_eq!(bad, 0);
        // The experiment that was killed is still `running`, with no finish time: visibly cut short.
        let (status, finished): (String, Option<String>) = store
            .connection()
            .query_row(
                "SELECT status, CAST(finished_at AS VARCHAR) FROM experiments WHERE experiment_id = 'kill9'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((status.as_str(), finished), ("running", None));
    }
    assert!(reported.len() >= 25 + 140 + 61 + 300);
}

/// Child: opens the file, appends one row, says so, and holds the file until its stdin closes
/// or says "close".
#[test]
#[ignore = "a child process of a_second_process_gets_a_clear_error_or_waits"]
fn child_holds_the_file() {
    let mut store = ResultStore::open(&child_db()).unwrap();
    store.append(&[run(&format!("held-{}", std::process::id()), 0)]).unwrap();
    println!("holding {}", std::process::id());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(store);
    println!("released");
}

fn hold(db: &Path) -> (Child, u32, std::io::Lines<BufReader<ChildStdout>>) {
    let mut child = spawn_child("child_holds_the_file", db);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid = next_line(&mut lines, "holding ").expect("the child opens the file").parse().unwrap();
    (child, pid, lines)
}

#[test]
fn a_second_process_gets_a_clear_error_or_waits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.duckdb");

    // 1. Refused at once, with a message that names the file, the holder and what to do.
    let (mut child, pid, _lines) = hold(&db);
    let started = Instant::now();
    let err = ResultStore::open(&db).err().expect("the file is held");
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = err.to_string();
    assert!(matches!(err, ResultsError::Locked { .. }), "{err:?}");
    assert!(text.contains(&db.display().to_string()), "{text}");
    assert!(text.contains(&format!("PID {pid}")), "{text}");
    assert!(text.contains("another webaccel process") && text.contains("WEBACCEL_DB"), "{text}");

    // 2. A bounded wait gives up with the same facts and how long it waited.
    let err = ResultStore::open_with_timeout(&db, Duration::from_millis(400)).err().expect("still held");
    assert!(
        matches!(&err, ResultsError::LockTimeout { waited, .. } if *waited >= Duration::from_millis(400)),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!("PID {pid}")));

    // 3. A wait that outlasts the holder gets the file.
    let mut stdin = child.stdin.take().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        writeln!(stdin, "close").unwrap();
        child.wait().unwrap()
    });
    let started = Instant::now();
    let mut store = ResultStore::open_with_timeout(&db, Duration::from_secs(30)).expect("opened once released");
    assert!(started.elapsed() >= Duration::from_millis(500), "opened while still held?");
    assert!(releaser.join().unwrap().success());

    // Nothing was corrupted: the holder's row is there and the file takes more.
    store.append(&[run("after", 1)]).unwrap();
    let ids = store.sql("SELECT run_id FROM runs ORDER BY run_id").unwrap().text_column("run_id").unwrap();
    assert_eq!(ids, vec![Some("after".to_string()), Some(format!("held-{pid}"))]);
    drop(store);

    // 4. The same the other way round: while this process holds the file, a child cannot open it.
    let _store = ResultStore::open(&db).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_holds_the_file", "--nocapture"])
        .env(CHILD_DB, &db)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!child.status.success());
    let out = format!("{}{}", String::from_utf8_lossy(&child.stdout), String::from_utf8_lossy(&child.stderr));
    // The child's `unwrap` shows the error's Debug form, naming this process as the holder.
    let holder = format!("PID {})", std::process::id());
    assert!(out.contains("Locked {") && out.contains(&holder) && !out.contains("holding"), "{out}");
}
