//! Failpoints for crash tests: `MCLUSTER_FAILPOINTS="name=pause:MILLIS,..."` makes the named
//! point log that it was reached and then wait, so a test can kill the process exactly there.
//! Unset (always, in production), a failpoint costs one environment lookup at start-up.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

fn points() -> &'static HashMap<String, Duration> {
    static POINTS: OnceLock<HashMap<String, Duration>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let spec = std::env::var("MCLUSTER_FAILPOINTS").unwrap_or_default();
        spec.split(',')
            .filter_map(|item| {
                let (name, action) = item.trim().split_once('=')?;
                let millis = action.strip_prefix("pause:")?.parse().ok()?;
                Some((name.to_owned(), Duration::from_millis(millis)))
            })
            .collect()
    })
}

/// Pauses here if the failpoint `name` is set.
pub async fn pause(name: &str) {
    if let Some(&duration) = points().get(name) {
        tracing::warn!(failpoint = name, "failpoint reached");
        tokio::time::sleep(duration).await;
    }
}
