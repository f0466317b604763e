//! [`SimHandle`]: a running sandbox, as a test (or `stratus sim`) holds it. A cloud adds its own
//! methods (seeding, inspecting its resources) with an inherent `impl SimHandle<ItsCloud>`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::faults::Faults;
use super::keys::key_fingerprint;
use super::{Cloud, Sim};

/// A running sandbox. Dropping it stops the server (without a final save); prefer
/// [`SimHandle::shutdown`].
pub struct SimHandle<C: Cloud> {
    sim: Arc<Sim<C>>,
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    saver: Option<JoinHandle<()>>,
}

impl<C: Cloud> fmt::Debug for SimHandle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("cloud", &self.sim.cloud().name())
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl<C: Cloud> SimHandle<C> {
    pub(super) fn new(
        sim: Arc<Sim<C>>,
        addr: SocketAddr,
        stop: watch::Sender<bool>,
        server: JoinHandle<std::io::Result<()>>,
        saver: Option<JoinHandle<()>>,
    ) -> Self {
        Self {
            sim,
            addr,
            stop: Some(stop),
            server: Some(server),
            saver,
        }
    }

    /// The running sandbox, for the cloud's own handle methods.
    pub fn sim(&self) -> &Sim<C> {
        &self.sim
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the root, where `/_sim` lives (loopback when bound to an
    /// unspecified address).
    pub fn root_url(&self) -> String {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{a}")
    }

    /// The API's base URL, `http://127.0.0.1:PORT/api/v1`: the root and the cloud's prefix.
    pub fn base_url(&self) -> String {
        format!("{}{}", self.root_url(), self.sim.cloud().api_prefix())
    }

    pub fn stats(&self) -> C::Stats {
        self.sim.stats()
    }

    /// Zeroes the request counters of [`SimHandle::stats`] and the request log.
    pub fn reset_stats(&self) {
        self.sim.reset_stats()
    }

    /// When each request of API key `key` was let through (time since the unix epoch), oldest
    /// first: count them in any window with `crate::sim::rate_limit::max_in_any_window`.
    pub fn request_times(&self, key: &str) -> Vec<Duration> {
        self.sim.meter().request_times(&key_fingerprint(key))
    }

    /// When each request of any key of `group` (`Config::key_groups`) was let through.
    pub fn group_request_times(&self, group: &str) -> Vec<Duration> {
        self.sim.meter().group_request_times(group)
    }

    /// The writes let through since the start or the last [`SimHandle::reset_stats`], oldest
    /// first (the last [`super::stats::WRITE_LOG_LEN`]).
    pub fn writes(&self) -> Vec<super::stats::WriteRecord> {
        self.sim.meter().writes()
    }

    /// Replaces the injected faults (rates are clamped to 0..=1).
    pub fn set_faults(&self, f: Faults) {
        self.sim.set_faults(f)
    }

    pub fn faults(&self) -> Faults {
        self.sim.faults()
    }

    /// Writes the state file now (no-op without one).
    pub async fn save(&self) -> anyhow::Result<()> {
        self.sim.save().await
    }

    /// Stops serving (in-flight requests get up to 2 s) and saves the state.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        if let Some(saver) = self.saver.take() {
            let _ = saver.await;
        }
        if let Err(e) = self.sim.save().await {
            tracing::warn!(error = %format!("{e:#}"), "sandbox could not save its state on shutdown");
        }
    }
}

impl<C: Cloud> Drop for SimHandle<C> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}
