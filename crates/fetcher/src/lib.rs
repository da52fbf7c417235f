//! The fetcher: puts a task's `CommandInfo.uris` into its sandbox before it starts, with the
//! semantics of the Mesos fetcher.
//!
//! * `http://`/`https://` URIs are downloaded (redirects follow the client's policy);
//!   `file:///abs/path` and plain absolute paths are copied. Anything else is refused.
//! * The file is named by `output_file` (a relative path that stays inside the sandbox) or
//!   else by the URI's last path segment.
//! * `executable` marks the file 0755 and skips extraction; otherwise, with `extract`,
//!   `.tar`, `.tar.gz`/`.tgz`, `.zip` and `.gz` files are unpacked into the sandbox and the
//!   archive is kept. Extraction never writes outside the sandbox.
//! * Every URI is bounded by [`FetchLimits`].
//!
//! This crate knows nothing about tasks, executors or agents: it takes URIs and a directory.

#![forbid(unsafe_code)]

mod confine;
mod extract;
mod plan;
mod transfer;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata_api::CommandUri;

pub use extract::ExtractError;
use extract::{ArchiveKind, Budget};
use plan::Source;

/// Bounds on fetching one URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// The most bytes one URI may bring in: its download or copy, and separately the bytes
    /// its extraction writes.
    pub max_bytes: u64,
    /// The longest one URI may take, from request to the end of extraction.
    pub timeout: Duration,
}

impl Default for FetchLimits {
    /// 2 GiB and 10 minutes per URI.
    fn default() -> Self {
        Self {
            max_bytes: 2 * 1024 * 1024 * 1024,
            timeout: Duration::from_secs(10 * 60),
        }
    }
}

/// One URI that is now in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The URI's `value`, as given.
    pub uri: String,
    /// Where the fetched file is (an archive stays there after extraction).
    pub path: PathBuf,
    /// The size of the fetched file.
    pub bytes: u64,
}

/// Why a URI could not be fetched. Every variant names the URI; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{uri}: Unsupported URI scheme or relative path; use http://, https://, file:/// or an absolute path")]
    Unsupported { uri: String },
    #[error("{uri}: {message}")]
    InvalidUri { uri: String, message: String },
    #[error("{uri}: invalid output_file {output_file:?}: it {reason}; use a relative path inside the sandbox")]
    BadOutputFile {
        uri: String,
        output_file: String,
        reason: String,
    },
    #[error("{uri}: cannot derive a file name from the URI; set output_file")]
    NoFileName { uri: String },
    #[error("{uri}: cannot place the file at {path}: it {reason}; choose another output_file")]
    Destination {
        uri: String,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("{uri}: download failed: {message}; check that the host is reachable")]
    Http { uri: String, message: String },
    #[error(
        "{uri}: the server answered HTTP {status}; check that the URI is correct and readable"
    )]
    Status { uri: String, status: u16 },
    #[error("{uri}: larger than the fetch limit of {max_bytes} bytes; raise the limit or fetch a smaller file")]
    TooLarge { uri: String, max_bytes: u64 },
    #[error("{uri}: not finished within the fetch timeout of {timeout:?}; raise the timeout or use a faster source")]
    Timeout { uri: String, timeout: Duration },
    #[error("{uri}: {path} is not a regular file; only files can be fetched")]
    NotAFile { uri: String, path: PathBuf },
    #[error("{uri}: cannot {action} {path}: {source}")]
    Io {
        uri: String,
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{uri}: cannot extract {archive}: {source}")]
    Extract {
        uri: String,
        archive: PathBuf,
        source: ExtractError,
    },
}

impl FetchError {
    /// The URI (its `value`) that failed.
    pub fn uri(&self) -> &str {
        match self {
            FetchError::Unsupported { uri }
            | FetchError::InvalidUri { uri, .. }
            | FetchError::BadOutputFile { uri, .. }
            | FetchError::NoFileName { uri }
            | FetchError::Destination { uri, .. }
            | FetchError::Http { uri, .. }
            | FetchError::Status { uri, .. }
            | FetchError::TooLarge { uri, .. }
            | FetchError::Timeout { uri, .. }
            | FetchError::NotAFile { uri, .. }
            | FetchError::Io { uri, .. }
            | FetchError::Extract { uri, .. } => uri,
        }
    }

