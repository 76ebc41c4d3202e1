//! The DuckDB file that holds every run. Rows go in as Arrow batches through DuckDB's
//! appender; the schema is created on first use and upgraded on open.
//!
//! Durability: every `append` is its own committed transaction before it returns. DuckDB writes
//! a commit to its write-ahead log (`<file>.wal`) and syncs it; on the next open it replays that
//! log, and it folds the log into the file itself at a checkpoint (when the log passes
//! `checkpoint_threshold`, 16 MiB by default, and on a clean close). A checkpoint writes new
//! blocks and then switches the header, so a process killed at any point — mid-append,
//! mid-commit or mid-checkpoint — leaves a file that opens with every committed row.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use duckdb::Connection;

use crate::database::{Database, StatementKind};
use crate::error::{Result, ResultsError};
use crate::export::{export_query, sql_string, ExportFormat};
use crate::frame::Frame;
use crate::lock::{lock_holder, InProcessClaim};
use crate::record::{AccuracyUpdate, EnvironmentRecord, ExperimentRecord, ExperimentStatus, RunRecord};
use crate::schema::{experiment_batch, migration, to_record_batch, SCHEMA_VERSION};
use crate::stats::{summarize_frame, SummaryOptions};

pub struct ResultStore {
    path: PathBuf,
    // Field order is drop order: the connection, then the database it belongs to, then the
    // claim, so the file is closed before this process lets go of it.
    conn: Connection,
    db: Database,
    _claim: InProcessClaim,
}

