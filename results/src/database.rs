//! The results file's database handle, opened by webaccel itself rather than by the `duckdb`
//! crate, so that besides the crate's connection it can hold a second, raw one for asking DuckDB
//! what kind of statement a query is.
//!
//! `sql()` must run read statements only, and "read" is DuckDB's own verdict: the statement
//! type of the prepared statement (the C API's `duckdb_prepared_statement_type`), which the
//! crate does not expose. A keyword match would be wrong both ways (`WITH ... DELETE`, `PRAGMA
//! table_info` is a read, `PRAGMA threads` is not); preparing binds and plans the statement
//! against the real catalog but executes nothing.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;

use duckdb::{ffi, Connection};

/// What DuckDB says a statement is, for the decisions `sql()` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// SELECT, WITH, VALUES, FROM, and what DuckDB rewrites to a select: DESCRIBE, SHOW,
    /// SUMMARIZE and the read-only PRAGMAs (table_info, database_size, ...).
    Select,
    Explain,
    /// Anything else, by DuckDB's name for it (INSERT, DELETE, COPY, PRAGMA, SET, ATTACH, ...).
    Other(&'static str),
}

fn kind_of(t: ffi::duckdb_statement_type) -> StatementKind {
    use StatementKind::*;
    match t {
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT => Select,
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => Explain,
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT => Other("INSERT"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE => Other("UPDATE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE => Other("DELETE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE => Other("CREATE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC => Other("CREATE FUNCTION"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER => Other("ALTER"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP => Other("DROP"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY => Other("COPY"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => Other("COPY DATABASE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT => Other("EXPORT"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA => Other("PRAGMA"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET => Other("SET"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => Other("SET VARIABLE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL => Other("CALL"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH => Other("ATTACH"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH => Other("DETACH"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION => Other("a transaction statement"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VACUUM => Other("VACUUM"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ANALYZE => Other("ANALYZE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD => Other("LOAD"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXTENSION => Other("INSTALL"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE_EXTENSIONS => Other("UPDATE EXTENSIONS"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO => Other("MERGE INTO"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PREPARE => Other("PREPARE"),
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXECUTE => Other("EXECUTE"),
        _ => Other("a statement of another kind"),
    }
}

/// The open database, and the raw connection that classifies statements.
pub(crate) struct Database {
    db: ffi::duckdb_database,
    classifier: ffi::duckdb_connection,
}

// SAFETY: DuckDB's database and connection handles may be used from any thread; webaccel uses
// them from one at a time (the store is behind a mutex, or owned by one thread).
unsafe impl Send for Database {}

fn text(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        return "DuckDB gave no reason".into();
    }
    // SAFETY: DuckDB returns NUL-terminated strings, valid until the object they belong to is freed.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Database {
    /// Opens (creating) the file; the error is DuckDB's own text (which names a lock's holder).
    pub fn open(path: &Path) -> Result<Self, String> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| "the path holds a NUL byte".to_string())?;
        let mut db: ffi::duckdb_database = ptr::null_mut();
        let mut error: *mut std::os::raw::c_char = ptr::null_mut();
        // SAFETY: valid out-pointers; a null config means DuckDB's defaults.
        let state = unsafe { ffi::duckdb_open_ext(c_path.as_ptr(), &mut db, ptr::null_mut(), &mut error) };
        if state != ffi::DuckDBSuccess {
            let reason = text(error);
            // SAFETY: the error string was allocated by DuckDB and is ours to free.
            unsafe {
                if !error.is_null() {
                    ffi::duckdb_free(error.cast());
                }
                ffi::duckdb_close(&mut db);
            }
            return Err(reason);
        }
        let mut classifier: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: `db` is open.
        if unsafe { ffi::duckdb_connect(db, &mut classifier) } != ffi::DuckDBSuccess {
            // SAFETY: closing what was opened above.
            unsafe { ffi::duckdb_close(&mut db) };
            return Err("could not open a connection".into());
        }
        Ok(Database { db, classifier })
    }

    /// A `duckdb` crate connection to this database (which does not close it: `Drop` does).
    pub fn connection(&self) -> duckdb::Result<Connection> {
        // SAFETY: `db` stays open until this Database is dropped, and the store drops its
        // connection first.
        unsafe { Connection::open_from_raw(self.db) }
    }

    /// The kind of each statement in `sql`, as DuckDB prepares it; DuckDB's error for SQL that
    /// does not parse or bind.
    pub fn statement_kinds(&self, sql: &str) -> Result<Vec<StatementKind>, String> {
        let c_sql = CString::new(sql).map_err(|_| "the query holds a NUL byte".to_string())?;
        let mut extracted: ffi::duckdb_extracted_statements = ptr::null_mut();
        // SAFETY: a valid connection and NUL-terminated text.
        let count = unsafe { ffi::duckdb_extract_statements(self.classifier, c_sql.as_ptr(), &mut extracted) };
        let result = if count == 0 {
            // SAFETY: `extracted` holds the error when nothing was extracted.
            let error = unsafe { ffi::duckdb_extract_statements_error(extracted) };
            if error.is_null() {
                Ok(vec![])
            } else {
                Err(text(error))
            }
        } else {
            (0..count)
                .map(|i| {
                    let mut stmt: ffi::duckdb_prepared_statement = ptr::null_mut();
                    // SAFETY: `i` is below the count DuckDB returned; the statement is destroyed
                    // before the next one is prepared.
                    unsafe {
                        let state = ffi::duckdb_prepare_extracted_statement(self.classifier, extracted, i, &mut stmt);
                        let kind = if state == ffi::DuckDBSuccess {
                            Ok(kind_of(ffi::duckdb_prepared_statement_type(stmt)))
                        } else {
                            Err(text(ffi::duckdb_prepare_error(stmt)))
                        };
                        ffi::duckdb_destroy_prepare(&mut stmt);
                        kind
                    }
                })
                .collect()
        };
        // SAFETY: destroying what extract allocated, once.
        unsafe { ffi::duckdb_destroy_extracted(&mut extracted) };
        result
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: each handle is released once; the crate's connection is gone by now.
        unsafe {
            ffi::duckdb_disconnect(&mut self.classifier);
            ffi::duckdb_close(&mut self.db);
        }
    }
}