    fn io(uri: &str, action: &'static str, path: &Path, source: io::Error) -> Self {
        FetchError::Io {
            uri: uri.to_owned(),
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Fetches every URI into `sandbox` (an existing directory), one after another in the given
/// order, and stops at the first failure. `cache` is ignored for now: every URI is fetched
/// afresh (the fetcher cache comes later).
pub async fn fetch_all(
    client: &reqwest::Client,
    uris: &[CommandUri],
    sandbox: &Path,
    limits: &FetchLimits,
) -> Result<Vec<Fetched>, FetchError> {
    let mut fetched = Vec::with_capacity(uris.len());
    for uri in uris {
        fetched.push(fetch_one(client, uri, sandbox, limits).await?);
    }
    Ok(fetched)
}

/// Fetches one URI into `sandbox` within `limits` (see [`fetch_all`]).
pub async fn fetch_one(
    client: &reqwest::Client,
    uri: &CommandUri,
    sandbox: &Path,
    limits: &FetchLimits,
) -> Result<Fetched, FetchError> {
    let deadline = Instant::now().checked_add(limits.timeout);
    let work = fetch_unbounded(client, uri, sandbox, limits.max_bytes, deadline);
    let fetched = tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| FetchError::Timeout {
            uri: uri.value.clone(),
            timeout: limits.timeout,
        })??;
    tracing::info!(uri = %fetched.uri, path = %fetched.path.display(), bytes = fetched.bytes, "fetched");
    Ok(fetched)
}

async fn fetch_unbounded(
    client: &reqwest::Client,
    uri: &CommandUri,
    sandbox: &Path,
    max_bytes: u64,
    deadline: Option<Instant>,
) -> Result<Fetched, FetchError> {
    let value = uri.value.as_str();
    let plan = plan::plan(uri)?;
    let dest = prepare_destination(value, sandbox, &plan.dest)?;
    let bytes = match plan.source {
        Source::Http(url) => transfer::download(client, value, url, &dest, max_bytes).await?,
        Source::Local(path) => transfer::copy(value, &path, &dest, max_bytes).await?,
    };
    if uri.executable == Some(true) {
        let perms = std::fs::Permissions::from_mode(0o755);
        tokio::fs::set_permissions(&dest, perms)
            .await
            .map_err(|source| FetchError::io(value, "make executable", &dest, source))?;
    } else if uri.extract {
        extract_if_archive(value, &dest, sandbox, max_bytes, deadline).await?;
    }
    Ok(Fetched {
        uri: uri.value.clone(),
        path: dest,
        bytes,
    })
}

/// Creates the destination's parent directories and refuses a path that passes through a
/// symlink. These are a few metadata calls on a sandbox nobody else uses yet, so they run
/// inline.
fn prepare_destination(uri: &str, sandbox: &Path, rel: &Path) -> Result<PathBuf, FetchError> {
    confine::prepare_leaf(sandbox, rel)
        .map_err(|source| FetchError::io(uri, "prepare", &sandbox.join(rel), source))?
        .map_err(|refusal| FetchError::Destination {
            uri: uri.to_owned(),
            path: sandbox.join(rel),
            reason: refusal.reason(),
        })
}

async fn extract_if_archive(
    uri: &str,
    archive: &Path,
    sandbox: &Path,
    max_bytes: u64,
    deadline: Option<Instant>,
) -> Result<(), FetchError> {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(kind) = ArchiveKind::detect(&name) else {
        return Ok(());
    };
    let budget = Budget::new(max_bytes, deadline);
    let (path, root) = (archive.to_owned(), sandbox.to_owned());
    let result = tokio::task::spawn_blocking(move || extract::extract(kind, &path, &root, budget))
        .await
        .unwrap_or_else(|join| {
            Err(ExtractError::Corrupt {
                message: format!("the extraction thread failed: {join}"),
            })
        });
    let written = result.map_err(|source| FetchError::Extract {
        uri: uri.to_owned(),
        archive: archive.to_owned(),
        source,
    })?;
    tracing::info!(uri, archive = %archive.display(), bytes = written, "extracted");
    Ok(())
}
