//! Reading a policy directory as one consistent set of files, and its digest.
//!
//! A policy directory holds `model.conf`, `global.csv` and `tenants/<tenant>.csv` (other files,
//! such as `README.md` and `tests/`, are not policy and not part of the digest). Files may
//! change while they are read, so a read is only accepted when two reads in a row agree:
//!
//! - the directory path is resolved once per read (`canonicalize`), so a deployment that
//!   swaps a symlink to a new directory (`ln -sfn v42 policies`, as Kubernetes does for
//!   ConfigMaps) is read either wholly before or wholly after the swap;
//! - every file is then read twice; a difference (a file rewritten in between, a file
//!   vanished with the old directory) means "try again", up to [`MAX_ATTEMPTS`] times.
//!
//! Editing several files in place (an editor, `git pull`) is not atomic: a read between two
//! writes sees one change without the other, and the watcher's debounce only makes that
//! unlikely. Operators who change several files at once deploy by symlink swap.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{PolicyError, PolicyErrors};

/// How many times a read is retried while the files keep changing.
const MAX_ATTEMPTS: usize = 5;
pub(crate) const MODEL_FILE: &str = "model.conf";
pub(crate) const GLOBAL_FILE: &str = "global.csv";
pub(crate) const TENANTS_DIR: &str = "tenants";

/// The digest of a policy: blake3 over the relative path and contents of every policy file,
/// in path order. It changes exactly when a policy file's content, name or presence does
/// (touching a file changes nothing), and it is what audit records name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyDigest([u8; 32]);

impl PolicyDigest {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The first 12 hex characters, for logs.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_owned()
    }
}

impl std::fmt::Display for PolicyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for PolicyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PolicyDigest({})", self.short())
    }
}

/// One policy file: path relative to the directory (`/`-separated) and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyFile {
    pub rel: String,
    pub bytes: Vec<u8>,
}

/// The policy files of a directory, read consistently, sorted by relative path.
#[derive(Clone, Debug)]
pub(crate) struct PolicyFiles {
    /// The directory as the caller named it: error messages use it, not the resolved path.
    pub dir: PathBuf,
    pub files: Vec<PolicyFile>,
}

impl PolicyFiles {
    pub(crate) fn read(dir: &Path) -> Result<PolicyFiles, PolicyErrors> {
        let mut last_error = None;
        for _ in 0..MAX_ATTEMPTS {
            let first = read_once(dir);
            let second = read_once(dir);
            match (first, second) {
                (Ok(a), Ok(b)) if a == b => return Ok(PolicyFiles { dir: dir.to_owned(), files: a }),
                (Ok(_), Ok(_)) => {}
                // A missing required file is an answer, not a race: report it at once.
                (Err(e @ ReadError::Missing(_)), Err(ReadError::Missing(_))) => {
                    return Err(e.into_errors(dir));
                }
                (Err(e), _) | (_, Err(e)) => last_error = Some(e),
            }
        }
        Err(match last_error {
            Some(e) => e.into_errors(dir),
            None => PolicyErrors::one(dir, None, "the policy files kept changing while being read"),
        })
    }

    pub(crate) fn digest(&self) -> PolicyDigest {
        let mut h = blake3::Hasher::new();
        h.update(b"metamesh-policy-v1\0");
        for f in &self.files {
            h.update(&(f.rel.len() as u64).to_le_bytes());
            h.update(f.rel.as_bytes());
            h.update(&(f.bytes.len() as u64).to_le_bytes());
            h.update(&f.bytes);
        }
        PolicyDigest(*h.finalize().as_bytes())
    }

    /// The path of a file for messages.
    pub(crate) fn path_of(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub(crate) fn get(&self, rel: &str) -> Option<&PolicyFile> {
        self.files.iter().find(|f| f.rel == rel)
    }
}

#[derive(Debug)]
enum ReadError {
    Missing(String),
    Io(String, io::Error),
}

impl ReadError {
    fn into_errors(self, dir: &Path) -> PolicyErrors {
        match self {
            ReadError::Missing(rel) => {
                PolicyErrors::one(dir.join(rel), None, "missing: every policy directory has one")
            }
            ReadError::Io(rel, e) => PolicyErrors::one(dir.join(rel), None, format!("cannot read: {e}")),
        }
    }
}

fn read_once(dir: &Path) -> Result<Vec<PolicyFile>, ReadError> {
    let root = dir.canonicalize().map_err(|e| ReadError::Io(String::new(), e))?;
    let mut files = Vec::new();
    for rel in [MODEL_FILE, GLOBAL_FILE] {
        match std::fs::read(root.join(rel)) {
            Ok(bytes) => files.push(PolicyFile { rel: rel.to_owned(), bytes }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing(rel.to_owned())),
            Err(e) => return Err(ReadError::Io(rel.to_owned(), e)),
        }
    }
    let tenants = root.join(TENANTS_DIR);
    let entries = match std::fs::read_dir(&tenants) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(ReadError::Io(TENANTS_DIR.to_owned(), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ReadError::Io(TENANTS_DIR.to_owned(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only `*.csv` is policy; editors' backup and swap files are not.
        if name.ends_with(".csv") && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    for name in names {
        let rel = format!("{TENANTS_DIR}/{name}");
        let bytes = std::fs::read(tenants.join(&name)).map_err(|e| ReadError::Io(rel.clone(), e))?;
        files.push(PolicyFile { rel, bytes });
    }
    // Sorted by relative path, the digest's order.
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

/// A problem at a line of a file.
pub(crate) fn at(files: &PolicyFiles, rel: &str, line: Option<usize>, reason: impl Into<String>) -> PolicyError {
    PolicyError { file: files.path_of(rel), line, reason: reason.into() }
}
