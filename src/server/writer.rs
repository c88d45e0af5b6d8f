//! The writer thread: it owns the store's write connection and commits the
//! batches that are waiting together (group commit). A batch's sender is
//! answered only after the commit.

use crate::store::{Applied, Prepared, Store};
use crate::time::now_ms;
use tokio::sync::{mpsc, oneshot};

/// A batch for the writer.
pub type Batch = Vec<Prepared>;
/// A batch and where to send its outcome (with the batch back).
pub type WriteJob = (Batch, oneshot::Sender<Result<(Applied, Batch), String>>);

/// Most batches committed in one transaction.
const GROUP: usize = 256;

/// Runs until every sender is dropped.
pub fn run(mut store: Box<dyn Store>, mut rx: mpsc::Receiver<WriteJob>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (batches, replies): (Vec<Batch>, Vec<_>) = jobs.into_iter().unzip();
        match store.apply(&batches, now_ms()) {
            Ok(outcomes) => {
                for ((reply, o), b) in replies.into_iter().zip(outcomes).zip(batches) {
                    let _ = reply.send(Ok((o, b)));
                }
            }
            Err(e) => {
                tracing::error!("store write failed, batch refused (agents will retry): {e}");
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}
