//! The local content store: whole files, each named by its root CID, under the user's cache
//! directory.
//!
//! - Files enter only through [`Pending::commit`]: written to a temporary file in the store's
//!   own `tmp/` (same filesystem), flushed to disk, then renamed into `files/`. A reader never
//!   sees a partial file, and a crash leaves at most a stray temporary file (swept on open).
//! - The store holds only verified content: the gateway client commits a file after every block
//!   matched its CID, and `add` names a file by the CID computed from its bytes.
//! - Least-recently-used eviction keeps the total under `max_bytes`. "Used" is the file's
//!   access time, which the store sets itself on every hit (explicitly, so `noatime` mounts do
//!   not matter) and which several processes share without an index file to lock.

use std::fs::{self, File, FileTimes};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cid::Cid;
use crate::importer::{import, ImportError, ImportSettings, Imported};

/// Default size limit: room for a good number of models, small next to today's disks.
pub const DEFAULT_MAX_BYTES: u64 = 20 * 1024 * 1024 * 1024;
/// Temporary files older than this were left by a killed process.
const STALE_TMP: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the IPFS store at {dir} cannot be used: {source}; set WEBACCEL_IPFS_DIR to a writable directory")]
    Open { dir: PathBuf, source: io::Error },
    #[error("WEBACCEL_IPFS_MAX_BYTES must be a number of bytes (optionally with K, M or G), not {0:?}")]
    BadLimit(String),
    #[error("store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Input { path: PathBuf, source: io::Error },
    #[error("importing {path}: {source}")]
    Import { path: PathBuf, source: ImportError },
}

/// A handle on the store directory; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_bytes: u64,
}

/// What the store holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    pub dir: PathBuf,
    pub files: u64,
    pub bytes: u64,
    pub max_bytes: u64,
}