/// A query's result as DuckDB hands it over: Arrow batches (possibly none) and their schema.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl ResultStore {
    /// `WEBACCEL_DB`, else `results.duckdb` in the user's data directory.
    pub fn default_path() -> PathBuf {
        if let Some(path) = std::env::var_os("WEBACCEL_DB") {
            return PathBuf::from(path);
        }
        dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("webaccel").join("results.duckdb")
    }

    /// Opens (creating or upgrading) the file. If another process has it open this fails at
    /// once with [`ResultsError::Locked`]; see [`ResultStore::open_with_timeout`] to wait.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| ResultsError::CreateDir { path: dir.to_path_buf(), source })?;
        }
        let claim = InProcessClaim::take(path).ok_or_else(|| ResultsError::Locked {
            path: path.to_path_buf(),
            holder: format!("this process, PID {}, already has it open", std::process::id()),
        })?;
        let db = Database::open(path).map_err(|reason| match lock_holder(&reason) {
            Some(holder) => ResultsError::Locked { path: path.to_path_buf(), holder },
            None => ResultsError::Open { path: path.to_path_buf(), reason },
        })?;
        let conn = db.connection()?;
        let store = ResultStore { path: path.to_path_buf(), conn, db, _claim: claim };
        store.ensure_schema()?;
        Ok(store)
    }

    /// Like [`ResultStore::open`], but while another process holds the file, retries until
    /// `timeout` has passed; then [`ResultsError::LockTimeout`]. Any other error returns at once.
    pub fn open_with_timeout(path: &Path, timeout: Duration) -> Result<Self> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            match Self::open(path) {
                Err(ResultsError::Locked { path, holder }) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        return Err(ResultsError::LockTimeout { path, holder, waited });
                    }
                    std::thread::sleep(pause.min(timeout - waited));
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the schema on first use and upgrades older files, one version at a time, each
    /// in its own transaction: an upgrade that fails leaves the file at its previous version.
    fn ensure_schema(&self) -> Result<()> {
        self.conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let current: Option<i32> = self.conn.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))?;
        let current = current.unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(ResultsError::NewerSchema {
                path: self.path.clone(),
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        for v in current + 1..=SCHEMA_VERSION {
            let sql = migration(v).expect("a migration exists for every version up to SCHEMA_VERSION");
            self.conn.execute_batch(&format!(
                "BEGIN; {sql}\nDELETE FROM schema_version; INSERT INTO schema_version VALUES ({v}); COMMIT;"
            ))?;
            tracing::info!(path = %self.path.display(), version = v, "results schema upgraded");
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i32> {
        Ok(self.conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))?)
    }

    /// Stores an environment once; later calls with the same fingerprint change nothing.
    pub fn record_environment(&self, env: &EnvironmentRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO environments (fingerprint, first_seen, browser, version, executable, flags, adapter, capabilities)
             VALUES (?, CAST(? AS TIMESTAMP), ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
            duckdb::params![
                env.fingerprint,
                timestamp_text(env.first_seen),
                env.browser,
                env.version,
                env.executable,
                env.flags,
                env.adapter,
                env.capabilities
            ],
        )?;
        Ok(())
    }

    /// Appends records as one Arrow batch, committed before this returns: a `compare` that
    /// calls this per finished cell loses nothing it has reported when it is killed.
    pub fn append(&mut self, records: &[RunRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.append_batch("runs", to_record_batch(records)?)
    }

    /// The appender commits on flush (the connection is in auto-commit mode): one transaction
    /// per call, all rows or none.
    fn append_batch(&self, table: &str, batch: RecordBatch) -> Result<()> {
        let mut appender = self.conn.appender(table)?;
        appender.append_record_batch(batch)?;
        appender.flush()?;
        Ok(())
    }

    /// Records the start of a `compare`, as `running`, before its first cell runs.
    pub fn append_experiment(&mut self, experiment: &ExperimentRecord) -> Result<()> {
        serde_json::from_str::<serde_json::Value>(&experiment.spec).map_err(|e| {
            ResultsError::Invalid(format!("the experiment spec is not JSON ({e}): {}", experiment.spec))
        })?;
        self.append_batch("experiments", experiment_batch(experiment)?)
    }

    /// Marks an experiment finished, with how it ended (and why, for an error).
    pub fn finish_experiment(
        &mut self,
        experiment_id: &str,
        status: ExperimentStatus,
        error: Option<&str>,
        finished_at: DateTime<Utc>,
    ) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE experiments SET status = ?, error = ?, finished_at = CAST(? AS TIMESTAMP) WHERE experiment_id = ?",
            duckdb::params![status.as_str(), error, timestamp_text(finished_at), experiment_id],
        )?;
        if changed == 0 {
            return Err(ResultsError::Invalid(format!(
                "no experiment {experiment_id:?} to finish; append_experiment records it first"
            )));
        }
        Ok(())
    }

    /// Records a finished experiment's wall time and the sum of its cells' times.
    pub fn record_experiment_times(&mut self, experiment_id: &str, wall_ms: f64, cells_ms: f64) -> Result<()> {
        self.conn.execute(
            "UPDATE experiments SET wall_ms = ?, cells_ms = ? WHERE experiment_id = ?",
            duckdb::params![wall_ms, cells_ms, experiment_id],
        )?;
        Ok(())
    }

    /// Writes a row's accuracy columns in their own commit (the row itself was committed before
    /// its reference ran).
    pub fn update_accuracy(&mut self, update: &AccuracyUpdate) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE runs SET accuracy_cosine = ?, accuracy_max_abs_error = ?, accuracy_top1_agree = ?, \
             accuracy_tokens_leading = ?, accuracy_tokens_share = ?, accuracy_wer = ?, accuracy_reference = ? \
             WHERE run_id = ?",
            duckdb::params![
                update.cosine,
                update.max_abs_error,
                update.top1_agree,
                update.tokens_leading,
                update.tokens_share,
                update.wer,
                update.reference,
                update.run_id
            ],
        )?;
        if changed == 0 {
            return Err(ResultsError::Invalid(format!("no run {:?} to update; append it first", update.run_id)));
        }
        Ok(())
    }

    pub fn count_runs(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT count(*) FROM runs", [], |row| row.get(0))?)
    }

    /// Runs one SQL statement and returns its result as Arrow, as DuckDB produces it (no
    /// per-row conversion). Bad SQL is an error that quotes the query.
    pub fn query_arrow(&self, sql: &str) -> Result<QueryResult> {
        query_arrow(&self.conn, sql)
    }

    /// Writes the rows of `sql` (any query, or `SELECT * FROM runs`) to `path` as Parquet, CSV
    /// or Arrow IPC; returns how many rows. The file appears whole or not at all.
    pub fn export(&self, sql: &str, path: &Path, format: ExportFormat) -> Result<u64> {
        export_query(&self.conn, sql, path, format)
    }

    /// Runs one SQL statement and returns its result as a [`Frame`] (a Polars DataFrame).
    pub fn sql(&self, sql: &str) -> Result<Frame> {
        Frame::from_query(self.query_arrow(sql)?)
    }

    /// Runs one *read* statement, as users' `sql()` does: DuckDB classifies it (see
    /// `database.rs`), anything but a read is refused before it runs, and the read itself runs
    /// in a transaction that is rolled back, so that nothing it might reach can change the file.
    pub fn read_sql(&self, sql: &str) -> Result<Frame> {
        self.check_read(sql)?;
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let result = self.query_arrow(sql);
        let rolled_back = self.conn.execute_batch("ROLLBACK");
        let result = result?;
        rolled_back?;
        Frame::from_query(result)
    }

    /// Whether `sql` is one statement that only reads.
    pub fn check_read(&self, sql: &str) -> Result<()> {
        let failed = |reason: String| ResultsError::Query { sql: sql.trim().to_string(), reason };
        let refuse = |kind: String| ResultsError::NotRead { sql: sql.trim().to_string(), kind };
        match self.db.statement_kinds(sql).map_err(failed)?.as_slice() {
            [] => Err(failed("there is no statement in it".into())),
            [StatementKind::Select] => Ok(()),
            // EXPLAIN ANALYZE runs its statement: what it explains must be a read too.
            [StatementKind::Explain] => match self.db.statement_kinds(explained(sql)).map_err(failed)?.as_slice() {
                [StatementKind::Select] => Ok(()),
                [StatementKind::Other(kind)] => Err(refuse(format!("EXPLAIN of {kind}"))),
                _ => Err(refuse("an EXPLAIN of something other than a query".into())),
            },
            [StatementKind::Other(kind)] => Err(refuse(kind.to_string())),
            _ => Err(failed("it holds several statements; sql() runs one at a time".into())),
        }
    }

    /// Every row of one experiment, in grid order.
    pub fn experiment_runs(&self, experiment_id: &str) -> Result<Frame> {
        self.sql(&format!(
            "SELECT * FROM runs WHERE experiment_id = {} ORDER BY cell_index, repetition, ts",
            sql_string(experiment_id)
        ))
    }

    /// The summary of one experiment (see `stats::summarize_frame`; `SummaryOptions::latency_grid`
    /// gives the usual grid). A row without raw timings (`latencies_ms`) counts its median
    /// `latency_ms` as one sample; failed rows count in `errors`.
    pub fn experiment_summary(&self, experiment_id: &str, options: &SummaryOptions) -> Result<Frame> {
        let rows = self.sql(&format!(
            "SELECT * REPLACE (coalesce(latencies_ms, [latency_ms]) AS latencies_ms) FROM runs
             WHERE experiment_id = {} ORDER BY cell_index, repetition, ts",
            sql_string(experiment_id)
        ))?;
        summarize_frame(&rows, options)
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The statement an EXPLAIN explains: the text after `EXPLAIN`, `ANALYZE` and a parenthesised
/// option list. Only called on what DuckDB already said is an EXPLAIN.
fn explained(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    for word in ["explain", "analyze", "analyse"] {
        if rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word) {
            rest = rest[word.len()..].trim_start();
        }
    }
    if rest.starts_with('(') {
        if let Some(end) = rest.find(')') {
            rest = rest[end + 1..].trim_start();
        }
    }
    rest
}

