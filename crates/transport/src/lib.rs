//! HTTP plumbing shared by Strata's clients (agent→master link, executors, the scheduler
//! SDK, the CLI): JSON calls with size-limited replies and RecordIO event streams.
#![cfg_attr(test, allow(clippy::unwrap_used))]

use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use strata_api::recordio::{DecodeError, Decoder};

/// Largest reply body read into memory (16 MiB).
pub const MAX_REPLY_BYTES: usize = 16 << 20;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot reach {url}: {message}")]
    Connect { url: String, message: String },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("reply from {url} is not valid JSON: {message}")]
    Json { url: String, message: String },
    #[error("reply from {url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("event stream from {url} is corrupt: {source}")]
    Stream {
        url: String,
        #[source]
        source: DecodeError,
    },
}

impl TransportError {
    /// The HTTP status if the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            TransportError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A reply: status, selected headers and the body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Parses the body as JSON.
    pub fn json<T: DeserializeOwned>(&self, url: &str) -> Result<T, TransportError> {
        serde_json::from_slice(&self.body).map_err(|e| TransportError::Json {
            url: url.to_string(),
            message: e.to_string(),
        })
    }
}

/// A shared HTTP client (keep-alive pool; plain HTTP and HTTPS).
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::Client,
}

impl Default for Client {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl Client {
    /// A client whose calls time out after `timeout` (streams have no overall timeout).
    pub fn new(timeout: Duration) -> Self {
        let inner = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self { inner }
    }

    /// POSTs a JSON body; any status is returned as a [`Reply`] (no error for 4xx/5xx).
    pub async fn post_json<T: Serialize + ?Sized>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &T,
    ) -> Result<Reply, TransportError> {
        let mut req = self
            .inner
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(strata_api::to_ascii_json_bytes(body));
        self.finish(url, req).await
    }

    /// GETs a URL; any status is returned as a [`Reply`].
    pub async fn get(&self, url: &str) -> Result<Reply, TransportError> {
        self.finish(url, self.inner.get(url)).await
    }

    /// Like [`Client::post_json`] but a non-2xx status is an error.
    pub async fn call<T: Serialize + ?Sized>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &T,
    ) -> Result<Reply, TransportError> {
        let reply = self.post_json(url, headers, body).await?;
        ok_or_status(url, reply)
    }

    /// GETs JSON; a non-2xx status is an error.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, TransportError> {
        let reply = ok_or_status(url, self.get(url).await?)?;
        reply.json(url)
    }

    async fn finish(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Reply, TransportError> {
        let resp = req.send().await.map_err(|e| connect_error(url, e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = read_limited(url, resp).await?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Opens an event stream: POSTs `body`, expects 200, and yields RecordIO records.
    pub async fn stream<T: Serialize + ?Sized>(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &T,
    ) -> Result<EventStream, TransportError> {
        let mut req = self
            .inner
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .body(strata_api::to_ascii_json_bytes(body))
            .send()
            .await
            .map_err(|e| connect_error(url, e))?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = read_limited(url, resp).await.unwrap_or_default();
            let body = String::from_utf8_lossy(&body).into_owned();
            return Err(TransportError::Status {
                url: url.to_string(),
                status,
                body,
            });
        }
        let headers = resp.headers().clone();
        Ok(EventStream {
            url: url.to_string(),
            headers,
            body: std::sync::Mutex::new(Box::pin(resp.bytes_stream())),
            decoder: Decoder::default(),
        })
    }
}

fn ok_or_status(url: &str, reply: Reply) -> Result<Reply, TransportError> {
    if (200..300).contains(&reply.status) {
        Ok(reply)
    } else {
        let body = String::from_utf8_lossy(&reply.body).into_owned();
        Err(TransportError::Status {
            url: url.to_string(),
            status: reply.status,
            body,
        })
    }
}

fn connect_error(url: &str, e: reqwest::Error) -> TransportError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    TransportError::Connect {
        url: url.to_string(),
        message,
    }
}

async fn read_limited(url: &str, resp: reqwest::Response) -> Result<Bytes, TransportError> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| connect_error(url, e))?;
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(TransportError::TooLarge {
                url: url.to_string(),
                limit: MAX_REPLY_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// A RecordIO event stream.
pub struct EventStream {
    url: String,
    /// Response headers (e.g. `Mesos-Stream-Id`).
    pub headers: reqwest::header::HeaderMap,
    /// In a mutex only so the stream (and a scheduler holding it) is `Sync`; it is only
    /// ever reached through `&mut self`, so it is never locked.
    body: std::sync::Mutex<ByteStream>,
    decoder: Decoder,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("url", &self.url)
            .finish()
    }
}

impl EventStream {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The next raw record; `Ok(None)` when the server closed the stream.
    pub async fn next_record(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            if let Some(r) =
                self.decoder
                    .next_record()
                    .map_err(|source| TransportError::Stream {
                        url: self.url.clone(),
                        source,
                    })?
            {
                return Ok(Some(r));
            }
            let body = match self.body.get_mut() {
                Ok(b) => b,
                Err(poisoned) => poisoned.into_inner(),
            };
            match body.next().await {
                Some(Ok(chunk)) => self.decoder.feed(&chunk),
                Some(Err(e)) => return Err(connect_error(&self.url, e)),
                None => return Ok(None),
            }
        }
    }

    /// The next record parsed as `T`.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, TransportError> {
        match self.next_record().await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| TransportError::Json {
                        url: self.url.clone(),
                        message: e.to_string(),
                    })
            }
        }
    }
}