impl Store {
    /// Opens (creating) a store in `dir` that keeps at most `max_bytes`.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Store, StoreError> {
        let dir = dir.into();
        let open_err = |source| StoreError::Open { dir: dir.clone(), source };
        fs::create_dir_all(dir.join("files")).map_err(open_err)?;
        fs::create_dir_all(dir.join("tmp")).map_err(open_err)?;
        let store = Store { inner: Arc::new(Inner { dir, max_bytes }) };
        store.sweep_stale_tmp();
        Ok(store)
    }

    /// The store under `WEBACCEL_IPFS_DIR` (default: `<cache>/webaccel/ipfs`), limited to
    /// `WEBACCEL_IPFS_MAX_BYTES` (default 20 GiB).
    pub fn open_default() -> Result<Store, StoreError> {
        let max = match std::env::var("WEBACCEL_IPFS_MAX_BYTES") {
            Ok(text) => parse_size(&text).ok_or(StoreError::BadLimit(text))?,
            Err(_) => DEFAULT_MAX_BYTES,
        };
        Store::open(Store::default_dir(), max)
    }

    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("WEBACCEL_IPFS_DIR") {
            return dir.into();
        }
        let cache = std::env::var_os("WEBACCEL_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("webaccel"));
        cache.join("ipfs")
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.inner.max_bytes
    }

    fn path_of(&self, cid: &Cid) -> PathBuf {
        // CIDv1 base32 is the canonical text form; v0 CIDs keep theirs (still unique).
        self.inner.dir.join("files").join(cid.to_string())
    }

    /// The stored file for `cid`, marked as just used; None if absent.
    pub fn get(&self, cid: &Cid) -> Option<PathBuf> {
        let path = self.path_of(cid);
        let file = File::open(&path).ok()?;
        // Failing to mark use only makes eviction less exact; the hit is still good.
        let _ = file.set_times(FileTimes::new().set_accessed(SystemTime::now()));
        Some(path)
    }

    /// Whether `cid` is stored, without marking it used.
    pub fn contains(&self, cid: &Cid) -> bool {
        self.path_of(cid).is_file()
    }

    /// A temporary file to fill; [`Pending::commit`] moves it into the store.
    pub fn begin(&self) -> Result<Pending, StoreError> {
        let tmp = self.inner.dir.join("tmp");
        let file = tempfile::Builder::new()
            .prefix("fetch-")
            .suffix(".part")
            .tempfile_in(&tmp)
            .map_err(|source| StoreError::Io { path: tmp, source })?;
        Ok(Pending { store: self.clone(), file })
    }

    /// Imports the file at `path` (computing its CID with `settings`) and stores a copy, in
    /// one pass over the input.
    pub fn add_file(&self, path: &Path, settings: ImportSettings) -> Result<(Imported, PathBuf), StoreError> {
        let input = File::open(path).map_err(|source| StoreError::Input { path: path.to_path_buf(), source })?;
        let pending = self.begin()?;
        let tee = Tee { input: BufReader::with_capacity(1 << 20, input), copy: pending.file.as_file() };
        let imported = import(tee, settings, |_, _| Ok(()))
            .map_err(|source| StoreError::Import { path: path.to_path_buf(), source })?;
        let stored = pending.commit(&imported.cid)?;
        Ok((imported, stored))
    }

    /// Files, bytes and the limit.
    pub fn stats(&self) -> StoreStats {
        let entries = self.entries();
        StoreStats {
            dir: self.inner.dir.clone(),
            files: entries.len() as u64,
            bytes: entries.iter().map(|e| e.bytes).sum(),
            max_bytes: self.inner.max_bytes,
        }
    }

    fn entries(&self) -> Vec<Entry> {
        let Ok(dir) = fs::read_dir(self.inner.dir.join("files")) else { return Vec::new() };
        dir.filter_map(|e| {
            let e = e.ok()?;
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| Entry {
                path: e.path(),
                bytes: meta.len(),
                used: meta.accessed().or_else(|_| meta.modified()).unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect()
    }

    /// Removes least-recently-used files until the total fits `max_bytes`, never `keep` (the
    /// file just stored: a model larger than the limit is still served, with a warning).
    fn evict(&self, keep: &Path) -> Vec<PathBuf> {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        entries.sort_by_key(|e| e.used);
        let mut evicted = Vec::new();
        for entry in entries {
            if total <= self.inner.max_bytes {
                break;
            }
            if entry.path == keep {
                continue;
            }
            match fs::remove_file(&entry.path) {
                Ok(()) => {
                    total -= entry.bytes;
                    tracing::debug!(path = %entry.path.display(), "evicted from the IPFS store");
                    evicted.push(entry.path);
                }
                Err(e) => tracing::warn!(path = %entry.path.display(), "could not evict: {e}"),
            }
        }
        if total > self.inner.max_bytes {
            tracing::warn!(
                "the IPFS store holds {total} bytes, over its {} byte limit: {} alone is larger than the rest allows",
                self.inner.max_bytes,
                keep.display()
            );
        }
        evicted
    }

    fn sweep_stale_tmp(&self) {
        let Ok(dir) = fs::read_dir(self.inner.dir.join("tmp")) else { return };
        for e in dir.flatten() {
            let stale =
                e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TMP));
            if stale {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

struct Entry {
    path: PathBuf,
    bytes: u64,
    used: SystemTime,
}

/// A file being written for the store. Dropped without `commit`, it is deleted.
pub struct Pending {
    store: Store,
    file: tempfile::NamedTempFile,
}

impl Pending {
    pub fn file(&self) -> &File {
        self.file.as_file()
    }

    /// A second handle on the same open file (for positioned writes from other threads).
    pub fn handle(&self) -> io::Result<File> {
        self.file.as_file().try_clone()
    }

    /// Flushes the file to disk, names it `cid` in the store, and evicts what no longer fits.
    /// The caller vouches that the content is `cid`'s (verified or computed).
    pub fn commit(self, cid: &Cid) -> Result<PathBuf, StoreError> {
        let dest = self.store.path_of(cid);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        // Without the sync, a crash after the rename could leave an empty or partial file under
        // a CID name, which every later run would trust.
        self.file.as_file().sync_all().map_err(io_err(self.file.path()))?;
        self.file.as_file().set_times(FileTimes::new().set_accessed(SystemTime::now())).ok();
        self.file.persist(&dest).map_err(|e| StoreError::Io { path: dest.clone(), source: e.error })?;
        self.store.evict(&dest);
        Ok(dest)
    }
}

/// Reads from `input` and copies what it read to `copy`.
struct Tee<'a, R> {
    input: R,
    copy: &'a File,
}

impl<R: io::Read> io::Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        io::Write::write_all(&mut self.copy, &buf[..n])?;
        Ok(n)
    }
}

/// "20G", "512M", "1048576": a size in bytes with an optional binary suffix.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::raw_cid;

    fn put(store: &Store, data: &[u8]) -> Cid {
        let cid = raw_cid(data);
        let pending = store.begin().unwrap();
        io::Write::write_all(&mut pending.file(), data).unwrap();
        pending.commit(&cid).unwrap();
        cid
    }

    #[test]
    fn commit_is_atomic_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let pending = store.begin().unwrap();
        io::Write::write_all(&mut pending.file(), b"half").unwrap();
        let cid = raw_cid(b"half written");
        assert!(!store.contains(&cid), "nothing is visible before commit");
        drop(pending);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "an abandoned write is removed");
        let cid = put(&store, b"whole");
        assert_eq!(fs::read(store.get(&cid).unwrap()).unwrap(), b"whole");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 300).unwrap();
        let a = put(&store, &[1; 100]);
        let b = put(&store, &[2; 100]);
        let c = put(&store, &[3; 100]);
        // Use a, so b is now the least recently used; a fourth file must push b out.
        std::thread::sleep(Duration::from_millis(10));
        assert!(store.get(&a).is_some());
        let d = put(&store, &[4; 100]);
        assert!(!store.contains(&b), "b was least recently used");
        for kept in [a, c, d] {
            assert!(store.contains(&kept));
        }
        assert_eq!(store.stats().bytes, 300);
        // One file over the limit is kept (it was asked for) and everything else goes.
        let big = put(&store, &[5; 400]);
        assert!(store.contains(&big));
        assert_eq!(store.stats().files, 1);
    }

    #[test]
    fn add_file_stores_the_bytes_under_their_cid() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s"), 1 << 30).unwrap();
        let input = dir.path().join("in");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&input, &data).unwrap();
        let (imported, path) = store.add_file(&input, ImportSettings::default()).unwrap();
        assert_eq!(imported.bytes, data.len() as u64);
        assert_eq!(fs::read(&path).unwrap(), data);
        assert_eq!(store.get(&imported.cid).unwrap(), path);
        let err = store.add_file(&dir.path().join("missing"), ImportSettings::default()).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("20G"), Some(20 << 30));
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("lots"), None);
    }
}
