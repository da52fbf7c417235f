//! End-to-end tests of `fetch_all` against a real HTTP server on loopback and real files:
//! downloads, copies, naming, the executable bit, extraction, limits, and hostile archives
//! that must not write outside the sandbox.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_api::CommandUri;
use strata_fetcher::{fetch_all, FetchError, FetchLimits, Fetched};
use support::{listing, source, TestResult, BIG_BYTES};
use tempfile::TempDir;

/// The server, the source files, and a client shared by one test.
struct Fixture {
    base: String,
    sources: TempDir,
    client: reqwest::Client,
}

impl Fixture {
    async fn new() -> TestResult<Self> {
        let sources = tempfile::tempdir()?;
        support::write_sources(sources.path())?;
        Ok(Self {
            base: support::serve().await?,
            sources,
            client: reqwest::Client::new(),
        })
    }

    fn http(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn local(&self, name: &str) -> String {
        source(self.sources.path(), name).display().to_string()
    }
}

/// A fresh sandbox inside an otherwise empty directory, so escapes are visible.
struct Sandbox {
    outer: TempDir,
    path: PathBuf,
}

impl Sandbox {
    fn new() -> TestResult<Self> {
        let outer = tempfile::tempdir()?;
        let path = outer.path().join("sandbox");
        std::fs::create_dir(&path)?;
        Ok(Self { outer, path })
    }
}

fn uri(value: &str) -> CommandUri {
    CommandUri {
        value: value.to_owned(),
        executable: None,
        extract: true,
        cache: None,
        output_file: None,
    }
}

fn output(value: &str, output_file: &str) -> CommandUri {
    CommandUri {
        output_file: Some(output_file.to_owned()),
        ..uri(value)
    }
}

fn executable(value: &str) -> CommandUri {
    CommandUri {
        executable: Some(true),
        ..uri(value)
    }
}

fn no_extract(value: &str) -> CommandUri {
    CommandUri {
        extract: false,
        ..uri(value)
    }
}

/// What one fetch should produce.
enum Want<'a> {
    /// Files (relative to the sandbox) and their exact contents.
    Files(&'a [(&'a str, &'a [u8])]),
    /// An error whose message contains this text; nothing may appear beside the sandbox.
    Error(&'a str),
}

const BUNDLE_FILES: &[(&str, &[u8])] = &[
    ("bundle/a.txt", b"alpha"),
    ("bundle/bin/run", b"#!/bin/sh\n"),
    ("bundle/link", b"alpha"),
];

/// Fetches `uri` into a fresh sandbox and checks the outcome; returns the sandbox for
/// further checks.
async fn check(fx: &Fixture, uri: CommandUri, limits: &FetchLimits, want: Want<'_>) -> Sandbox {
    let sandbox = Sandbox::new().expect("create a sandbox");
    let result = fetch_all(
        &fx.client,
        std::slice::from_ref(&uri),
        &sandbox.path,
        limits,
        None,
    )
    .await;
    match (result, want) {
        (Ok(fetched), Want::Files(files)) => {
            assert_eq!(fetched.len(), 1, "{}", uri.value);
            for (rel, contents) in files {
                let got = std::fs::read(sandbox.path.join(rel));
                assert_eq!(got.ok().as_deref(), Some(*contents), "{}: {rel}", uri.value);
            }
        }
        (Err(err), Want::Error(text)) => {
            let message = err.to_string();
            assert!(
                message.contains(text),
                "{}: {message:?} lacks {text:?}",
                uri.value
            );
            assert_eq!(err.uri(), uri.value);
            let beside = listing(sandbox.outer.path()).expect("list the sandbox's parent");
            assert_eq!(
                beside,
                ["sandbox"],
                "{}: wrote outside the sandbox",
                uri.value
            );
        }
        (Ok(fetched), Want::Error(text)) => {
            panic!("{}: fetched {fetched:?}, want {text:?}", uri.value)
        }
        (Err(err), Want::Files(_)) => panic!("{}: {err}", uri.value),
    }
    sandbox
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[tokio::test]
async fn http_downloads() -> TestResult {
    let fx = Fixture::new().await?;
    let limits = FetchLimits::default();
    let hello: &[(&str, &[u8])] = &[("hello.txt", b"hello\n")];
    check(
        &fx,
        uri(&fx.http("/files/hello.txt")),
        &limits,
        Want::Files(hello),
    )
    .await;
    check(
        &fx,
        uri(&fx.http("/files/hello.txt?v=2#top")),
        &limits,
        Want::Files(hello),
    )
    .await;
    check(
        &fx,
        uri(&fx.http("/redirect")),
        &limits,
        Want::Files(&[("redirect", b"hello\n")]),
    )
    .await;
    let renamed = output(&fx.http("/files/hello.txt"), "conf/app.txt");
    check(
        &fx,
        renamed,
        &limits,
        Want::Files(&[("conf/app.txt", b"hello\n")]),
    )
    .await;
    check(
        &fx,
        uri(&fx.http("/missing")),
        &limits,
        Want::Error("HTTP 404"),
    )
    .await;
    let refused = uri("http://127.0.0.1:1/nothing-listens-here");
    check(&fx, refused, &limits, Want::Error("download failed")).await;
    Ok(())
}

#[tokio::test]
async fn http_archives_are_extracted_and_kept() -> TestResult {
    let fx = Fixture::new().await?;
    let limits = FetchLimits::default();
    for name in ["bundle.tar.gz", "bundle.zip"] {
        let sandbox = check(
            &fx,
            uri(&fx.http(&format!("/files/{name}"))),
            &limits,
            Want::Files(BUNDLE_FILES),
        )
        .await;
        assert!(sandbox.path.join(name).is_file(), "{name} is kept");
        assert_eq!(
            mode(&sandbox.path.join("bundle/bin/run")),
            0o755,
            "{name} keeps modes"
        );
    }
    Ok(())
}

#[tokio::test]
async fn limits_stop_large_and_slow_fetches() -> TestResult {
    let fx = Fixture::new().await?;
    let small = FetchLimits {
        max_bytes: (BIG_BYTES / 4) as u64,
        ..FetchLimits::default()
    };
    let too_large = Want::Error("larger than the fetch limit");
    check(&fx, uri(&fx.http("/big.bin")), &small, too_large).await;
    let too_large = Want::Error("larger than the fetch limit");
    let sandbox = check(&fx, uri(&fx.http("/big-stream.bin")), &small, too_large).await;
    assert_eq!(
        listing(&sandbox.path)?,
        Vec::<String>::new(),
        "no part file is left"
    );
    check(
        &fx,
        uri(&fx.local("bundle.tar")),
        &small,
        Want::Error("larger than the fetch limit"),
    )
    .await;
    let exact = FetchLimits {
        max_bytes: BIG_BYTES as u64,
        ..FetchLimits::default()
    };
    let big = vec![b'x'; BIG_BYTES];
    check(
        &fx,
        uri(&fx.http("/big.bin")),
        &exact,
        Want::Files(&[("big.bin", &big)]),
    )
    .await;
    let quick = FetchLimits {
        timeout: Duration::from_millis(200),
        ..FetchLimits::default()
    };
    let slow = check(
        &fx,
        uri(&fx.http("/slow.txt")),
        &quick,
        Want::Error("fetch timeout"),
    )
    .await;
    assert_eq!(
        listing(&slow.path)?,
        Vec::<String>::new(),
        "no part file is left"
    );
    Ok(())
}

#[tokio::test]
async fn local_copies() -> TestResult {
    let fx = Fixture::new().await?;
    let limits = FetchLimits::default();
    let plain: &[(&str, &[u8])] = &[("plain.txt", b"plain\n")];
    check(
        &fx,
        uri(&fx.local("plain.txt")),
        &limits,
        Want::Files(plain),
    )
    .await;
    check(
        &fx,
        uri(&format!("file://{}", fx.local("plain.txt"))),
        &limits,
        Want::Files(plain),
    )
    .await;
    let renamed = output(&fx.local("plain.txt"), "./etc/renamed");
    check(
        &fx,
        renamed,
        &limits,
        Want::Files(&[("etc/renamed", b"plain\n")]),
    )
    .await;
    check(
        &fx,
        uri(&fx.local("no-such-file")),
        &limits,
        Want::Error("No such file"),
    )
    .await;
    check(
        &fx,
        uri(&fx.local("a-dir")),
        &limits,
        Want::Error("not a regular file"),
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn executable_bit_and_no_extraction() -> TestResult {
    let fx = Fixture::new().await?;
    let limits = FetchLimits::default();
    let tool = check(
        &fx,
        executable(&fx.local("tool.sh")),
        &limits,
        Want::Files(&[("tool.sh", b"#!/bin/sh\necho hi\n")]),
    )
    .await;
    assert_eq!(mode(&tool.path.join("tool.sh")), 0o755);
    let plain = check(&fx, uri(&fx.local("tool.sh")), &limits, Want::Files(&[])).await;
    assert_ne!(
        mode(&plain.path.join("tool.sh")) & 0o111,
        0o111,
        "not executable unless asked"
    );
    // As in Mesos, an executable is never extracted, nor is anything with extract=false.
    for fetch in [
        executable(&fx.local("bundle.tar")),
        no_extract(&fx.local("bundle.tar")),
    ] {
        let sandbox = check(&fx, fetch, &limits, Want::Files(&[])).await;
        assert_eq!(listing(&sandbox.path)?, ["bundle.tar"]);
    }
    Ok(())
}

#[tokio::test]
async fn local_archives_are_extracted() -> TestResult {
    let fx = Fixture::new().await?;
    let limits = FetchLimits::default();
    for name in ["bundle.tar", "bundle.tgz", "bundle.zip"] {
        let sandbox = check(
            &fx,
            uri(&fx.local(name)),
            &limits,
            Want::Files(BUNDLE_FILES),
        )
        .await;
        assert!(sandbox.path.join(name).is_file(), "{name} is kept");
    }
    let tar = check(
        &fx,
        uri(&fx.local("bundle.tar")),
        &limits,
        Want::Files(&[("bundle/hard.txt", b"alpha")]),
    )
    .await;
    assert!(std::fs::symlink_metadata(tar.path.join("bundle/link"))?
        .file_type()
        .is_symlink());
    let gz = check(
        &fx,
        uri(&fx.local("notes.txt.gz")),
        &limits,
        Want::Files(&[("notes.txt", b"notes\n")]),
    )
    .await;
    assert_eq!(listing(&gz.path)?, ["notes.txt", "notes.txt.gz"]);
    // The destination name decides: an archive renamed to a plain name is left alone.
    let renamed = output(&fx.local("bundle.tgz"), "payload.bin");
    let sandbox = check(&fx, renamed, &limits, Want::Files(&[])).await;
    assert_eq!(listing(&sandbox.path)?, ["payload.bin"]);
    Ok(())
}

#[tokio::test]
async fn hostile_archives_are_refused() -> TestResult {
    let fx = Fixture::new().await?;
    let limits = FetchLimits::default();
    let cases = [
        ("evil-parent.tar", "contains a `..` component"),
        ("evil-abs.tar", "is an absolute path"),
        ("evil-symlink.tar", "links to an absolute path"),
        ("evil-uplink.tar", "links to a path outside the sandbox"),
        ("evil-through.tar", "would be written through a symlink"),
        ("evil-hardlink.tar", "contains a `..` component"),
        ("evil-parent.zip", "contains a `..` component"),
        ("evil-symlink.zip", "links to an absolute path"),
    ];
    for (name, reason) in cases {
        let sandbox = check(&fx, uri(&fx.local(name)), &limits, Want::Error(reason)).await;
        assert!(
            std::fs::symlink_metadata(sandbox.path.join("etc")).is_err(),
            "{name}: no link to /etc"
        );
        assert!(!sandbox.outer.path().join("evil").exists(), "{name}");
    }
    assert!(
        !source(fx.sources.path(), "abs-evil").exists(),
        "absolute entry not written"
    );
    Ok(())
}

#[tokio::test]
async fn refused_uris() -> TestResult {
    let fx = Fixture::new().await?;
    let limits = FetchLimits::default();
    let cases = [
        (
            uri("ftp://example.com/x.tar"),
            "Unsupported URI scheme or relative path",
        ),
        (
            uri("relative/plain.txt"),
            "Unsupported URI scheme or relative path",
        ),
        (
            output(&fx.local("plain.txt"), "../plain.txt"),
            "invalid output_file",
        ),
        (
            output(&fx.local("plain.txt"), "/tmp/plain.txt"),
            "invalid output_file",
        ),
        (uri(&fx.http("/")), "cannot derive a file name"),
    ];
    for (fetch, text) in cases {
        check(&fx, fetch, &limits, Want::Error(text)).await;
    }
    Ok(())
}

#[tokio::test]
async fn fetches_in_order_and_stops_at_the_first_failure() -> TestResult {
    let fx = Fixture::new().await?;
    let sandbox = Sandbox::new()?;
    let uris = [
        uri(&fx.local("plain.txt")),
        uri(&fx.http("/files/hello.txt")),
    ];
    let limits = FetchLimits::default();
    let fetched = fetch_all(&fx.client, &uris, &sandbox.path, &limits, None).await?;
    let want = [
        Fetched {
            uri: uris[0].value.clone(),
            path: sandbox.path.join("plain.txt"),
            bytes: 6,
        },
        Fetched {
            uri: uris[1].value.clone(),
            path: sandbox.path.join("hello.txt"),
            bytes: 6,
        },
    ];
    assert_eq!(fetched, want);

    let sandbox = Sandbox::new()?;
    let uris = [
        uri(&fx.local("plain.txt")),
        uri(&fx.http("/missing")),
        uri(&fx.local("tool.sh")),
    ];
    let err = fetch_all(&fx.client, &uris, &sandbox.path, &limits, None).await;
    assert!(
        matches!(err, Err(FetchError::Status { status: 404, .. })),
        "{err:?}"
    );
    assert_eq!(listing(&sandbox.path)?, ["plain.txt"]);
    Ok(())
}
