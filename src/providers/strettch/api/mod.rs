//! Strettch's custom resources, one file per kind.

pub mod compute;
pub mod dns_record;
pub mod domain;

pub use compute::Compute;
pub use dns_record::DnsRecord;
pub use domain::Domain;
