//! Test fixtures for the fetcher: a local HTTP server, archive builders (including hostile
//! archives no well-behaved tool would write) and source files on disk.

// Each test binary uses a different part of these fixtures.
#![allow(dead_code)]

use std::error::Error;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use flate2::write::GzEncoder;
use zip::write::SimpleFileOptions;

pub type TestResult<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

/// Bytes served by `/big.bin` and `/big-stream.bin`.
pub const BIG_BYTES: usize = 4096;

/// One archive member. Names are raw bytes so tests can write what builders refuse.
pub enum Member<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

/// The well-formed bundle used by the extraction tests.
pub const BUNDLE: &[Member<'static>] = &[
    Member::Dir("bundle/"),
    Member::File("bundle/a.txt", b"alpha", 0o644),
    Member::File("bundle/bin/run", b"#!/bin/sh\n", 0o755),
    Member::Symlink("bundle/link", "a.txt"),
    Member::HardLink("bundle/hard.txt", "bundle/a.txt"),
];

/// A tar archive, written header by header so that hostile names survive.
pub fn tar(members: &[Member<'_>]) -> TestResult<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for member in members {
        let (name, kind, data, mode, link): (&str, _, &[u8], u32, Option<&str>) = match member {
            Member::Dir(name) => (name, tar::EntryType::Directory, b"", 0o755, None),
            Member::File(name, data, mode) => (name, tar::EntryType::Regular, data, *mode, None),
            Member::Symlink(name, to) => (name, tar::EntryType::Symlink, b"", 0o777, Some(to)),
            Member::HardLink(name, to) => (name, tar::EntryType::Link, b"", 0o644, Some(to)),
        };
        let mut header = tar::Header::new_gnu();
        let slot = &mut header.as_old_mut().name;
        slot.get_mut(..name.len())
            .ok_or("tar member name too long")?
            .copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        if let Some(link) = link {
            header.set_link_name_literal(link)?;
        }
        header.set_cksum();
        builder.append(&header, data)?;
    }
    Ok(builder.into_inner()?)
}

pub fn gzip(data: &[u8]) -> TestResult<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// A zip archive; the zip writer stores names as given, `..` included.
pub fn zip(members: &[Member<'_>]) -> TestResult<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    for member in members {
        match member {
            Member::Dir(name) => writer.add_directory(*name, options)?,
            Member::File(name, data, mode) => {
                writer.start_file(*name, options.unix_permissions(*mode))?;
                writer.write_all(data)?;
            }
            Member::Symlink(name, to) => writer.add_symlink(*name, *to, options)?,
            Member::HardLink(..) => return Err("zip has no hardlinks".into()),
        }
    }
    Ok(writer.finish()?.into_inner())
}

/// Starts the test server on loopback and returns its base URL.
pub async fn serve() -> TestResult<String> {
    let tgz = Bytes::from(gzip(&tar(BUNDLE)?)?);
    let bundle_zip = Bytes::from(zip(&BUNDLE[..4])?);
    let app = Router::new()
        .route("/files/hello.txt", get(|| async { "hello\n" }))
        .route("/files/bundle.tar.gz", get(move || async move { tgz }))
        .route("/files/bundle.zip", get(move || async move { bundle_zip }))
        .route(
            "/redirect",
            get(|| async { Redirect::to("/files/hello.txt") }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/big.bin", get(|| async { vec![b'x'; BIG_BYTES] }))
        .route("/big-stream.bin", get(|| async { big_stream() }))
        .route("/slow.txt", get(std::future::pending::<String>));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// A body without a Content-Length, so only counting while streaming can stop it.
fn big_stream() -> Body {
    let chunks =
        (0..BIG_BYTES / 1024).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 1024])));
    Body::from_stream(futures_util::stream::iter(chunks))
}

/// Writes the local source files used by the copy and extraction tests into `dir`.
pub fn write_sources(dir: &Path) -> TestResult {
    let abs_evil = dir.join("abs-evil");
    let abs_evil = abs_evil.to_str().ok_or("temp dir is not UTF-8")?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("plain.txt", b"plain\n".to_vec()),
        ("tool.sh", b"#!/bin/sh\necho hi\n".to_vec()),
        ("bundle.tar", tar(BUNDLE)?),
        ("bundle.tgz", gzip(&tar(BUNDLE)?)?),
        ("bundle.zip", zip(&BUNDLE[..4])?),
        ("notes.txt.gz", gzip(b"notes\n")?),
        (
            "evil-parent.tar",
            tar(&[Member::File("../evil", b"x", 0o644)])?,
        ),
        ("evil-abs.tar", tar(&[Member::File(abs_evil, b"x", 0o644)])?),
        (
            "evil-symlink.tar",
            tar(&[
                Member::Symlink("etc", "/etc"),
                Member::File("etc/evil", b"x", 0o644),
            ])?,
        ),
        ("evil-uplink.tar", tar(&[Member::Symlink("up", "../..")])?),
        (
            "evil-through.tar",
            tar(&[Member::Symlink("a", "."), Member::Symlink("a/a/b", "../x")])?,
        ),
        (
            "evil-hardlink.tar",
            tar(&[Member::HardLink("passwd", "../../../../etc/passwd")])?,
        ),
        (
            "evil-parent.zip",
            zip(&[Member::File("../evil", b"x", 0o644)])?,
        ),
        ("evil-symlink.zip", zip(&[Member::Symlink("etc", "/etc")])?),
    ];
    for (name, data) in files {
        std::fs::write(dir.join(name), data)?;
    }
    std::fs::create_dir(dir.join("a-dir"))?;
    Ok(())
}

/// Names in `dir`, sorted.
pub fn listing(dir: &Path) -> TestResult<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The path of a source file written by [`write_sources`].
pub fn source(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
