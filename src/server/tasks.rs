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
            crate::store::open_again(&path).and_then(|mut s| s.downsample_and_prune(now_ms(), &keep))
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

/// How far back each look at the shared store reaches beyond the last one
/// (a transaction may commit a little after its rows were stamped).
const PEER_SLACK_MS: i64 = 5_000;

/// With a store shared by several collectors: the nodes other collectors
/// took reports from, read back into live state every half report interval
/// (at most every 5 s), so a reader behind a load balancer sees every node.
pub async fn peers(app: Arc<App>) {
    let every =
        (app.cfg.nodes.interval / 2).clamp(std::time::Duration::from_millis(200), std::time::Duration::from_secs(5));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let limits = app.cfg.ingest.decode_limits();
    let mut since = i64::MIN;
    loop {
        tick.tick().await;
        match app.read(move |s| s.reports_stored_since(limits, since)).await {
            Ok((reports, store_now)) => {
                let now = now_ms();
                let mut live = app.live.write().unwrap();
                let taken = reports.iter().filter(|(r, first)| live.update_from_peer(r, *first, now)).count();
                drop(live);
                if taken > 0 {
                    tracing::debug!(taken, "reports other collectors stored, taken into live state");
                }
                since = store_now - PEER_SLACK_MS;
            }
            Err(e) => tracing::warn!("reading other collectors' reports failed: {}", e.message),
        }
    }
}
