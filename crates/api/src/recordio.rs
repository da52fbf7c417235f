//! RecordIO framing (`<decimal byte length>\n<payload>`, no separator, no trailing newline):
//! an encoder and an incremental decoder with a record size limit.

use bytes::{Buf, Bytes, BytesMut};

/// Frames one payload as a RecordIO record.
pub fn encode(payload: &[u8]) -> Bytes {
    let header = format!("{}\n", payload.len());
    let mut out = BytesMut::with_capacity(header.len() + payload.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out.freeze()
}

/// Why a RecordIO stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("RecordIO length header is not a decimal number: {0:?}")]
    BadHeader(String),
    #[error("RecordIO record of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
}

/// Incremental decoder: feed it chunks as they arrive, pop complete records.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    limit: usize,
    pending_len: Option<usize>,
}

/// Default maximum record size (64 MiB), far above any event Strata sends.
pub const DEFAULT_RECORD_LIMIT: usize = 64 << 20;

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_RECORD_LIMIT)
    }
}

impl Decoder {
    /// A decoder that refuses records larger than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            limit,
            pending_len: None,
        }
    }

    /// Appends received bytes; chunk boundaries carry no meaning.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Returns the next complete record, `Ok(None)` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let len = match self.pending_len {
            Some(len) => len,
            None => match self.read_header()? {
                Some(len) => len,
                None => return Ok(None),
            },
        };
        if self.buf.len() < len {
            self.pending_len = Some(len);
            return Ok(None);
        }
        self.pending_len = None;
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    fn read_header(&mut self) -> Result<Option<usize>, DecodeError> {
        let Some(nl) = self.buf.iter().position(|b| *b == b'\n') else {
            if self.buf.len() > 20 {
                return Err(DecodeError::BadHeader(lossy(&self.buf[..20])));
            }
            return Ok(None);
        };
        let text = lossy(&self.buf[..nl]);
        let len: usize = text
            .trim()
            .parse()
            .map_err(|_| DecodeError::BadHeader(text.clone()))?;
        if len > self.limit {
            return Err(DecodeError::TooLarge {
                len,
                limit: self.limit,
            });
        }
        self.buf.advance(nl + 1);
        Ok(Some(len))
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_like_mesos() {
        assert_eq!(
            &encode(br#"{"type":"HEARTBEAT"}"#)[..],
            b"20\n{\"type\":\"HEARTBEAT\"}"
        );
    }

    #[test]
    fn rejects_garbage_and_oversized_records() {
        let mut d = Decoder::new(10);
        d.feed(b"abc\nxyz");
        assert!(matches!(d.next_record(), Err(DecodeError::BadHeader(_))));
        let mut d = Decoder::new(10);
        d.feed(b"11\n");
        assert_eq!(
            d.next_record(),
            Err(DecodeError::TooLarge { len: 11, limit: 10 })
        );
    }

    proptest! {
        #[test]
        fn any_chunking_round_trips(records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..50), 0..10),
                                    cut in 1usize..7) {
            let stream: Vec<u8> = records.iter().flat_map(|r| encode(r).to_vec()).collect();
            let mut d = Decoder::default();
            let mut out = Vec::new();
            for chunk in stream.chunks(cut) {
                d.feed(chunk);
                while let Some(r) = d.next_record().unwrap() {
                    out.push(r.to_vec());
                }
            }
            prop_assert_eq!(out, records);
        }
    }
}
