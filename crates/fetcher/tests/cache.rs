//! End-to-end tests of the fetcher cache against a real HTTP server on loopback that counts
//! requests: one download shared by concurrent fetches, later fetches served from the cache,
//! uncached URIs, extraction and the executable bit from the cache, LRU eviction, items too
//! large for the cache, failures shared by waiters, cancellation, and wiping on creation.

mod support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use strata_api::CommandUri;
use strata_fetcher::{fetch_all, FetchCache, FetchError, FetchLimits, Fetched};
use support::{gzip, listing, tar, Member, TestResult, BUNDLE};
use tempfile::TempDir;
use tokio::sync::watch;

const GIB: u64 = 1024 * 1024 * 1024;

/// Requests seen, by path (without the leading `/`).
type Counts = Arc<Mutex<HashMap<String, usize>>>;

#[derive(Clone)]
struct App {
    files: Arc<HashMap<&'static str, Bytes>>,
    counts: Counts,
    gate: watch::Receiver<bool>,
}

/// Serves `files/<name>`; `gated/<name>` the same once the gate opens; `fail/<name>` a 500
/// once the gate opens; `stream/<name>` without a Content-Length.
async fn serve_path(State(app): State<App>, UrlPath(path): UrlPath<String>) -> Response {
    *app.counts
        .lock()
        .expect("counts lock")
        .entry(path.clone())
        .or_default() += 1;
    let (kind, name) = path.split_once('/').unwrap_or(("", path.as_str()));
    if kind == "gated" || kind == "fail" {
        let mut gate = app.gate.clone();
        let _ = gate.wait_for(|open| *open).await;
    }
    let Some(body) = app.files.get(name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match kind {
        "files" | "gated" => body.into_response(),
        "stream" => Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(body)]))
            .into_response(),
        "fail" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The counting server, a client and a cache in a temporary directory.
struct Fixture {
    base: String,
    counts: Counts,
    gate: watch::Sender<bool>,
    client: reqwest::Client,
    _dir: TempDir,
    cache: FetchCache,
}

