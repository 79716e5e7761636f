//! What the rest of the node knows of the virtual IP: its configuration, whether this node
//! holds it, its history, and the fence a leadership hand-over raises around it. The manager
//! (`vip.rs`) keeps it current; the cluster, the admin API and `failover` read it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use crate::config::VipConfig;

/// How long a hand-over may keep the VIP released on the old leader.
const STEP_DOWN_LIMIT: Duration = Duration::from_secs(10);

/// The VIP as the rest of the node sees it: the configuration, whether it is held, and the
/// hand-over fence `failover` uses.
pub struct VipState {
    pub config: Option<VipConfig>,
    pub(super) held: AtomicBool,
    pub(super) acquisitions: AtomicU64,
    /// Milliseconds of the last failover (see `VipView`); `u64::MAX` when there was none.
    pub(super) last_failover_ms: AtomicU64,
    pub(super) last_change_unix_ms: AtomicU64,
    pub(super) stepping_down: Mutex<Option<Instant>>,
    pub(super) changed: Notify,
    /// Why this node cannot hold the VIP (its interface or address cannot be configured);
    /// None while it can. Such a node hands leadership to another data node and is not a
    /// `failover` target.
    pub(super) problem: Mutex<Option<String>>,
}

/// `GET /v1/node`'s `vip` field.
pub use raft_store::api::VipStatus as VipView;

impl VipState {
    pub fn new(config: Option<VipConfig>) -> VipState {
        VipState {
            config,
            held: AtomicBool::new(false),
            acquisitions: AtomicU64::new(0),
            last_failover_ms: AtomicU64::new(u64::MAX),
            last_change_unix_ms: AtomicU64::new(unix_ms()),
            stepping_down: Mutex::new(None),
            changed: Notify::new(),
            problem: Mutex::new(None),
        }
    }

    /// Why this node cannot hold the VIP right now (None: it can, or it has none).
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().expect("vip lock").clone()
    }

    /// Records whether the VIP can be configured here; returns whether that changed.
    pub(super) fn set_problem(&self, problem: Option<String>) -> bool {
        let mut current = self.problem.lock().expect("vip lock");
        let changed = *current != problem;
        *current = problem;
        changed
    }

    pub fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    pub fn acquisitions(&self) -> u64 {
        self.acquisitions.load(Ordering::Relaxed)
    }

    pub fn last_failover(&self) -> Option<Duration> {
        match self.last_failover_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    pub fn view(&self) -> Option<VipView> {
        let config = self.config.as_ref()?;
        Some(VipView {
            addresses: config.addresses.iter().map(ToString::to_string).collect(),
            interface: config.interface.clone(),
            held: self.held(),
            acquisitions: self.acquisitions(),
            last_failover_ms: self.last_failover().map(|d| d.as_millis() as u64),
            last_change_unix_ms: Some(self.last_change_unix_ms.load(Ordering::Relaxed)),
            problem: self.problem(),
        })
    }

    /// Releases the VIP before leadership is handed over (a transfer election does not wait
    /// for the lease, so the old leader must let go first) and keeps it released until the
    /// returned guard is dropped. Waits until the VIP is actually down, at most 2 s.
    pub async fn step_down(&self) -> StepDown<'_> {
        *self.stepping_down.lock().expect("vip lock") = Some(Instant::now() + STEP_DOWN_LIMIT);
        self.changed.notify_one();
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.held() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        StepDown(self)
    }

    pub(super) fn stepping_down(&self) -> bool {
        let mut guard = self.stepping_down.lock().expect("vip lock");
        match *guard {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *guard = None;
                false
            }
            None => false,
        }
    }

    pub(super) fn set_held(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
        self.last_change_unix_ms.store(unix_ms(), Ordering::Relaxed);
    }
}

/// Keeps the VIP released while a leadership hand-over runs.
pub struct StepDown<'a>(&'a VipState);

impl Drop for StepDown<'_> {
    fn drop(&mut self) {
        *self.0.stepping_down.lock().expect("vip lock") = None;
        self.0.changed.notify_one();
    }
}

pub(super) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl std::fmt::Debug for VipState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VipState")
            .field("config", &self.config)
            .field("held", &self.held())
            .finish()
    }
}
