//! What a test can ask Vertra's running sandbox beyond the framework's handle: its resources
//! (in the sandbox's own wire types), the passwords it issued, and the platform's doings (a
//! plan change, scopes, stops for lack of credits, shield cooldowns, DNS validation, failing
//! safety snapshots). `/_sim` offers the same (`control`).

use std::time::Duration;

use jiff::Timestamp;

use super::config::Settings;
use super::plan::Plan;
use super::scopes::{Scopes, parse_list};
use super::state::{CreateCounts, Shield, after};
use super::wire::{App, Database, DnsRecord, Workspace};
use super::{Sim, VertraSimHandle};
use crate::sim::key_fingerprint;

impl Sim {
    pub fn apps(&self) -> Vec<App> {
        let plan = self.cloud().plan();
        self.state().app_views(plan, Timestamp::now())
    }

    pub fn databases(&self) -> Vec<Database> {
        let plan = self.cloud().plan();
        self.state().database_views(plan)
    }

    /// Every workspace, soft-deleted ones included, in creation order.
    pub fn workspaces(&self) -> Vec<Workspace> {
        let plan = self.cloud().plan();
        let st = self.state();
        let mut all: Vec<_> = st.workspaces.values().collect();
        all.sort_by_key(|w| w.seq);
        all.into_iter()
            .map(|w| st.workspace_view(w, plan))
            .collect()
    }

    pub fn database_password(&self, id: &str) -> Option<String> {
        self.state().databases.get(id).map(|d| d.password.clone())
    }

    /// Stops (or lets go of) an app as the platform does when credits run out: `down`, with
    /// `offline_since`; start answers 403 `INSUFFICIENT_CREDITS` until it is let go. The app
    /// stays down after. `None`: no such app.
    pub fn set_app_offline(&self, id: &str, offline: bool) -> Option<App> {
        let plan = self.cloud().plan();
        let now = Timestamp::now();
        let mut st = self.state();
        let owner = st.user.id.clone();
        let app = st.app(id, None, now).ok()?;
        if offline {
            if app.offline_since.is_none() {
                app.offline_since = Some(now);
            }
            app.running = false;
            app.installing_until = None;
            app.started_at = None;
        } else {
            app.offline_since = None;
        }
        app.updated_at = now;
        let view = app.view(&owner, plan);
        drop(st);
        self.mutated();
        Some(view)
    }

    /// The same for a database.
    pub fn set_database_offline(&self, id: &str, offline: bool) -> Option<Database> {
        let plan = self.cloud().plan();
        let now = Timestamp::now();
        let mut st = self.state();
        let owner = st.user.id.clone();
        let db = st.databases.get_mut(id)?;
        if offline {
            if db.offline_since.is_none() {
                db.offline_since = Some(now);
            }
            db.running = false;
            db.started_at = None;
        } else {
            db.offline_since = None;
        }
        db.updated_at = now;
        let view = db.view(&owner, plan);
        drop(st);
        self.mutated();
        Some(view)
    }

    /// Puts an app in a shield cooldown for `length` (`None` ends it): start, restart, config
    /// changes and delete answer 403 `APP_SHIELD_COOLDOWN` meanwhile.
    pub fn set_shield_cooldown(
        &self,
        id: &str,
        length: Option<Duration>,
        reason: &str,
        direction: &str,
        strikes: u32,
    ) -> Option<App> {
        let plan = self.cloud().plan();
        let now = Timestamp::now();
        let mut st = self.state();
        let owner = st.user.id.clone();
        let app = st.app(id, None, now).ok()?;
        app.shield = length.map(|d| Shield {
            until: after(now, d),
            reason: reason.to_string(),
            direction: direction.to_string(),
            strikes,
        });
        let view = app.view(&owner, plan);
        drop(st);
        self.mutated();
        Some(view)
    }

    /// Marks an app's custom-domain records validated (`active`). `None`: no such app, or no
    /// custom domain.
    pub fn mark_dns_active(&self, id: &str) -> Option<Vec<DnsRecord>> {
        let mut st = self.state();
        let app = st.app(id, None, Timestamp::now()).ok()?;
        app.custom_domain.as_mut()?.active = true;
        let records = app.dns_records().ok();
        drop(st);
        self.mutated();
        records
    }

    /// Gives key `key` only `scopes` (a comma-separated list, presets allowed), or every scope
    /// again (`None`). The key must be one the sandbox accepts to matter.
    pub fn set_key_scopes(&self, key: &str, scopes: Option<&str>) -> Result<(), String> {
        let parsed: Option<Scopes> = scopes.map(parse_list).transpose()?;
        let fp = key_fingerprint(key);
        self.cloud().update_settings(|s| match parsed {
            Some(p) => {
                s.key_scopes.insert(fp, p);
            }
            None => {
                s.key_scopes.remove(&fp);
            }
        });
        Ok(())
    }
}

