//! One upstream call shared by every identical request in flight: the call runs in its own
//! task and appends what it sends to a buffer; every caller reads that buffer from the
//! start, so late joiners of a stream see the same bytes as the first.

use crate::CallSummary;
use crate::GatewayError;
use bytes::Bytes;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// How a flight ended.
pub type FlightEnd = Result<CallSummary, GatewayError>;

struct Inner {
    chunks: Vec<Bytes>,
    end: Option<Arc<FlightEnd>>,
}

/// A shared call.
pub struct Flight {
    inner: Mutex<Inner>,
    tick: watch::Sender<u64>,
}

impl Flight {
    /// An empty flight.
    pub fn new() -> Arc<Self> {
        Arc::new(Flight {
            inner: Mutex::new(Inner {
                chunks: Vec::new(),
                end: None,
            }),
            tick: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends bytes for every reader.
    pub fn push(&self, bytes: Bytes) {
        self.lock().chunks.push(bytes);
        self.tick.send_modify(|t| *t += 1);
    }

    /// Ends the flight.
    pub fn finish(&self, end: FlightEnd) {
        self.lock().end = Some(Arc::new(end));
        self.tick.send_modify(|t| *t += 1);
    }

    /// Everything pushed, concatenated (for the cache).
    pub fn bytes(&self) -> Bytes {
        let g = self.lock();
        match g.chunks.len() {
            1 => g.chunks[0].clone(),
            _ => Bytes::from(g.chunks.concat()),
        }
    }

    /// A reader from the first chunk.
    pub fn reader(self: &Arc<Self>) -> FlightReader {
        FlightReader {
            flight: self.clone(),
            next: 0,
            rx: self.tick.subscribe(),
        }
    }
}

/// What a reader got next.
pub enum Read {
    /// More bytes.
    Bytes(Bytes),
    /// The end.
    End(Arc<FlightEnd>),
}

/// Reads a flight's chunks in order.
pub struct FlightReader {
    flight: Arc<Flight>,
    next: usize,
    rx: watch::Receiver<u64>,
}

impl FlightReader {
    /// The next chunk, or the end once every chunk was read.
    pub async fn next(&mut self) -> Read {
        loop {
            self.rx.borrow_and_update();
            {
                let g = self.flight.lock();
                if let Some(b) = g.chunks.get(self.next) {
                    self.next += 1;
                    return Read::Bytes(b.clone());
                }
                if let Some(end) = &g.end {
                    return Read::End(end.clone());
                }
            }
            if self.rx.changed().await.is_err() {
                // The sender lives in the flight, which this reader holds: unreachable in
                // practice; end as an internal failure rather than spin.
                return Read::End(Arc::new(Err(GatewayError::Internal(
                    "flight closed without an end".into(),
                ))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn late_readers_see_every_chunk() {
        let f = Flight::new();
        let mut early = f.reader();
        f.push(Bytes::from_static(b"a"));
        let writer = {
            let f = f.clone();
            tokio::spawn(async move {
                for i in 0..50u8 {
                    f.push(Bytes::from(vec![i]));
                    tokio::task::yield_now().await;
                }
                f.finish(Err(GatewayError::BadRequest("x".into())));
            })
        };
        let mut late = f.reader();
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (r, out) in [(&mut early, &mut a), (&mut late, &mut b)] {
            while let Read::Bytes(x) = r.next().await {
                out.extend_from_slice(&x);
            }
        }
        writer.await.unwrap();
        assert_eq!(a.len(), 51);
        assert_eq!(a, b);
    }
}
