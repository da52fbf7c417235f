//! The fetcher cache, as in Mesos: URIs with `cache: true` are downloaded once per agent into
//! a cache directory and delivered from there into each sandbox.
//!
//! * Entries are keyed by the URI's value. (Mesos keys by user and URI; every fetch here
//!   runs as the agent, so the URI alone is the key.)
//! * Concurrent fetches of one URI share one download: the first becomes its downloader,
//!   the others wait for it and get its outcome, failure included. If the downloader is
//!   cancelled, a waiter starts the download afresh.
//! * The cache holds at most its capacity in bytes. Space is reserved by the size known
//!   before downloading; least recently used entries that no fetch is using are evicted to
//!   make room. An item larger than the whole cache, one of unknown size, or one for which
//!   entries in use leave no room bypasses the cache and is fetched straight into the
//!   sandbox (as in Mesos).
//! * The directory is wiped when the cache is created, so entries never survive an agent
//!   restart (Mesos wipes its cache on agent recovery too).
//!
//! The bookkeeping is plain data in [`ledger`]; this module adds the files and the waiting.

mod ledger;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::FetchError;
pub(crate) use ledger::NoRoom;
use ledger::{EntryId, Ledger, Lookup};

/// Why the cache directory could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot clear the fetcher cache directory {path}: {source}; remove it by hand or fix its permissions")]
    Clear { path: PathBuf, source: io::Error },
    #[error("cannot create the fetcher cache directory {path}: {source}; check the permissions of its parent")]
    Create { path: PathBuf, source: io::Error },
}

/// One agent's fetcher cache. Cloning gives another handle to the same cache.
///
/// Guarantees, as in Mesos: a cached URI is downloaded at most once while it stays cached,
/// however many fetches want it at the same time; the files plus the reservations of
/// downloads under way stay within the capacity (an entry that turns out larger than
/// announced may overshoot until unused entries can be evicted); an entry some fetch is
/// using is never evicted; nothing survives [`FetchCache::new`].
#[derive(Clone)]
pub struct FetchCache {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    capacity_bytes: u64,
    state: Mutex<State>,
}

struct State {
    ledger: Ledger,
    /// The progress of every entry being downloaded, for fetches that wait on it.
    flights: HashMap<EntryId, watch::Receiver<Flight>>,
}

/// How a download into the cache is going.
#[derive(Debug, Clone)]
enum Flight {
    Downloading,
    Resident,
    /// The item is not cached; every fetch gets it directly.
    Bypass,
    Failed(Arc<FetchError>),
}

impl std::fmt::Debug for FetchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchCache")
            .field("dir", &self.inner.dir)
            .field("capacity_bytes", &self.inner.capacity_bytes)
            .finish()
    }
}

impl FetchCache {
    /// A cache of at most `capacity_bytes` in `dir`. Whatever `dir` holds is deleted first
    /// (a symlink at `dir` is removed, never followed); then it is created empty. A
    /// capacity of 0 disables caching: every URI is fetched directly.
    pub fn new(dir: impl Into<PathBuf>, capacity_bytes: u64) -> Result<Self, CacheError> {
        let dir = dir.into();
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(CacheError::Clear { path: dir, source }),
        }
        if let Err(source) = std::fs::create_dir_all(&dir) {
            return Err(CacheError::Create { path: dir, source });
        }
        tracing::info!(dir = %dir.display(), capacity_bytes, "fetcher cache cleared");
        let state = State {
            ledger: Ledger::new(capacity_bytes),
            flights: HashMap::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                capacity_bytes,
                state: Mutex::new(state),
            }),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The most bytes the cache holds.
    pub fn capacity_bytes(&self) -> u64 {
        self.inner.capacity_bytes
    }

    /// The bytes held by cached files and reserved by downloads under way.
    pub fn used_bytes(&self) -> u64 {
        self.inner.lock().ledger.used_bytes()
    }

    /// How many fetches are using the entry for the URI `uri`: downloading it, waiting for
    /// it or delivering from it (0 when it is not cached or nobody uses it).
    pub fn users(&self, uri: &str) -> u32 {
        self.inner.lock().ledger.pins(uri)
    }

    /// Finds or starts the entry for `key`, waiting while another fetch downloads it.
    pub(crate) async fn enter(&self, key: &str) -> Result<Entered, FetchError> {
        loop {
            let (pin, mut progress) = match self.acquire(key) {
                Acquired::Resident(pin) => return Ok(Entered::Resident(pin)),
                Acquired::Owner(pin, download) => return Ok(Entered::Download(pin, download)),
                Acquired::Wait(pin, progress) => (pin, progress),
            };
            tracing::debug!(uri = key, "waiting for the download of a cached URI");
            let outcome = progress
                .wait_for(|flight| !matches!(flight, Flight::Downloading))
                .await
                .map(|flight| flight.clone());
            match outcome {
                Ok(Flight::Resident) => return Ok(Entered::Resident(pin)),
                Ok(Flight::Bypass) => return Ok(Entered::Bypass),
                Ok(Flight::Failed(error)) => {
                    return Err(FetchError::SharedDownload {
                        uri: key.to_owned(),
                        error,
                    })
                }
                // The downloader was cancelled and its entry is gone: start over.
                Ok(Flight::Downloading) | Err(_) => continue,
            }
        }
    }

    fn acquire(&self, key: &str) -> Acquired {
        let mut state = self.inner.lock();
        match state.ledger.lookup(key) {
            Lookup::Resident(id) => {
                state.ledger.pin(key, id);
                Acquired::Resident(self.pin(key, id))
            }
            Lookup::Downloading(id) => {
                let progress = state
                    .flights
                    .get(&id)
                    .cloned()
                    .expect("every entry being downloaded has a flight");
                state.ledger.pin(key, id);
                Acquired::Wait(self.pin(key, id), progress)
            }
            Lookup::Absent => {
                let id = state.ledger.begin(key);
                let (progress, watcher) = watch::channel(Flight::Downloading);
                state.flights.insert(id, watcher);
                let download = Download {
                    inner: self.inner.clone(),
                    key: key.to_owned(),
                    id,
                    progress,
                    finished: false,
                };
                Acquired::Owner(self.pin(key, id), download)
            }
        }
    }

    fn pin(&self, key: &str, id: EntryId) -> Pin {
        Pin {
            inner: self.inner.clone(),
            key: key.to_owned(),
            id,
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic elsewhere: every update is one call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn file(&self, id: EntryId) -> PathBuf {
        self.dir.join(format!("c{}", id.0))
    }

    /// Deletes the files of evicted entries. Nobody uses them any more.
    async fn delete(&self, evicted: Vec<EntryId>) {
        for id in evicted {
            let path = self.file(id);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => tracing::info!(path = %path.display(), "evicted from the fetcher cache"),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err, "cannot delete an evicted fetcher cache file")
                }
            }
        }
    }
}

