//! Streaming response bodies: RecordIO frames from the event loop interleaved with
//! periodic HEARTBEATs, and a guard that tells the loop when the reader goes away.

use crate::event_loop::{Handle, StreamKind};
use axum::body::Body;
use bytes::Bytes;
use futures_util::stream;
use std::time::Duration;
use strata_master_core::ConnId;
use tokio::sync::mpsc;

/// Tells the event loop that a stream ended when dropped.
struct Guard {
    handle: Handle,
    conn: ConnId,
    kind: StreamKind,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.handle.stream_gone(self.conn, self.kind);
    }
}

/// A response body that forwards `rx` and adds `heartbeat` frames every `every`.
pub fn body(
    handle: Handle,
    conn: ConnId,
    kind: StreamKind,
    rx: mpsc::Receiver<Bytes>,
    heartbeat: Option<(Duration, Bytes)>,
) -> Body {
    let guard = Guard { handle, conn, kind };
    let interval = heartbeat.as_ref().map(|(every, _)| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + *every, *every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let frame = heartbeat.map(|(_, f)| f);
    let state = (rx, interval, frame, guard);
    let s = stream::unfold(state, |(mut rx, mut interval, frame, guard)| async move {
        let next = match interval.as_mut() {
            Some(i) => tokio::select! {
                biased;
                item = rx.recv() => item,
                _ = i.tick() => frame.clone(),
            },
            None => rx.recv().await,
        };
        next.map(|bytes| {
            (
                Ok::<Bytes, std::convert::Infallible>(bytes),
                (rx, interval, frame, guard),
            )
        })
    });
    Body::from_stream(s)
}
