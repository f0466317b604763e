//! [`Sim`]: the shared core of a running sandbox, what every handler and the gate reach.

use parking_lot::{Mutex, MutexGuard, RwLock};

use super::Cloud;
use super::faults::Faults;
use super::keys::ApiKeys;
use super::state_file::StateFile;
use super::stats::Meter;

/// A running sandbox of cloud `C`: the cloud, its state, the accepted keys, the faults, the
/// limiter with its counters and the state file.
pub struct Sim<C: Cloud> {
    cloud: C,
    keys: ApiKeys,
    faults: RwLock<Faults>,
    meter: Mutex<Meter>,
    state: Mutex<C::State>,
    state_file: Option<StateFile>,
}

impl<C: Cloud> Sim<C> {
    pub(super) fn new(
        cloud: C,
        keys: ApiKeys,
        faults: Faults,
        meter: Meter,
        state: C::State,
        state_file: Option<StateFile>,
    ) -> Self {
        Self {
            cloud,
            keys,
            faults: RwLock::new(faults),
            meter: Mutex::new(meter),
            state: Mutex::new(state),
            state_file,
        }
    }

    pub fn cloud(&self) -> &C {
        &self.cloud
    }

    /// The cloud's state, locked. Hold it briefly (never across an `.await`); after a change,
    /// release it and call [`Sim::mutated`].
    pub fn state(&self) -> MutexGuard<'_, C::State> {
        self.state.lock()
    }

    /// Schedules a (debounced) write of the state file after a change; no-op without one.
    pub fn mutated(&self) {
        if let Some(f) = &self.state_file {
            f.changed();
        }
    }

    /// Writes the state file now (no-op without one).
    pub async fn save(&self) -> anyhow::Result<()> {
        let Some(file) = &self.state_file else {
            return Ok(());
        };
        file.save(|| {
            let mut st = self.state.lock();
            self.cloud.before_save(&mut st);
            Ok(serde_json::to_vec(&*st)?)
        })
        .await
    }

    pub(super) fn state_file(&self) -> Option<&StateFile> {
        self.state_file.as_ref()
    }

    pub fn faults(&self) -> Faults {
        self.faults.read().clone()
    }

    /// Replaces the injected faults (rates are clamped to 0..=1).
    pub fn set_faults(&self, f: Faults) {
        *self.faults.write() = f.clamped();
    }

    pub fn stats(&self) -> C::Stats {
        let requests = self.meter.lock().stats();
        let mut st = self.state.lock();
        self.cloud.stats(requests, &mut st)
    }

    /// Zeroes the request counters and the request log, and the cloud's own counters
    /// (`Cloud::reset_stats`).
    pub fn reset_stats(&self) {
        self.meter.lock().reset_stats();
        let mut st = self.state.lock();
        self.cloud.reset_stats(&mut st);
    }

    pub(super) fn meter(&self) -> MutexGuard<'_, Meter> {
        self.meter.lock()
    }

    /// The fingerprint of an accepted key.
    pub(super) fn fingerprint_of(&self, key: &str) -> Option<String> {
        self.keys.fingerprint_of(key).map(str::to_string)
    }
}