impl Fixture {
    async fn new(capacity_bytes: u64) -> TestResult<Self> {
        let files: HashMap<&'static str, Bytes> = [
            ("a.txt", Bytes::from_static(b"aaaaaa")),
            ("b.txt", Bytes::from_static(b"bbbbbb")),
            ("c.txt", Bytes::from_static(b"cccccc")),
            ("app.txt", Bytes::from_static(b"hello\n")),
            ("tool.sh", Bytes::from_static(b"#!/bin/sh\necho hi\n")),
            ("bundle.tgz", Bytes::from(gzip(&tar(BUNDLE)?)?)),
            ("notes.txt.gz", Bytes::from(gzip(b"notes\n")?)),
            (
                "evil.tar",
                Bytes::from(tar(&[Member::File("../evil", b"x", 0o644)])?),
            ),
        ]
        .into_iter()
        .collect();
        let (gate, gate_rx) = watch::channel(false);
        let counts = Counts::default();
        let app = App {
            files: Arc::new(files),
            counts: counts.clone(),
            gate: gate_rx,
        };
        let router = Router::new()
            .route("/{*path}", get(serve_path))
            .with_state(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        let dir = tempfile::tempdir()?;
        let cache = FetchCache::new(dir.path().join("fetch-cache"), capacity_bytes)?;
        Ok(Self {
            base: format!("http://{addr}"),
            counts,
            gate,
            client: reqwest::Client::new(),
            _dir: dir,
            cache,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn requests(&self, path: &str) -> usize {
        let counts = self.counts.lock().expect("counts lock");
        counts.get(path).copied().unwrap_or(0)
    }

    fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// The files in the cache directory.
    fn cached_files(&self) -> Vec<String> {
        listing(self.cache.dir()).expect("list the cache directory")
    }

    /// Fetches `uri` through the cache into a fresh sandbox.
    async fn fetch(&self, uri: &CommandUri) -> (Sandbox, Result<Fetched, FetchError>) {
        fetch_into(&self.client, &self.cache, uri.clone()).await
    }

    /// The same, on its own task.
    fn spawn_fetch(
        &self,
        uri: &CommandUri,
    ) -> tokio::task::JoinHandle<(Sandbox, Result<Fetched, FetchError>)> {
        let (client, cache, uri) = (self.client.clone(), self.cache.clone(), uri.clone());
        tokio::spawn(async move { fetch_into(&client, &cache, uri).await })
    }
}

async fn fetch_into(
    client: &reqwest::Client,
    cache: &FetchCache,
    uri: CommandUri,
) -> (Sandbox, Result<Fetched, FetchError>) {
    let sandbox = Sandbox::new().expect("create a sandbox");
    let limits = FetchLimits::default();
    let result = fetch_all(
        client,
        std::slice::from_ref(&uri),
        &sandbox.path,
        &limits,
        Some(cache),
    )
    .await
    .map(|mut fetched| fetched.remove(0));
    (sandbox, result)
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

    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path.join(rel)).ok()
    }
}

fn cached(value: &str) -> CommandUri {
    CommandUri {
        value: value.to_owned(),
        executable: None,
        extract: true,
        cache: Some(true),
        output_file: None,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

/// Polls `condition` until it holds, failing after a generous deadline.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn concurrent_fetches_share_one_download_and_later_ones_hit_the_cache() -> TestResult {
    let fx = Fixture::new(GIB).await?;
    let uri = cached(&fx.url("gated/app.txt"));
    let first = fx.spawn_fetch(&uri);
    until("the first fetch is downloading", || {
        fx.requests("gated/app.txt") == 1 && fx.cache.users(&uri.value) == 1
    })
    .await;
    let second = fx.spawn_fetch(&uri);
    until("the second fetch waits for it", || {
        fx.cache.users(&uri.value) == 2
    })
    .await;
    fx.open_gate();
    let (first_box, first) = first.await?;
    let (second_box, second) = second.await?;
    assert_eq!(first?.bytes, 6);
    assert_eq!(second?.bytes, 6);
    for sandbox in [&first_box, &second_box] {
        assert_eq!(sandbox.read("app.txt").as_deref(), Some(&b"hello\n"[..]));
    }
    assert_eq!(fx.requests("gated/app.txt"), 1, "downloaded once");

    let (later, result) = fx.fetch(&uri).await;
    result?;
    assert_eq!(later.read("app.txt").as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(fx.requests("gated/app.txt"), 1, "served from the cache");
    assert_eq!(fx.cache.users(&uri.value), 0, "nobody uses it any more");
    assert_eq!(fx.cached_files(), ["c1"]);
    assert_eq!(fx.cache.used_bytes(), 6);
    Ok(())
}

#[tokio::test]
async fn uncached_uris_are_downloaded_every_time() -> TestResult {
    let fx = Fixture::new(GIB).await?;
    for cache in [None, Some(false), None] {
        let uri = CommandUri {
            cache,
            ..cached(&fx.url("files/app.txt"))
        };
        let (sandbox, result) = fx.fetch(&uri).await;
        result?;
        assert_eq!(sandbox.read("app.txt").as_deref(), Some(&b"hello\n"[..]));
    }
    assert_eq!(fx.requests("files/app.txt"), 3);
    assert_eq!(fx.cached_files(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn archives_are_extracted_from_the_cache() -> TestResult {
    let fx = Fixture::new(GIB).await?;
    let uri = cached(&fx.url("files/bundle.tgz"));
    for _ in 0..2 {
        let (sandbox, result) = fx.fetch(&uri).await;
        result?;
        for (rel, contents) in [
            ("bundle/a.txt", &b"alpha"[..]),
            ("bundle/link", b"alpha"),
            ("bundle/hard.txt", b"alpha"),
        ] {
            assert_eq!(sandbox.read(rel).as_deref(), Some(contents), "{rel}");
        }
        assert_eq!(mode(&sandbox.path.join("bundle/bin/run")), 0o755);
        // As in Mesos, only the contents of an archive extracted from the cache arrive.
        assert_eq!(listing(&sandbox.path)?, ["bundle"]);
    }
    assert_eq!(fx.requests("files/bundle.tgz"), 1);

    let gz = CommandUri {
        output_file: Some("docs/notes.txt.gz".to_owned()),
        ..cached(&fx.url("files/notes.txt.gz"))
    };
    let (sandbox, result) = fx.fetch(&gz).await;
    result?;
    assert_eq!(listing(&sandbox.path.join("docs"))?, ["notes.txt"]);
    assert_eq!(
        sandbox.read("docs/notes.txt").as_deref(),
        Some(&b"notes\n"[..])
    );

    let kept = CommandUri {
        extract: false,
        ..uri.clone()
    };
    let (sandbox, result) = fx.fetch(&kept).await;
    result?;
    assert_eq!(listing(&sandbox.path)?, ["bundle.tgz"]);
    assert_eq!(fx.requests("files/bundle.tgz"), 1);
    Ok(())
}

#[tokio::test]
async fn hostile_archives_from_the_cache_are_refused() -> TestResult {
    let fx = Fixture::new(GIB).await?;
    let uri = cached(&fx.url("files/evil.tar"));
    for _ in 0..2 {
        let (sandbox, result) = fx.fetch(&uri).await;
        let err = result.err().ok_or("a hostile archive was extracted")?;
        assert!(
            err.to_string().contains("contains a `..` component"),
            "{err}"
        );
        assert_eq!(err.uri(), uri.value);
        assert_eq!(listing(sandbox.outer.path())?, ["sandbox"], "wrote outside");
    }
    assert_eq!(fx.requests("files/evil.tar"), 1);
    Ok(())
}

#[tokio::test]
async fn the_executable_bit_and_output_file_apply_to_the_sandbox_copy() -> TestResult {
    let fx = Fixture::new(GIB).await?;
    let tool = CommandUri {
        executable: Some(true),
        output_file: Some("bin/tool".to_owned()),
        ..cached(&fx.url("files/tool.sh"))
    };
    let (sandbox, result) = fx.fetch(&tool).await;
    assert_eq!(result?.path, sandbox.path.join("bin/tool"));
    assert_eq!(mode(&sandbox.path.join("bin/tool")), 0o755);
    let cached_file = fx.cache.dir().join("c1");
    assert_ne!(
        mode(&cached_file) & 0o111,
        0o111,
        "the cached file is unchanged"
    );

    let plain = cached(&fx.url("files/tool.sh"));
    let (sandbox, result) = fx.fetch(&plain).await;
    result?;
    assert_eq!(
        sandbox.read("tool.sh").as_deref(),
        Some(&b"#!/bin/sh\necho hi\n"[..])
    );
    assert_ne!(mode(&sandbox.path.join("tool.sh")) & 0o111, 0o111);
    assert_eq!(fx.requests("files/tool.sh"), 1);
    Ok(())
}

#[tokio::test]
async fn least_recently_used_entries_are_evicted() -> TestResult {
    // Room for two of the 6-byte files.
    let fx = Fixture::new(12).await?;
    let [a, b, c] =
        ["a.txt", "b.txt", "c.txt"].map(|name| cached(&fx.url(&format!("files/{name}"))));
    for uri in [&a, &b, &a, &c] {
        fx.fetch(uri).await.1?;
    }
    // "a" was used after "b", so "c" evicted "b".
    assert_eq!(
        ["files/a.txt", "files/b.txt", "files/c.txt"].map(|p| fx.requests(p)),
        [1, 1, 1]
    );
    fx.fetch(&a).await.1?;
    assert_eq!(fx.requests("files/a.txt"), 1, "a is still cached");
    let (sandbox, result) = fx.fetch(&b).await;
    result?;
    assert_eq!(sandbox.read("b.txt").as_deref(), Some(&b"bbbbbb"[..]));
    assert_eq!(fx.requests("files/b.txt"), 2, "b was evicted");
    assert_eq!(fx.cache.used_bytes(), 12);
    assert_eq!(fx.cached_files().len(), 2);
    Ok(())
}

#[tokio::test]
async fn items_too_large_or_of_unknown_size_bypass_the_cache() -> TestResult {
    let fx = Fixture::new(4).await?;
    let large = cached(&fx.url("files/a.txt"));
    let unknown = cached(&fx.url("stream/c.txt"));
    for _ in 0..2 {
        let (sandbox, result) = fx.fetch(&large).await;
        result?;
        assert_eq!(sandbox.read("a.txt").as_deref(), Some(&b"aaaaaa"[..]));
        let (sandbox, result) = fx.fetch(&unknown).await;
        result?;
        assert_eq!(sandbox.read("c.txt").as_deref(), Some(&b"cccccc"[..]));
    }
    assert_eq!(fx.requests("files/a.txt"), 2);
    assert_eq!(fx.requests("stream/c.txt"), 2);
    assert_eq!(fx.cached_files(), Vec::<String>::new());
    assert_eq!(fx.cache.used_bytes(), 0);

    let disabled = Fixture::new(0).await?;
    let small = cached(&disabled.url("files/app.txt"));
    for _ in 0..2 {
        disabled.fetch(&small).await.1?;
    }
    assert_eq!(
        disabled.requests("files/app.txt"),
        2,
        "size 0 disables the cache"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_download_fails_every_fetch_waiting_for_it() -> TestResult {
    let fx = Fixture::new(GIB).await?;
    let uri = cached(&fx.url("fail/app.txt"));
    let first = fx.spawn_fetch(&uri);
    until("the first fetch is downloading", || {
        fx.requests("fail/app.txt") == 1
    })
    .await;
    let second = fx.spawn_fetch(&uri);
    until("the second fetch waits for it", || {
        fx.cache.users(&uri.value) == 2
    })
    .await;
    fx.open_gate();
    for handle in [first, second] {
        let (sandbox, result) = handle.await?;
        let err = result.err().ok_or("a failed download succeeded")?;
        assert!(err.to_string().contains("HTTP 500"), "{err}");
        assert_eq!(err.uri(), uri.value);
        assert_eq!(listing(&sandbox.path)?, Vec::<String>::new());
    }
    assert_eq!(fx.requests("fail/app.txt"), 1, "one download for both");
    // A failure is not cached: the next fetch tries again.
    assert!(fx.fetch(&uri).await.1.is_err());
    assert_eq!(fx.requests("fail/app.txt"), 2);
    assert_eq!(fx.cached_files(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn a_waiter_takes_over_when_the_downloader_is_cancelled() -> TestResult {
    let fx = Fixture::new(GIB).await?;
    let uri = cached(&fx.url("gated/app.txt"));
    let first = fx.spawn_fetch(&uri);
    until("the first fetch is downloading", || {
        fx.requests("gated/app.txt") == 1
    })
    .await;
    let second = fx.spawn_fetch(&uri);
    until("the second fetch waits for it", || {
        fx.cache.users(&uri.value) == 2
    })
    .await;
    first.abort();
    assert!(first.await.is_err_and(|err| err.is_cancelled()));
    until("the second fetch downloads it itself", || {
        fx.requests("gated/app.txt") == 2
    })
    .await;
    fx.open_gate();
    let (sandbox, result) = second.await?;
    result?;
    assert_eq!(sandbox.read("app.txt").as_deref(), Some(&b"hello\n"[..]));
    assert_eq!(fx.cached_files(), ["c2"]);
    Ok(())
}

#[tokio::test]
async fn local_files_are_cached_too() -> TestResult {
    let fx = Fixture::new(GIB).await?;
    let sources = tempfile::tempdir()?;
    let source = sources.path().join("conf.txt");
    std::fs::write(&source, "v1")?;
    let uri = cached(&format!("file://{}", source.display()));
    fx.fetch(&uri).await.1?;
    std::fs::write(&source, "v2")?;
    let (sandbox, result) = fx.fetch(&uri).await;
    result?;
    assert_eq!(
        sandbox.read("conf.txt").as_deref(),
        Some(&b"v1"[..]),
        "from the cache"
    );
    Ok(())
}

#[tokio::test]
async fn creating_the_cache_clears_its_directory() -> TestResult {
    let root = tempfile::tempdir()?;
    let dir = root.path().join("fetch-cache");
    std::fs::create_dir_all(dir.join("old/nested"))?;
    std::fs::write(dir.join("c7"), "stale")?;
    std::fs::write(dir.join("old/nested/file"), "stale")?;
    let cache = FetchCache::new(&dir, GIB)?;
    assert_eq!(listing(cache.dir())?, Vec::<String>::new());
    assert_eq!(cache.used_bytes(), 0);

    // A symlink in its place is removed, never followed.
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere)?;
    std::fs::write(elsewhere.join("keep"), "keep")?;
    let linked = root.path().join("linked-cache");
    std::os::unix::fs::symlink(&elsewhere, &linked)?;
    FetchCache::new(&linked, GIB)?;
    assert!(!std::fs::symlink_metadata(&linked)?.file_type().is_symlink());
    assert_eq!(listing(&linked)?, Vec::<String>::new());
    assert_eq!(std::fs::read(elsewhere.join("keep"))?, b"keep");
    Ok(())
}