impl VertraSimHandle {
    pub fn apps(&self) -> Vec<App> {
        self.sim().apps()
    }

    pub fn app(&self, id: &str) -> Option<App> {
        self.apps().into_iter().find(|a| a.id == id)
    }

    pub fn databases(&self) -> Vec<Database> {
        self.sim().databases()
    }

    pub fn database(&self, id: &str) -> Option<Database> {
        self.databases().into_iter().find(|d| d.id == id)
    }

    /// Every workspace, soft-deleted ones included.
    pub fn workspaces(&self) -> Vec<Workspace> {
        self.sim().workspaces()
    }

    /// Successful creates per kind since the start (or the last stats reset): more creates
    /// than resources a client meant to make are duplicates.
    pub fn creates(&self) -> CreateCounts {
        self.sim().state().creates
    }

    /// The database's current password (the last one a reset answered, or the first).
    pub fn database_password(&self, id: &str) -> Option<String> {
        self.sim().database_password(id)
    }

    pub fn settings(&self) -> Settings {
        self.sim().cloud().settings()
    }

    /// Changes the plan: its limits apply at once (their windows start empty), its gates too.
    pub fn set_plan(&self, plan: Plan) {
        self.sim().cloud().update_settings(|s| s.plan = plan);
    }

    /// Overrides the per-minute budget (`None`: the plan's, `Some(0)`: unlimited).
    pub fn set_per_minute(&self, n: Option<u32>) {
        self.sim().cloud().update_settings(|s| s.per_minute = n);
    }

    /// Overrides the per-day budget (`None`: the plan's, `Some(0)`: unlimited).
    pub fn set_per_day(&self, n: Option<u32>) {
        self.sim().cloud().update_settings(|s| s.per_day = n);
    }

    /// Overrides the deploys per hour (`None`: the plan's, `Some(0)`: unlimited).
    pub fn set_deploys_per_hour(&self, n: Option<u32>) {
        self.sim()
            .cloud()
            .update_settings(|s| s.deploys_per_hour = n);
    }

    /// Lifecycle calls per app per minute (0 = unlimited).
    pub fn set_lifecycle_per_minute(&self, n: u32) {
        self.sim()
            .cloud()
            .update_settings(|s| s.lifecycle_per_minute = n);
    }

    /// How long installs started from now on take.
    pub fn set_install_delay(&self, d: Duration) {
        self.sim().cloud().update_settings(|s| s.install_delay = d);
    }

    /// See [`Sim::set_key_scopes`].
    pub fn set_key_scopes(&self, key: &str, scopes: Option<&str>) -> Result<(), String> {
        self.sim().set_key_scopes(key, scopes)
    }

    /// The next `n` database deletes fail their safety snapshot (500 `SNAPSHOT_FAILED`,
    /// nothing deleted).
    pub fn fail_next_deletes(&self, n: u64) {
        self.sim()
            .cloud()
            .update_settings(|s| s.snapshot_failures.next = n);
    }

    /// Every database delete fails its safety snapshot, or none does.
    pub fn set_delete_snapshots_failing(&self, always: bool) {
        self.sim()
            .cloud()
            .update_settings(|s| s.snapshot_failures.always = always);
    }

    pub fn mark_dns_active(&self, app_id: &str) -> bool {
        self.sim().mark_dns_active(app_id).is_some()
    }

    pub fn set_app_offline(&self, id: &str, offline: bool) -> bool {
        self.sim().set_app_offline(id, offline).is_some()
    }

    pub fn set_database_offline(&self, id: &str, offline: bool) -> bool {
        self.sim().set_database_offline(id, offline).is_some()
    }

    /// A shield cooldown of `length` (reason `burst`, direction `in`, 1 strike); `None` ends it.
    pub fn set_shield_cooldown(&self, app_id: &str, length: Option<Duration>) -> bool {
        self.sim()
            .set_shield_cooldown(app_id, length, "burst", "in", 1)
            .is_some()
    }

    /// When each request the account's budgets let through arrived (since the unix epoch),
    /// oldest first: count any window with `crate::sim::rate_limit::max_in_any_window`.
    pub fn account_request_times(&self) -> Vec<Duration> {
        self.sim().cloud().meter().account_times()
    }

    /// When each counted deploy arrived, oldest first.
    pub fn deploy_times(&self) -> Vec<Duration> {
        self.sim().cloud().meter().deploy_times()
    }

    /// When each lifecycle call on `app_id` was let through, oldest first.
    pub fn lifecycle_times(&self, app_id: &str) -> Vec<Duration> {
        self.sim().cloud().meter().lifecycle_times(app_id)
    }
}
