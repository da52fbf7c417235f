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
//! * With a [`FetchCache`], URIs marked `cache: true` are downloaded once into the cache and
//!   delivered from there (see [`FetchCache`] for the rules): copied into the sandbox, or, for an archive to extract, extracted straight from the cache so that only
//!   its contents land in the sandbox (as in Mesos). `executable` and `output_file` apply to
//!   the sandbox copy; the cached file is never changed.
//!
//! This crate knows nothing about tasks, executors or agents: it takes URIs and a directory.

#![forbid(unsafe_code)]

mod cache;
mod confine;
mod extract;
mod plan;
mod transfer;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_api::CommandUri;

pub use cache::{CacheError, FetchCache};
use cache::{Download, Entered, NoRoom};
pub use extract::ExtractError;
use extract::{ArchiveKind, Budget};
use plan::Source;
use transfer::Opened;

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
    /// Where the fetched file is. An archive stays there after extraction, except one
    /// extracted straight from the cache: only its contents are in the sandbox.
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
    /// The download into the cache failed; every fetch that shared it gets this same error.
    #[error("{error}")]
    SharedDownload { uri: String, error: Arc<FetchError> },
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
            | FetchError::Extract { uri, .. }
            | FetchError::SharedDownload { uri, .. } => uri,
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
/// order, and stops at the first failure. URIs marked `cache: true` go through `cache` when
/// there is one; without one they are fetched directly like the others.
pub async fn fetch_all(
    client: &reqwest::Client,
    uris: &[CommandUri],
    sandbox: &Path,
    limits: &FetchLimits,
    cache: Option<&FetchCache>,
) -> Result<Vec<Fetched>, FetchError> {
    let mut fetched = Vec::with_capacity(uris.len());
    for uri in uris {
        fetched.push(fetch_one(client, uri, sandbox, limits, cache).await?);
    }
    Ok(fetched)
}

/// Fetches one URI into `sandbox` within `limits` (see [`fetch_all`]). The timeout covers
/// waiting for another fetch's download of the same cached URI.
pub async fn fetch_one(
    client: &reqwest::Client,
    uri: &CommandUri,
    sandbox: &Path,
    limits: &FetchLimits,
    cache: Option<&FetchCache>,
) -> Result<Fetched, FetchError> {
    let deadline = Instant::now().checked_add(limits.timeout);
    let work = fetch_unbounded(client, uri, sandbox, limits.max_bytes, deadline, cache);
    let fetched = tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| FetchError::Timeout {
            uri: uri.value.clone(),
            timeout: limits.timeout,
        })??;
    tracing::info!(uri = %fetched.uri, path = %fetched.path.display(), bytes = fetched.bytes, "fetched");
    Ok(fetched)
}

/// Where and how one URI lands in its sandbox.
struct Target<'a> {
    uri: &'a CommandUri,
    sandbox: &'a Path,
    /// The destination relative to the sandbox.
    rel: PathBuf,
    /// The destination, prepared (parents exist, nothing in the way).
    dest: PathBuf,
    max_bytes: u64,
    deadline: Option<Instant>,
}

impl Target<'_> {
    fn value(&self) -> &str {
        &self.uri.value
    }
}

async fn fetch_unbounded(
    client: &reqwest::Client,
    uri: &CommandUri,
    sandbox: &Path,
    max_bytes: u64,
    deadline: Option<Instant>,
    cache: Option<&FetchCache>,
) -> Result<Fetched, FetchError> {
    let plan = plan::plan(uri)?;
    let target = Target {
        uri,
        sandbox,
        dest: prepare_destination(&uri.value, sandbox, &plan.dest)?,
        rel: plan.dest,
        max_bytes,
        deadline,
    };
    let bytes = match cache.filter(|_| uri.cache == Some(true)) {
        Some(cache) => fetch_cached(client, cache, &plan.source, &target).await?,
        None => fetch_direct(client, &plan.source, &target).await?,
    };
    Ok(Fetched {
        uri: uri.value.clone(),
        path: target.dest,
        bytes,
    })
}

/// Fetches straight into the sandbox, then applies `executable` or `extract` there.
async fn fetch_direct(
    client: &reqwest::Client,
    source: &Source,
    target: &Target<'_>,
) -> Result<u64, FetchError> {
    let opened = transfer::open(client, target.value(), source, target.max_bytes).await?;
    write_direct(opened, target).await
}

async fn write_direct(opened: Opened, target: &Target<'_>) -> Result<u64, FetchError> {
    let bytes = opened
        .write_to(target.value(), &target.dest, target.max_bytes)
        .await?;
    if target.uri.executable == Some(true) {
        make_executable(target).await?;
    } else if let Some(kind) = archive_kind(target) {
        extract_archive(kind, &target.dest, target).await?;
    }
    Ok(bytes)
}

