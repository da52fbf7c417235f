//! Moving bytes into the sandbox: HTTP(S) downloads and local copies.
//!
//! Both write to a hidden part file next to the destination and rename it into place only
//! when complete, so a failed or cancelled fetch never leaves a truncated file under the
//! final name (the part file is removed when its guard drops).

use std::error::Error as _;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use reqwest::Url;
use tokio::io::AsyncWriteExt;

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

/// Downloads `url` to `dest`, following redirects as the client's policy allows. Returns
/// the number of bytes written.
pub(crate) async fn download(
    client: &reqwest::Client,
    uri: &str,
    url: Url,
    dest: &Path,
    max_bytes: u64,
) -> Result<u64, FetchError> {
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
    if response.content_length().is_some_and(|len| len > max_bytes) {
        return Err(too_large(uri, max_bytes));
    }
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

/// Copies the local file `source` to `dest`. Returns the number of bytes copied.
pub(crate) async fn copy(
    uri: &str,
    source: &Path,
    dest: &Path,
    max_bytes: u64,
) -> Result<u64, FetchError> {
    let meta = tokio::fs::metadata(source)
        .await
        .map_err(|err| FetchError::io(uri, "read source file", source, err))?;
    if !meta.is_file() {
        return Err(FetchError::NotAFile {
            uri: uri.to_owned(),
            path: source.to_owned(),
        });
    }
    if meta.len() > max_bytes {
        return Err(too_large(uri, max_bytes));
    }
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
