//! Private files: the data directory is created `0700`, and the key file written `0600` (the ledger file is
//! created `0600` by the engine's SQLite store), so no other local user reads keys or spend.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Create `dir` (and its parents) if missing; the directory itself `0700` when created here.
///
/// # Errors
/// It cannot be created.
pub fn private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))
}

/// Write `bytes` to a new file `path` readable by its owner only (`0600`), replacing one left over.
///
/// # Errors
/// It cannot be written.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/data");
        private_dir(&d).unwrap();
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let f = d.join("keys.json");
        write_private(&f, b"{}").unwrap();
        write_private(&f, b"{\"k\":1}").unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read(&f).unwrap(), b"{\"k\":1}");
    }
}
