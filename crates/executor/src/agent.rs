//! The HTTP side of the executor API: a task that opens the SUBSCRIBE stream and forwards
//! its events, and an ordered poster for UPDATE calls (the agent expects 202 for each).

use std::time::Duration;
use strata_api::executor::{Call, Event};
use strata_transport::{Client, TransportError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Attempts per UPDATE post before leaving it to the next SUBSCRIBE.
const POST_ATTEMPTS: u32 = 3;
/// Delay before the first repeated post (doubles).
const POST_RETRY_DELAY: Duration = Duration::from_millis(200);

/// What the stream task reports; `generation` tells streams apart across resubscriptions.
#[derive(Debug)]
pub enum FromAgent {
    Event {
        generation: u64,
        event: Box<Event>,
    },
    /// The stream ended or broke after it was opened.
    Ended {
        generation: u64,
        reason: String,
    },
    /// The SUBSCRIBE request itself failed.
    Refused {
        generation: u64,
        status: Option<u16>,
        message: String,
    },
}

/// Opens the SUBSCRIBE stream and forwards every event until it ends.
pub fn spawn_stream(
    client: Client,
    url: String,
    call: Call,
    generation: u64,
    tx: mpsc::Sender<FromAgent>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut stream = match client.stream(&url, &[], &call).await {
            Ok(stream) => stream,
            Err(e) => {
                let _ = tx
                    .send(FromAgent::Refused {
                        generation,
                        status: e.status(),
                        message: e.to_string(),
                    })
                    .await;
                return;
            }
        };
        let reason = loop {
            match stream.next::<Event>().await {
                Ok(Some(event)) => {
                    if tx
                        .send(FromAgent::Event {
                            generation,
                            event: Box::new(event),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                // An event type this executor does not know: skip it, as Mesos executors do.
                Err(TransportError::Json { message, .. }) => {
                    tracing::warn!(message, "Skipping an event that could not be parsed")
                }
                Ok(None) => break "the agent closed the event stream".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        let _ = tx.send(FromAgent::Ended { generation, reason }).await;
    })
}

/// Posts calls in order. A failed post is retried a few times unless the agent rejected
/// it (4xx); an update that still did not get through stays unacknowledged and is resent
/// with the next SUBSCRIBE.
pub fn spawn_poster(client: Client, url: String, mut rx: mpsc::Receiver<Call>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(call) = rx.recv().await {
            post_with_retries(&client, &url, &call).await;
        }
    })
}

async fn post_with_retries(client: &Client, url: &str, call: &Call) {
    let mut delay = POST_RETRY_DELAY;
    for attempt in 1..=POST_ATTEMPTS {
        let error = match client.call(url, &[], call).await {
            Ok(_) => return,
            Err(e) => e,
        };
        let rejected = error.status().is_some_and(|s| (400..500).contains(&s));
        tracing::warn!(call = call.body.type_name(), attempt, %error, "Posting to the agent failed");
        if rejected || attempt == POST_ATTEMPTS {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2);
    }
}
