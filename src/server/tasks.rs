//! Background work of the collector: downsampling and pruning history on the
//! configured schedule, and forgetting jobs no node runs any more.

use super::app::App;
use crate::time::now_ms;
use std::path::PathBuf;
use std::sync::Arc;

/// Every `[retention] prune_every`, forever.
pub async fn pruner(app: Arc<App>, store_path: PathBuf) {
    let keep = app.keep();
    let mut tick = tokio::time::interval(app.cfg.retention.prune_every);
    loop {
        tick.tick().await;
        let path = store_path.clone();
        let res = tokio::task::spawn_blocking(move || {
            crate::store::open(&path).and_then(|mut s| s.downsample_and_prune(now_ms(), &keep))
        })
        .await;
        match res {
            Ok(Ok(n)) => tracing::debug!(deleted = n, "history downsampled and pruned"),
            Ok(Err(e)) => tracing::warn!("pruning failed: {e}"),
            Err(e) => tracing::warn!("pruning task failed: {e}"),
        }
        app.live.write().unwrap().prune_jobs();
    }
}
