//! What a test can ask Strettch's running sandbox beyond the framework's handle: its computes,
//! domains and records, seeded or reshaped. Answers are in the sandbox's own wire types.

use jiff::Timestamp;

use super::wire::{Compute, Domain, DomainStatus, Record};
use super::{RecordGroup, Sim, SimHandle, validate};

impl Sim {
    /// Creates `n` computes that are RUNNING at once.
    pub fn seed(&self, n: usize, tags: &[String]) -> Vec<String> {
        let ids = self.state().seed_computes(n, tags, Timestamp::now());
        self.mutated();
        ids
    }

    /// Present computes (DESTROYING ones included), as the API shows them.
    pub fn computes(&self) -> Vec<Compute> {
        self.state().all_computes(Timestamp::now())
    }

    pub fn record_groups(&self) -> Vec<RecordGroup> {
        self.state().record_groups()
    }

    pub fn domains(&self) -> Vec<Domain> {
        let now = Timestamp::now();
        self.state().domains.iter().map(|d| d.view(now)).collect()
    }
}

impl SimHandle {
    /// Changes a compute's addresses: `None` leaves one unchanged, `Some("")` clears it.
    /// False if the compute does not exist or an address is not IPv4. `updatedAt` moves.
    pub fn set_compute_address(
        &self,
        id: &str,
        ipv4: Option<String>,
        private_ipv4: Option<String>,
    ) -> bool {
        let parse = |v: Option<String>| v.map(|s| validate::optional_ipv4(&s)).transpose();
        let (Ok(ipv4), Ok(private_ipv4)) = (parse(ipv4), parse(private_ipv4)) else {
            return false;
        };
        let sim = self.sim();
        let ok = sim
            .state()
            .set_address(id, ipv4, private_ipv4, Timestamp::now())
            .is_ok();
        if ok {
            sim.mutated();
        }
        ok
    }

    /// Present computes (DESTROYING ones included), as the API shows them.
    pub fn computes(&self) -> Vec<Compute> {
        self.sim().computes()
    }

    /// Deletes a compute as its owner would, from outside the API (no key, no rate limit, not
    /// counted): it is DESTROYING, then gone. False if it does not exist.
    pub fn delete_compute(&self, id: &str) -> bool {
        let sim = self.sim();
        let ok = sim.state().delete_compute(id, Timestamp::now()).is_ok();
        if ok {
            sim.mutated();
        }
        ok
    }

    pub fn domains(&self) -> Vec<Domain> {
        self.sim().domains()
    }

    /// The records of a domain (empty if the domain does not exist).
    pub fn records(&self, domain_id: &str) -> Vec<Record> {
        self.sim()
            .state()
            .domain(domain_id)
            .map(|d| d.records.clone())
            .unwrap_or_default()
    }

    /// Every zone's records grouped by (name, type, value), to count duplicates.
    pub fn record_groups(&self) -> Vec<RecordGroup> {
        self.sim().record_groups()
    }

    /// Forces a domain's status (`None` returns it to the clock). False if it does not exist.
    pub fn set_domain_status(&self, domain_id: &str, status: Option<DomainStatus>) -> bool {
        let sim = self.sim();
        let ok = sim
            .state()
            .set_domain_status(domain_id, status, Timestamp::now())
            .is_ok();
        if ok {
            sim.mutated();
        }
        ok
    }

    /// Creates `n` computes that are RUNNING at once (hostName `seed-ID`, S-1C-1G, KGL-1).
    pub fn seed_computes(&self, n: usize, tags: Vec<String>) -> Vec<String> {
        self.sim().seed(n, &tags)
    }

    /// Adds `n` A records (`seed-<i>`) to zone `domain_id`, as if made outside the operator;
    /// how many, or why not (no such zone).
    pub fn seed_records(&self, domain_id: &str, n: usize) -> Result<usize, String> {
        let sim = self.sim();
        let added = sim
            .state()
            .seed_records(domain_id, n, Timestamp::now())
            .map_err(|e| format!("{e:?}"));
        sim.mutated();
        added
    }
}
