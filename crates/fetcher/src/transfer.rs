//! Moving bytes into the sandbox or the cache: HTTP(S) downloads and local copies. A source
//! is opened first ([`open`]), so its size is known before any byte is written: the cache
//! reserves space by it.
//!
//! Both write to a hidden part file next to the destination and rename it into place only
//! when complete, so a failed or cancelled fetch never leaves a truncated file under the
//! final name (the part file is removed when its guard drops).

use std::error::Error as _;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use reqwest::Url;
use tokio::io::AsyncWriteExt;

use crate::plan::Source;
use crate::FetchError;

/// A part file that is deleted unless it was renamed into place.
struct PartFile {
    path: PathBuf,
    kept: bool,
}

impl PartFile {
    fn next_to(dest: &Path) -> Self {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            path: dest.with_file_name(format!(".{name}.strata-part")),
            kept: false,
        }
    }

    async fn persist(mut self, uri: &str, dest: &Path) -> Result<(), FetchError> {
        tokio::fs::rename(&self.path, dest)
            .await
            .map_err(|source| FetchError::io(uri, "move into place", dest, source))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            // Best effort: the file may never have been created.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A source whose size is known (if the server said) and whose bytes are ready to be
/// written: an HTTP response whose status was checked, or a local regular file.
pub(crate) enum Opened {
    Http(reqwest::Response),
    Local { path: PathBuf, len: u64 },
}

impl Opened {
    /// The size announced before any byte was read: a local file's length, or the HTTP
    /// `Content-Length` (absent for a streamed body).
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Opened::Http(response) => response.content_length(),
            Opened::Local { len, .. } => Some(*len),
        }
    }

    /// Writes the bytes to `dest` (through a part file). Returns the number written.
    pub(crate) async fn write_to(
        self,
        uri: &str,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<u64, FetchError> {
        match self {
            Opened::Http(response) => save(response, uri, dest, max_bytes).await,
            Opened::Local { path, .. } => copy_opened(uri, &path, dest, max_bytes).await,
        }
    }
}

/// Opens `source`: sends the HTTP request and checks the answer, or checks that the local
/// path is a regular file. Refuses a source known to exceed `max_bytes`.
pub(crate) async fn open(
    client: &reqwest::Client,
    uri: &str,
    source: &Source,
    max_bytes: u64,
) -> Result<Opened, FetchError> {
    let opened = match source {
        Source::Http(url) => Opened::Http(request(client, uri, url.clone()).await?),
        Source::Local(path) => open_local(uri, path).await?,
    };
    if opened.len().is_some_and(|len| len > max_bytes) {
        return Err(too_large(uri, max_bytes));
    }
    Ok(opened)
}

/// Copies the local file `source` to `dest`. Returns the number of bytes copied.
pub(crate) async fn copy(
    uri: &str,
    source: &Path,
    dest: &Path,
    max_bytes: u64,
) -> Result<u64, FetchError> {
    let opened = open_local(uri, source).await?;
    if opened.len().is_some_and(|len| len > max_bytes) {
        return Err(too_large(uri, max_bytes));
    }
    opened.write_to(uri, dest, max_bytes).await
}

async fn request(
    client: &reqwest::Client,
    uri: &str,
    url: Url,
) -> Result<reqwest::Response, FetchError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|err| http_error(uri, &err))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            uri: uri.to_owned(),
            status: status.as_u16(),
        });
    }
    Ok(response)
}

async fn save(
    response: reqwest::Response,
    uri: &str,
    dest: &Path,
    max_bytes: u64,
) -> Result<u64, FetchError> {
    let part = PartFile::next_to(dest);
    let mut file = tokio::fs::File::create(&part.path)
        .await
        .map_err(|source| FetchError::io(uri, "create", &part.path, source))?;
    let mut stream = response.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| http_error(uri, &err))?;
        bytes = bytes.saturating_add(chunk.len() as u64);
        if bytes > max_bytes {
            return Err(too_large(uri, max_bytes));
        }
        file.write_all(&chunk)
            .await
            .map_err(|source| FetchError::io(uri, "write", &part.path, source))?;
    }
    file.flush()
        .await
        .map_err(|source| FetchError::io(uri, "write", &part.path, source))?;
    drop(file);
    part.persist(uri, dest).await?;
    Ok(bytes)
}

async fn open_local(uri: &str, path: &Path) -> Result<Opened, FetchError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|err| FetchError::io(uri, "read source file", path, err))?;
    if !meta.is_file() {
        return Err(FetchError::NotAFile {
            uri: uri.to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(Opened::Local {
        path: path.to_owned(),
        len: meta.len(),
    })
}

async fn copy_opened(
    uri: &str,
    source: &Path,
    dest: &Path,
    max_bytes: u64,
) -> Result<u64, FetchError> {
    let part = PartFile::next_to(dest);
    let bytes = tokio::fs::copy(source, &part.path)
        .await
        .map_err(|err| FetchError::io(uri, "copy to", &part.path, err))?;
    // The file may have grown after the size check.
    if bytes > max_bytes {
        return Err(too_large(uri, max_bytes));
    }
    part.persist(uri, dest).await?;
    Ok(bytes)
}

fn too_large(uri: &str, max_bytes: u64) -> FetchError {
    FetchError::TooLarge {
        uri: uri.to_owned(),
        max_bytes,
    }
}

/// reqwest's own message is terse ("error sending request"); the causes say what happened.
fn http_error(uri: &str, err: &reqwest::Error) -> FetchError {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    FetchError::Http {
        uri: uri.to_owned(),
        message,
    }
}
