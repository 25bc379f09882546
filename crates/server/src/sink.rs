//! The background writer of request events. Handlers never wait for the request log: each
//! answered request is queued and written in batches, one transaction per batch. When the
//! queue is full the event is dropped and counted, so a slow disk cannot stall the API.
//! Events a client asks to append go through the store directly and are acknowledged only
//! once committed. Model-call events (they carry cost) use a second writer whose queue
//! never drops.

use crate::metrics::Metrics;
use regelkreis_core::NewEvent;
use regelkreis_store::Store;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const QUEUE: usize = 16_384;
const BATCH: usize = 1_024;
/// How long the writer waits for more events before it commits a batch that is not full:
/// under steady traffic one commit (and one fsync) carries many events instead of one.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

enum Tx {
    Bounded(mpsc::Sender<NewEvent>),
    Unbounded(mpsc::UnboundedSender<NewEvent>),
}

enum Rx {
    Bounded(mpsc::Receiver<NewEvent>),
    Unbounded(mpsc::UnboundedReceiver<NewEvent>),
}

impl Rx {
    async fn recv_many(&mut self, buf: &mut Vec<NewEvent>, limit: usize) -> usize {
        match self {
            Rx::Bounded(r) => r.recv_many(buf, limit).await,
            Rx::Unbounded(r) => r.recv_many(buf, limit).await,
        }
    }

    /// Takes what is queued now, up to `limit` in `buf`.
    fn drain(&mut self, buf: &mut Vec<NewEvent>, limit: usize) {
        while buf.len() < limit {
            let next = match self {
                Rx::Bounded(r) => r.try_recv().ok(),
                Rx::Unbounded(r) => r.try_recv().ok(),
            };
            match next {
                Some(e) => buf.push(e),
                None => break,
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct EventSink {
    tx: Arc<Mutex<Option<Tx>>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    metrics: Arc<Metrics>,
}

impl EventSink {
    /// A writer whose queue drops events when full (the request log).
    pub(crate) fn spawn(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::channel::<NewEvent>(QUEUE);
        Self::start(store, metrics, Tx::Bounded(tx), Rx::Bounded(rx))
    }

    /// A writer whose queue never drops (model calls: they carry money). A disk slower
    /// than the calls grows the queue in memory instead.
    pub(crate) fn spawn_lossless(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<NewEvent>();
        Self::start(store, metrics, Tx::Unbounded(tx), Rx::Unbounded(rx))
    }

    fn start(store: Arc<dyn Store>, metrics: Arc<Metrics>, tx: Tx, mut rx: Rx) -> Self {
        let m = metrics.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if batch.len() < BATCH {
                    tokio::time::sleep(LINGER).await;
                    rx.drain(&mut batch, BATCH);
                }
                let events = std::mem::take(&mut batch);
                let store = store.clone();
                let n = events.len() as u64;
                let written =
                    tokio::task::spawn_blocking(move || store.append_events(&events)).await;
                match written {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        m.events_failed.inc_by(n);
                        tracing::error!("request events not written: {e}");
                    }
                    Err(e) => {
                        m.events_failed.inc_by(n);
                        tracing::error!("request event writer failed: {e}");
                    }
                }
            }
        });
        EventSink {
            tx: Arc::new(Mutex::new(Some(tx))),
            task: Arc::new(Mutex::new(Some(task))),
            metrics,
        }
    }

    /// Queues an event without waiting.
    pub(crate) fn push(&self, event: NewEvent) {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let sent = match guard.as_ref() {
            Some(Tx::Bounded(tx)) => tx.try_send(event).is_ok(),
            Some(Tx::Unbounded(tx)) => tx.send(event).is_ok(),
            None => false,
        };
        if !sent {
            self.metrics.events_dropped.inc();
        }
    }

    /// Stops accepting events and waits until the queued ones are written.
    pub(crate) async fn close(&self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!("request event writer ended badly: {e}");
            }
        }
    }
}
