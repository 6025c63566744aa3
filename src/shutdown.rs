//! The shutdown signal every listener and worker watches: a `watch` channel that turns
//! true once, when SIGTERM (or a test) asks the daemon to stop.

use tokio::sync::watch;

/// Resolves once shutdown has begun (or nobody can ask for it any more).
pub async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