/// Fetches through the cache: delivers the cached file, downloading it first (or waiting
/// for the fetch that does) unless the item bypasses the cache.
async fn fetch_cached(
    client: &reqwest::Client,
    cache: &FetchCache,
    source: &Source,
    target: &Target<'_>,
) -> Result<u64, FetchError> {
    let pin = match cache.enter(target.value()).await? {
        Entered::Resident(pin) => pin,
        Entered::Bypass => return fetch_direct(client, source, target).await,
        Entered::Download(pin, download) => match fill(client, source, target, download).await? {
            Filled::Cached => pin,
            Filled::Bypassed(bytes) => return Ok(bytes),
        },
    };
    deliver(&pin.path(), target).await
}

/// What the downloading fetch did with the item.
enum Filled {
    /// It is in the cache, to be delivered.
    Cached,
    /// It went straight into the sandbox (this many bytes), as it cannot be cached.
    Bypassed(u64),
}

/// Downloads the item into the cache for every fetch waiting on it, or straight into this
/// fetch's sandbox if it cannot be cached. A failure is shared with the waiters.
async fn fill(
    client: &reqwest::Client,
    source: &Source,
    target: &Target<'_>,
    download: Download,
) -> Result<Filled, FetchError> {
    let value = target.value();
    let opened = match transfer::open(client, value, source, target.max_bytes).await {
        Ok(opened) => opened,
        Err(error) => return Err(download.fail(error)),
    };
    if let Err(reason) = reserve(&download, &opened).await {
        tracing::warn!(
            uri = value,
            reason,
            "not caching; fetching straight into the sandbox"
        );
        download.bypass();
        return write_direct(opened, target).await.map(Filled::Bypassed);
    }
    let path = download.path();
    match opened.write_to(value, &path, target.max_bytes).await {
        Ok(bytes) => {
            download.complete(bytes).await;
            tracing::info!(uri = value, path = %path.display(), bytes, "downloaded into the fetcher cache");
            Ok(Filled::Cached)
        }
        Err(error) => Err(download.fail(error)),
    }
}

/// Reserves the opened item's size in the cache, or says why it cannot be cached.
async fn reserve(download: &Download, opened: &Opened) -> Result<(), &'static str> {
    let Some(bytes) = opened.len() else {
        return Err("the server did not announce the size (no Content-Length)");
    };
    download
        .reserve(bytes)
        .await
        .map_err(|no_room| match no_room {
            NoRoom::TooBig => "the item is larger than the whole fetcher cache",
            NoRoom::InUse => "cache entries in use leave no room for the item",
        })
}

/// Puts the cached `file` into the sandbox: an archive to extract is extracted from the
/// cache, anything else is copied (and made executable if asked).
async fn deliver(file: &Path, target: &Target<'_>) -> Result<u64, FetchError> {
    let value = target.value();
    match archive_kind(target) {
        Some(kind) if target.uri.executable != Some(true) => {
            let meta = tokio::fs::metadata(file)
                .await
                .map_err(|source| FetchError::io(value, "read cached file", file, source))?;
            extract_archive(kind, file, target).await?;
            Ok(meta.len())
        }
        _ => {
            let bytes = transfer::copy(value, file, &target.dest, target.max_bytes).await?;
            if target.uri.executable == Some(true) {
                make_executable(target).await?;
            }
            Ok(bytes)
        }
    }
}

/// The archive format to extract, if `extract` is set and the destination name is one.
fn archive_kind(target: &Target<'_>) -> Option<ArchiveKind> {
    if !target.uri.extract {
        return None;
    }
    let name = target.dest.file_name()?.to_string_lossy();
    ArchiveKind::detect(&name)
}

async fn make_executable(target: &Target<'_>) -> Result<(), FetchError> {
    let perms = std::fs::Permissions::from_mode(0o755);
    tokio::fs::set_permissions(&target.dest, perms)
        .await
        .map_err(|source| FetchError::io(target.value(), "make executable", &target.dest, source))
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

/// Extracts `archive` (the destination itself, or the cached file standing for it) into
/// the sandbox on a blocking thread.
async fn extract_archive(
    kind: ArchiveKind,
    archive: &Path,
    target: &Target<'_>,
) -> Result<(), FetchError> {
    let budget = Budget::new(target.max_bytes, target.deadline);
    let (path, name, root) = (
        archive.to_owned(),
        target.rel.clone(),
        target.sandbox.to_owned(),
    );
    let result =
        tokio::task::spawn_blocking(move || extract::extract(kind, &path, &name, &root, budget))
            .await
            .unwrap_or_else(|join| {
                Err(ExtractError::Corrupt {
                    message: format!("the extraction thread failed: {join}"),
                })
            });
    let written = result.map_err(|source| FetchError::Extract {
        uri: target.value().to_owned(),
        archive: archive.to_owned(),
        source,
    })?;
    tracing::info!(uri = target.value(), archive = %archive.display(), bytes = written, "extracted");
    Ok(())
}
