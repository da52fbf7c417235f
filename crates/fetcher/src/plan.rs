//! Turning a `CommandInfo.URI` into a plan: where the bytes come from and the sandbox-relative
//! path they go to. Pure: no I/O, so every rule is tested in a table below.

use std::path::{Path, PathBuf};

use reqwest::Url;
use strata_api::CommandUri;

use crate::confine;
use crate::FetchError;

/// Where a URI's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// `http://` or `https://`.
    Http(Url),
    /// `file:///abs/path` or a plain absolute path.
    Local(PathBuf),
}

/// What to fetch and where to put it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) source: Source,
    /// Relative to the sandbox, plain components only.
    pub(crate) dest: PathBuf,
}

/// Builds the plan for one URI, or says why the URI cannot be fetched.
pub(crate) fn plan(uri: &CommandUri) -> Result<Plan, FetchError> {
    let source = source(&uri.value)?;
    let dest = match &uri.output_file {
        Some(output_file) => output_path(&uri.value, output_file)?,
        None => default_name(&uri.value, &source)?,
    };
    Ok(Plan { source, dest })
}

fn source(value: &str) -> Result<Source, FetchError> {
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Url::parse(value)
            .map(Source::Http)
            .map_err(|err| FetchError::InvalidUri {
                uri: value.to_owned(),
                message: format!("not a valid URL ({err})"),
            });
    }
    if lower.starts_with("file://") {
        return file_path(value);
    }
    if value.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(value)));
    }
    Err(FetchError::Unsupported {
        uri: value.to_owned(),
    })
}

/// `file:///abs` and `file://localhost/abs` name a local path; other hosts are not ours.
fn file_path(value: &str) -> Result<Source, FetchError> {
    let rest = &value["file://".len()..];
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if path.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(path)));
    }
    Err(FetchError::InvalidUri {
        uri: value.to_owned(),
        message: "a file URI must name an absolute local path, as in file:///path/to/file"
            .to_owned(),
    })
}

fn output_path(value: &str, output_file: &str) -> Result<PathBuf, FetchError> {
    let bad = |reason: &str| FetchError::BadOutputFile {
        uri: value.to_owned(),
        output_file: output_file.to_owned(),
        reason: reason.to_owned(),
    };
    match confine::relative(Path::new(output_file)) {
        Ok(Some(path)) => Ok(path),
        Ok(None) => Err(bad(confine::Refusal::Empty.reason())),
        Err(refusal) => Err(bad(refusal.reason())),
    }
}

/// The last path segment of the URI (for HTTP, without query or fragment).
fn default_name(value: &str, source: &Source) -> Result<PathBuf, FetchError> {
    let name = match source {
        Source::Http(url) => url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .map(str::to_owned),
        Source::Local(path) => path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned()),
    };
    let no_name = || FetchError::NoFileName {
        uri: value.to_owned(),
    };
    let name = name.filter(|n| !n.is_empty()).ok_or_else(no_name)?;
    // A single plain component; anything else (".", "..") has no usable name.
    match confine::relative(Path::new(&name)) {
        Ok(Some(path)) if path.components().count() == 1 => Ok(path),
        _ => Err(no_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(value: &str, output_file: Option<&str>) -> CommandUri {
        CommandUri {
            value: value.to_owned(),
            executable: None,
            extract: true,
            cache: None,
            output_file: output_file.map(str::to_owned),
        }
    }

    /// `expected` is `Ok((source, dest))` with source "http:<url>" or "local:<path>", or
    /// `Err(text the error message must contain)`.
    fn check(value: &str, output_file: Option<&str>, expected: Result<(&str, &str), &str>) {
        let got = plan(&uri(value, output_file)).map(|plan| {
            let source = match plan.source {
                Source::Http(url) => format!("http:{url}"),
                Source::Local(path) => format!("local:{}", path.display()),
            };
            (source, plan.dest.display().to_string())
        });
        match (got, expected) {
            (Ok((source, dest)), Ok((want_source, want_dest))) => {
                assert_eq!(
                    (source.as_str(), dest.as_str()),
                    (want_source, want_dest),
                    "{value}"
                )
            }
            (Err(err), Err(want)) => {
                let text = err.to_string();
                assert!(text.contains(want), "{value}: {text:?} lacks {want:?}");
            }
            (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn sources_and_names() {
        let h = "http:http://example.com";
        check(
            "http://example.com/a/b.tgz",
            None,
            Ok((&format!("{h}/a/b.tgz"), "b.tgz")),
        );
        check(
            "HTTPS://example.com/x.zip?sig=1#frag",
            None,
            Ok(("http:https://example.com/x.zip?sig=1#frag", "x.zip")),
        );
        check(
            "http://example.com/a/../b",
            None,
            Ok((&format!("{h}/b"), "b")),
        );
        check(
            "file:///opt/pkg.tar",
            None,
            Ok(("local:/opt/pkg.tar", "pkg.tar")),
        );
        check("file://localhost/opt/x", None, Ok(("local:/opt/x", "x")));
        check("/opt/bin/tool", None, Ok(("local:/opt/bin/tool", "tool")));
        check("/opt/dir/", None, Ok(("local:/opt/dir/", "dir")));
    }

    #[test]
    fn output_files() {
        check("/opt/x", Some("y"), Ok(("local:/opt/x", "y")));
        check(
            "/opt/x",
            Some("./sub/dir/y"),
            Ok(("local:/opt/x", "sub/dir/y")),
        );
        check(
            "http://h/",
            Some("index.html"),
            Ok(("http:http://h/", "index.html")),
        );
        check("/opt/x", Some("../y"), Err("contains a `..` component"));
        check(
            "/opt/x",
            Some("a/../../y"),
            Err("contains a `..` component"),
        );
        check("/opt/x", Some("/etc/y"), Err("is an absolute path"));
        check("/opt/x", Some(""), Err("invalid output_file"));
        check("/opt/x", Some("."), Err("invalid output_file"));
    }

    #[test]
    fn refusals() {
        let unsupported = "Unsupported URI scheme or relative path";
        check("ftp://example.com/x", None, Err(unsupported));
        check("hdfs://nn/x", None, Err(unsupported));
        check("relative/path", None, Err(unsupported));
        check("x.tar.gz", None, Err(unsupported));
        check("", None, Err(unsupported));
        check("file://otherhost/x", None, Err("absolute local path"));
        check("http://exa mple.com/x", None, Err("not a valid URL"));
        check("http://example.com", None, Err("cannot derive a file name"));
        check(
            "http://example.com/dir/",
            None,
            Err("cannot derive a file name"),
        );
        check("/", None, Err("cannot derive a file name"));
        check("/opt/..", None, Err("cannot derive a file name"));
    }
}