enum Acquired {
    Resident(Pin),
    Owner(Pin, Download),
    Wait(Pin, watch::Receiver<Flight>),
}

/// What a fetch found in the cache for its URI.
pub(crate) enum Entered {
    /// The file is in the cache and pinned there.
    Resident(Pin),
    /// This fetch downloads the entry; the pin keeps it once complete.
    Download(Pin, Download),
    /// The URI is not cached: fetch it directly.
    Bypass,
}

/// One fetch's use of an entry; while any pin is held the entry is not evicted.
pub(crate) struct Pin {
    inner: Arc<Inner>,
    key: String,
    id: EntryId,
}

impl Pin {
    /// The entry's file in the cache (present once the entry is resident).
    pub(crate) fn path(&self) -> PathBuf {
        self.inner.file(self.id)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.inner.lock().ledger.unpin(&self.key, self.id);
    }
}

/// The right and duty to download one entry. Dropped unfinished (the fetch was cancelled),
/// it removes the entry and fetches waiting on it start over.
pub(crate) struct Download {
    inner: Arc<Inner>,
    key: String,
    id: EntryId,
    progress: watch::Sender<Flight>,
    finished: bool,
}

impl Download {
    /// Reserves `bytes` in the cache, evicting unused entries (and deleting their files)
    /// as needed.
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<(), NoRoom> {
        let evicted = self
            .inner
            .lock()
            .ledger
            .reserve(&self.key, self.id, bytes)?;
        self.inner.delete(evicted).await;
        Ok(())
    }

    /// The entry's file, to download into.
    pub(crate) fn path(&self) -> PathBuf {
        self.inner.file(self.id)
    }

    /// The file is complete with `bytes`: waiting fetches deliver it now.
    pub(crate) async fn complete(mut self, bytes: u64) {
        let evicted = {
            let mut state = self.inner.lock();
            state.flights.remove(&self.id);
            state.ledger.complete(&self.key, self.id, bytes)
        };
        self.finish(Flight::Resident);
        self.inner.delete(evicted).await;
    }

    /// The download failed: the entry is dropped, and this fetch and every fetch waiting on
    /// it fail with the returned error.
    pub(crate) fn fail(mut self, error: FetchError) -> FetchError {
        self.remove();
        let error = Arc::new(error);
        self.finish(Flight::Failed(error.clone()));
        FetchError::SharedDownload {
            uri: self.key.clone(),
            error,
        }
    }

    /// The item will not be cached: the entry is dropped and every fetch gets it directly.
    pub(crate) fn bypass(mut self) {
        self.remove();
        self.finish(Flight::Bypass);
    }

    fn remove(&self) {
        let mut state = self.inner.lock();
        state.flights.remove(&self.id);
        state.ledger.remove(&self.key, self.id);
    }

    fn finish(&mut self, flight: Flight) {
        self.progress.send_replace(flight);
        self.finished = true;
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        if !self.finished {
            // Removed before `progress` drops, so a woken waiter finds the entry gone.
            self.remove();
            if let Err(err) = std::fs::remove_file(self.inner.file(self.id)) {
                if err.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(uri = %self.key, error = %err, "cannot delete an abandoned fetcher cache file");
                }
            }
        }
    }
}
