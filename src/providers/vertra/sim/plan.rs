//! Vertra's plans as the sandbox plays them (`--plan`): the numbers of the documented limits
//! (api-current.md §3) and the features each plan gates (§6). Numbers the reference does not
//! give are marked assumed; docs/sim-vertra.md lists them.

use serde::{Deserialize, Serialize};

/// A plan, smallest first (the order gates compare in).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Economy,
    Pro,
    Scale,
    Intermediary,
    Enterprise,
}

impl Plan {
    pub const ALL: [Plan; 6] = [
        Plan::Free,
        Plan::Economy,
        Plan::Pro,
        Plan::Scale,
        Plan::Intermediary,
        Plan::Enterprise,
    ];

    /// `plan_id` as `/v1/users/me` reports it (§6; Enterprise is the 4 GB tier, id 5).
    pub fn id(self) -> u32 {
        match self {
            Plan::Free => 1,
            Plan::Economy => 2,
            Plan::Pro => 3,
            Plan::Scale => 4,
            Plan::Intermediary => 9,
            Plan::Enterprise => 5,
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Plan::Free => "Free",
            Plan::Economy => "Economy",
            Plan::Pro => "Pro",
            Plan::Scale => "Scale",
            Plan::Intermediary => "Intermediary",
            Plan::Enterprise => "Enterprise",
        }
    }

    /// The lowercase name the flag takes.
    pub fn flag_name(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Economy => "economy",
            Plan::Pro => "pro",
            Plan::Scale => "scale",
            Plan::Intermediary => "intermediary",
            Plan::Enterprise => "enterprise",
        }
    }

    /// API-key requests per minute per account (§3).
    pub fn per_minute(self) -> u32 {
        match self {
            Plan::Free => 30,
            Plan::Economy => 60,
            Plan::Pro => 120,
            Plan::Scale => 180,
            Plan::Intermediary => 240,
            Plan::Enterprise => 300,
        }
    }

    /// API-key requests per day per account (§3; Economy and Intermediary assumed).
    pub fn per_day(self) -> u32 {
        match self {
            Plan::Free => 1_000,
            Plan::Economy => 5_000,
            Plan::Pro => 20_000,
            Plan::Scale => 86_400,
            Plan::Intermediary => 172_800,
            Plan::Enterprise => 864_000,
        }
    }

    /// Deploys per account per hour (§3).
    pub fn deploys_per_hour(self) -> u32 {
        match self {
            Plan::Free => 5,
            Plan::Economy => 10,
            Plan::Pro => 20,
            Plan::Scale => 40,
            Plan::Intermediary | Plan::Enterprise => 60,
        }
    }

    /// The plan's memory in MB as `/v1/users/me` reports it (assumed; reported, not enforced).
    pub fn memory_mb(self) -> u64 {
        match self {
            Plan::Free => 256,
            Plan::Economy => 384,
            Plan::Pro => 2_048,
            Plan::Scale => 4_096,
            Plan::Intermediary => 6_144,
            Plan::Enterprise => 16_384,
        }
    }

    /// Free plans make no new apps or databases (403 `FREE_PLAN_SUSPENDED`, C19).
    pub fn can_create(self) -> bool {
        self != Plan::Free
    }

    /// Databases need 512 MB of plan memory: not Free, not Economy.
    pub fn has_databases(self) -> bool {
        self >= Plan::Pro
    }

    /// Publishing (a random subdomain): Pro and up.
    pub fn can_publish(self) -> bool {
        self >= Plan::Pro
    }

    /// Choosing the subdomain's name: Scale and up.
    pub fn can_name_subdomain(self) -> bool {
        self >= Plan::Scale
    }

    /// Custom domains: Intermediary and up.
    pub fn has_custom_domains(self) -> bool {
        self >= Plan::Intermediary
    }

    /// Workspaces: Enterprise only.
    pub fn has_workspaces(self) -> bool {
        self == Plan::Enterprise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_grow_in_every_limit_and_the_gates_follow_the_order() {
        for pair in Plan::ALL.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(a < b);
            assert!(a.per_minute() < b.per_minute(), "{a:?}");
            assert!(a.per_day() < b.per_day(), "{a:?}");
            assert!(a.deploys_per_hour() <= b.deploys_per_hour(), "{a:?}");
        }
        assert_eq!(
            Plan::ALL.map(|p| p.per_minute()),
            [30, 60, 120, 180, 240, 300]
        );
        assert_eq!(
            Plan::ALL.map(|p| p.deploys_per_hour()),
            [5, 10, 20, 40, 60, 60]
        );
        assert!(!Plan::Economy.has_databases() && Plan::Pro.has_databases());
        assert!(!Plan::Scale.has_custom_domains() && Plan::Intermediary.has_custom_domains());
        assert!(!Plan::Intermediary.has_workspaces() && Plan::Enterprise.has_workspaces());
        for p in Plan::ALL {
            let json = serde_json::to_value(p).unwrap();
            assert_eq!(json, p.flag_name());
        }
    }
}
