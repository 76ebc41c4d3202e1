//! The DuckDB file that holds every run. Rows go in as Arrow batches through DuckDB's
//! appender; the schema is created on first use.

use std::path::{Path, PathBuf};

use duckdb::Connection;

use crate::error::{Result, ResultsError};
use crate::record::{EnvironmentRecord, RunRecord};
use crate::schema::{migration, to_record_batch, SCHEMA_VERSION};

pub struct ResultStore {
    path: PathBuf,
    conn: Connection,
}

impl ResultStore {
    /// `WEBACCEL_DB`, else `results.duckdb` in the user's data directory.
    pub fn default_path() -> PathBuf {
        if let Some(path) = std::env::var_os("WEBACCEL_DB") {
            return PathBuf::from(path);
        }
        dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("webaccel").join("results.duckdb")
    }

    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| ResultsError::CreateDir { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| ResultsError::Open { path: path.to_path_buf(), reason: e.to_string() })?;
        let store = ResultStore { path: path.to_path_buf(), conn };
        store.ensure_schema()?;
        Ok(store)
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
                env.first_seen.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
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

    /// Appends records as one Arrow batch and flushes, so the rows are durable on return.
    pub fn append(&mut self, records: &[RunRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = to_record_batch(records)?;
        let mut appender = self.conn.appender("runs")?;
        appender.append_record_batch(batch)?;
        appender.flush()?;
        Ok(())
    }

    pub fn count_runs(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT count(*) FROM runs", [], |row| row.get(0))?)
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunStatus;
    use chrono::{TimeZone, Utc};

    fn record(id: &str, status: RunStatus) -> RunRecord {
        RunRecord {
            run_id: id.to_string(),
            ts: Utc.with_ymd_and_hms(2026, 11, 27, 3, 4, 5).unwrap() + chrono::Duration::microseconds(123),
            model_name: "all-minilm-l6-v2".into(),
            model_type: "text_embedding".into(),
            model_sha256: Some("abc".into()),
            model_file: None,
            precision: Some(8),
            weights_dtype: Some("int8".into()),
            compute_dtype: Some("fp32".into()),
            platform: "wasm".into(),
            device: None,
            browser: "chromium".into(),
            browser_version: Some("Chrome/156".into()),
            batch_size: Some(2),
            session_create_ms: Some(120.5),
            session_reused: Some(false),
            first_run_ms: Some(30.25),
            latency_ms: if status == RunStatus::Ok { Some(18.0) } else { None },
            p90_ms: None,
            runs: Some(10),
            throughput_items_per_s: Some(111.1),
            status,
            error: (status == RunStatus::Error).then(|| "boom".to_string()),
            adapter_info: Some(r#"{"vendor":"google"}"#.into()),
            requested_platform: Some("webnn".into()),
            fallback_reason: Some("webnn: NotSupportedError".into()),
            selection_reason: Some("text on webnn prefers edge".into()),
            environment_fingerprint: Some("f00".into()),
            precompile_ms: Some(12.5),
            memory_bytes: Some(1 << 33),
            memory_source: Some("measureUserAgentSpecificMemory".into()),
            energy_joules: None,
            ..RunRecord::default()
        }
    }

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
        assert_eq!(err.as_deref(), Some("boom"));
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
}