/// DuckDB's text form of a timestamp; microseconds, as the column stores them.
fn timestamp_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Executes `sql` on `conn` and collects its Arrow batches. `Statement::step` returns errors,
/// where the crate's batch iterators panic on them.
pub(crate) fn query_arrow(conn: &Connection, sql: &str) -> Result<QueryResult> {
    let failed = |e: duckdb::Error| ResultsError::Query { sql: sql.trim().to_string(), reason: e.to_string() };
    let mut stmt = conn.prepare(sql).map_err(failed)?;
    stmt.execute([]).map_err(failed)?;
    let schema = stmt.schema();
    let mut batches = Vec::new();
    while let Some(chunk) = stmt.step().map_err(failed)? {
        let batch = RecordBatch::from(&chunk);
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    Ok(QueryResult { schema, batches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunStatus;
    use chrono::Utc;

    use crate::fixtures::record;

    #[test]
    fn rows_round_trip_through_a_duckdb_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/results.duckdb");
        {
            let mut store = ResultStore::open(&path).unwrap();
            store.append(&[record("a", RunStatus::Ok), record("b", RunStatus::Error)]).unwrap();
        }
        // Reopen: the schema is not recreated and the rows are still there.
        let store = ResultStore::open(&path).unwrap();
        assert_eq!(store.count_runs().unwrap(), 2);
        let (ts, latency, err, adapter): (String, Option<f64>, Option<String>, String) = store
            .connection()
            .query_row(
                "SELECT strftime(ts, '%Y-%m-%d %H:%M:%S.%f'), latency_ms, error, adapter_info->>'vendor' FROM runs WHERE run_id = 'b'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(ts, "2026-11-27 03:04:05.000123");
        assert_eq!(latency, None);
        assert_eq!(err.as_deref(), Some("boom <b>&</b>"));
        assert_eq!(adapter, "google");
        let version: i32 =
            store.connection().query_row("SELECT version FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_version_1_file_is_upgraded_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.duckdb");
        {
            // A file as version 1 of webaccel left it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1); {}
                 INSERT INTO runs (run_id, ts, model_name, model_type, platform, browser, status, latency_ms)
                 VALUES ('old', TIMESTAMP '2026-01-01 00:00:00', 'm', 'text', 'wasm', 'chromium', 'ok', 17.5);",
                migration(1).unwrap()
            ))
            .unwrap();
        }
        let mut store = ResultStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store.append(&[record("new", RunStatus::Ok)]).unwrap();
        let rows: Vec<(String, Option<f64>, Option<String>)> = {
            let mut stmt = store
                .connection()
                .prepare("SELECT run_id, latency_ms, fallback_reason FROM runs ORDER BY run_id")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(|r| r.unwrap()).collect()
        };
        assert_eq!(rows[0], ("new".to_string(), Some(18.0), Some("webnn: NotSupportedError".to_string())));
        assert_eq!(rows[1], ("old".to_string(), Some(17.5), None));
    }

    #[test]
    fn a_newer_file_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.duckdb");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);",
            )
            .unwrap();
        }
        let err = ResultStore::open(&path).err().expect("newer schema is refused").to_string();
        assert!(err.contains("99") && err.contains("newer webaccel"), "{err}");
    }

    #[test]
    fn environments_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::open(&dir.path().join("e.duckdb")).unwrap();
        let env = EnvironmentRecord {
            fingerprint: "abc".into(),
            first_seen: Utc::now(),
            browser: "chromium".into(),
            version: Some("Chrome/156".into()),
            executable: Some("/usr/lib/chromium/chromium".into()),
            flags: "[\"--headless=new\"]".into(),
            adapter: Some("{\"vendor\":\"google\"}".into()),
            capabilities: "{}".into(),
        };
        store.record_environment(&env).unwrap();
        store.record_environment(&EnvironmentRecord { browser: "changed".into(), ..env.clone() }).unwrap();
        let (n, browser): (i64, String) = store
            .connection()
            .query_row("SELECT count(*), any_value(browser) FROM environments", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((n, browser.as_str()), (1, "chromium"));
    }

    #[test]
    fn duplicate_run_id_is_rejected_and_earlier_rows_survive() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ResultStore::open(&dir.path().join("r.duckdb")).unwrap();
        store.append(&[record("a", RunStatus::Ok)]).unwrap();
        assert!(store.append(&[record("a", RunStatus::Ok)]).is_err());
        assert_eq!(store.count_runs().unwrap(), 1);
    }

    #[test]
    fn a_version_2_file_is_upgraded_to_the_current_version_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.duckdb");
        {
            // A file as version 2 of webaccel left it: the v1 table plus the v2 migration.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);
                 {} {}
                 INSERT INTO runs (run_id, ts, model_name, model_type, platform, browser, status, latency_ms, fallback_reason)
                 VALUES ('v2row', TIMESTAMP '2026-06-01 00:00:00', 'm', 'text', 'webgpu', 'chromium', 'ok', 9.5, 'none');",
                migration(1).unwrap(),
                migration(2).unwrap()
            ))
            .unwrap();
        }
        let mut store = ResultStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let (latency, reason, cid, list, ops): (f64, String, Option<String>, Option<String>, Option<String>) = store
            .connection()
            .query_row(
                "SELECT latency_ms, fallback_reason, cid, CAST(latencies_ms AS VARCHAR), CAST(op_profile AS VARCHAR)
                 FROM runs WHERE run_id = 'v2row'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!((latency, reason.as_str(), cid, list, ops), (9.5, "none", None, None, None));
        // New rows carry the v3 columns, and the experiments table exists.
        store.append(&[record("v3row", RunStatus::Ok)]).unwrap();
        let (cid, lat, n): (String, String, i64) = store
            .connection()
            .query_row(
                "SELECT cid, CAST(latencies_ms AS VARCHAR), (SELECT count(*) FROM experiments) FROM runs WHERE run_id = 'v3row'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert!(cid.starts_with("bafkrei"));
        assert_eq!((lat.as_str(), n), ("[18.5, 17.25, 18.0, 19.75]", 0));
    }

    #[test]
    fn an_experiment_starts_running_and_finishes_with_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ResultStore::open(&dir.path().join("x.duckdb")).unwrap();
        let started = Utc::now();
        let exp = ExperimentRecord {
            experiment_id: "e1".into(),
            started_at: started,
            spec: r#"{"models":["a","b"],"platforms":["wasm","webgpu"],"runs":10}"#.into(),
        };
        store.append_experiment(&exp).unwrap();
        let status: (String, Option<String>, i64) = store
            .connection()
            .query_row(
                "SELECT status, CAST(finished_at AS VARCHAR), json_array_length(spec->'models') FROM experiments",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(status, ("running".to_string(), None, 2));
        store.finish_experiment("e1", ExperimentStatus::Ok, None, started + chrono::Duration::seconds(3)).unwrap();
        let (status, seconds): (String, f64) = store
            .connection()
            .query_row("SELECT status, epoch(finished_at) - epoch(started_at) FROM experiments", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(status, "ok");
        assert!((seconds - 3.0).abs() < 1e-3, "{seconds}");
        // Unknown ids and specs that are not JSON are errors that say so.
        let err = store.finish_experiment("nope", ExperimentStatus::Error, Some("x"), Utc::now()).unwrap_err();
        assert!(err.to_string().contains("no experiment \"nope\""), "{err}");
        let err = store
            .append_experiment(&ExperimentRecord { spec: "{not json".into(), ..exp.clone() })
            .unwrap_err()
            .to_string();
        assert!(err.contains("not JSON"), "{err}");
    }

    #[test]
    fn sql_for_users_reads_and_cannot_erase_or_alter_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ResultStore::open(&dir.path().join("r.duckdb")).unwrap();
        store.append(&[record("a", RunStatus::Ok), record("b", RunStatus::Ok)]).unwrap();
        for read in [
            "select count(*) from runs",
            "with x as (select * from runs) select count(*) from x",
            "describe runs",
            "show tables",
            "summarize runs",
            "pragma table_info('runs')",
            "explain select * from runs",
            "explain analyze select count(*) from runs",
            "from runs",
        ] {
            store.read_sql(read).unwrap_or_else(|e| panic!("{read}: {e}"));
        }
        for (write, kind) in [
            ("delete from runs", "DELETE"),
            ("DELETE FROM runs WHERE true", "DELETE"),
            ("update runs set latency_ms = 0", "UPDATE"),
            ("insert into runs select * from runs", "INSERT"),
            ("drop table runs", "DROP"),
            ("create table x as select 1", "CREATE"),
            ("alter table runs drop column latency_ms", "ALTER"),
            ("copy runs to '/tmp/webaccel-never.csv'", "COPY"),
            ("attach ':memory:' as m", "ATTACH"),
            ("set threads = 1", "SET"),
            ("pragma enable_profiling", "PRAGMA"),
            ("checkpoint", "CALL"),
            ("explain analyze delete from runs", "EXPLAIN of DELETE"),
        ] {
            let err = store.read_sql(write).unwrap_err().to_string();
            assert!(err.contains("read statements only") && err.contains(kind), "{write}: {err}");
            assert!(err.contains(".export(path, format)") && err.contains(".to_parquet(path)"), "{err}");
        }
        let err = store.read_sql("select 1; delete from runs").unwrap_err().to_string();
        assert!(err.contains("several statements"), "{err}");
        assert!(store.read_sql("select * from query('delete from runs')").is_err());
        assert_eq!(store.count_runs().unwrap(), 2, "every row is still there");
        assert!(!Path::new("/tmp/webaccel-never.csv").exists());
    }

    #[test]
    fn bad_sql_is_an_error_that_quotes_the_query() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::open(&dir.path().join("q.duckdb")).unwrap();
        for (sql, says) in [
            ("SELEC * FROM runs", "syntax error"),
            ("SELECT nope FROM runs", "nope"),
            // Fails while executing, not while preparing.
            ("SELECT CAST('x' || run_id AS INTEGER) FROM runs UNION ALL SELECT CAST('y' AS INTEGER)", "Conversion"),
        ] {
            let err = store.query_arrow(sql).unwrap_err();
            assert!(matches!(err, ResultsError::Query { .. }), "{err:?}");
            let text = err.to_string();
            assert!(text.contains(sql) && text.contains(says), "{text}");
            assert!(store.sql(sql).is_err());
        }
    }

    #[test]
    fn an_empty_result_keeps_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResultStore::open(&dir.path().join("q.duckdb")).unwrap();
        let result = store.query_arrow("SELECT run_id, latency_ms, latencies_ms FROM runs").unwrap();
        assert_eq!(result.num_rows(), 0);
        let names: Vec<_> = result.schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["run_id", "latency_ms", "latencies_ms"]);
        let frame = store.sql("SELECT run_id, latency_ms, latencies_ms FROM runs").unwrap();
        assert_eq!(
            (frame.height(), frame.column_names()),
            (0, vec!["run_id".into(), "latency_ms".into(), "latencies_ms".into()])
        );
    }

    #[test]
    fn this_process_cannot_open_the_same_file_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("once.duckdb");
        let first = ResultStore::open(&path).unwrap();
        let err = ResultStore::open(&path).err().expect("a second open is refused");
        let text = err.to_string();
        assert!(matches!(err, ResultsError::Locked { .. }), "{err:?}");
        assert!(text.contains("once.duckdb") && text.contains("this process"), "{text}");
        // Waiting does not help while this process holds it, and says how long it waited.
        let err = ResultStore::open_with_timeout(&path, Duration::from_millis(150)).err().unwrap();
        assert!(matches!(err, ResultsError::LockTimeout { waited, .. } if waited >= Duration::from_millis(150)));
        drop(first);
        ResultStore::open(&path).expect("free again once the first store is dropped");
    }

    #[test]
    fn an_experiments_summary_pools_its_rows_and_counts_failures() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ResultStore::open(&dir.path().join("s.duckdb")).unwrap();
        let row = |id: &str, platform: &str, cell: i32, rep: i32, samples: Option<Vec<f64>>, latency: Option<f64>| {
            RunRecord {
                run_id: id.into(),
                model_name: "m".into(),
                platform: platform.into(),
                browser: "chromium".into(),
                precision: Some(8),
                experiment_id: Some("e".into()),
                cell_index: Some(cell),
                repetition: Some(rep),
                latencies_ms: samples,
                latency_ms: latency,
                ..RunRecord::default()
            }
        };
        let mut failed = row("f", "webnn", 2, 0, None, None);
        failed.status = RunStatus::Error;
        failed.error = Some("WebNN is not supported on this platform".into());
        store
            .append(&[
                row("a", "wasm", 0, 0, Some(vec![30.0, 32.0]), Some(31.0)),
                row("b", "wasm", 0, 1, Some(vec![34.0]), Some(34.0)),
                // No raw timings: its median is one sample.
                row("c", "webgpu", 1, 0, None, Some(16.0)),
                failed,
                row("other", "wasm", 0, 0, Some(vec![1.0]), Some(1.0)),
            ])
            .unwrap();
        store.connection().execute("UPDATE runs SET experiment_id = 'x' WHERE run_id = 'other'", []).unwrap();
        assert_eq!(store.experiment_runs("e").unwrap().height(), 4);
        let s = store.experiment_summary("e", &SummaryOptions::latency_grid(Some("wasm"))).unwrap();
        let platforms: Vec<_> = s.text_column("platform").unwrap().into_iter().flatten().collect();
        assert_eq!(platforms, ["wasm", "webgpu", "webnn"]);
        assert_eq!(s.f64_column("n").unwrap(), [Some(3.0), Some(1.0), Some(0.0)]);
        assert_eq!(s.f64_column("median").unwrap(), [Some(32.0), Some(16.0), None]);
        assert_eq!(s.f64_column("speedup").unwrap(), [Some(1.0), Some(2.0), None]);
        assert_eq!(s.f64_column("errors").unwrap(), [Some(0.0), Some(0.0), Some(1.0)]);
        assert_eq!(store.experiment_runs("it's not there").unwrap().height(), 0);
    }

    #[test]
    fn frames_and_plots_can_cross_threads() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Frame>();
        shareable::<crate::plot::Plot>();
        fn sendable<T: Send>() {}
        sendable::<ResultStore>();
    }
}
