//! The models directory on disk, and the sha256 check every file passes before it is used.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::error::{ModelError, Result};

pub struct ModelsDir {
    root: PathBuf,
    /// Files already hashed in this process, keyed by path, with the (size, mtime) they had:
    /// re-hashing 20-70 MB on every call would dominate short runs.
    verified: Mutex<HashMap<PathBuf, (u64, SystemTime)>>,
}

impl ModelsDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelsDir { root: root.into(), verified: Mutex::new(HashMap::new()) }
    }

    /// `WEBACCEL_MODELS`, else `$WEBACCEL_CACHE/models`, else the user's cache directory.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("WEBACCEL_MODELS") {
            return PathBuf::from(dir);
        }
        if let Some(cache) = std::env::var_os("WEBACCEL_CACHE") {
            return PathBuf::from(cache).join("models");
        }
        dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("webaccel").join("models")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where scripts/prepare_models.py puts a derived variant.
    pub fn derived_path(&self, model: &str, method: &str) -> PathBuf {
        self.root.join("derived").join(model).join(format!("{method}.onnx"))
    }

    /// Where scripts/prepare_models.py puts a sidecar (a tokenizer, generation settings).
    pub fn sidecar_path(&self, model: &str, method: &str) -> PathBuf {
        self.root.join("derived").join(model).join(format!("{method}.json"))
    }

    /// The reason preparation recorded for a variant it could not make, from
    /// `derived/manifest.json`.
    pub fn preparation_failure(&self, model: &str, method: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.root.join("derived").join("manifest.json")).ok()?;
        let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
        let entry = manifest.get("variants")?.get(format!("{model}/{method}"))?;
        (entry.get("status")?.as_str()? != "ok").then(|| entry.get("reason")?.as_str().map(str::to_string))?
    }

    pub fn verify(&self, path: &Path, expected: &str) -> Result<()> {
        let meta = std::fs::metadata(path).map_err(|_| ModelError::FileMissing { path: path.to_path_buf() })?;
        let stamp = (meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        if self.verified.lock().expect("verified map poisoned").get(path) == Some(&stamp) {
            return Ok(());
        }
        let actual = sha256_file(path)?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(ModelError::HashMismatch { path: path.to_path_buf(), expected: expected.to_string(), actual });
        }
        self.verified.lock().expect("verified map poisoned").insert(path.to_path_buf(), stamp);
        Ok(())
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampered_file_is_rejected_with_both_sums() {
        let dir = std::env::temp_dir().join(format!("webaccel-files-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.onnx");
        std::fs::write(&path, b"abc").unwrap();
        let models = ModelsDir::new(&dir);
        // sha256("abc")
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        models.verify(&path, good).unwrap();
        std::fs::write(&path, b"abd!").unwrap();
        let err = models.verify(&path, good).unwrap_err().to_string();
        assert!(err.contains(good) && err.contains("delete it"), "{err}");
        assert!(matches!(models.verify(&dir.join("absent"), good), Err(ModelError::FileMissing { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
