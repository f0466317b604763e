//! [`assemble`]: filters, the already-managed, names and links together.

use serde_json::json;

use super::cluster::{Existing, Managed};
use super::output::Target;
use super::select::Filter;
use super::*;

fn kind(k: &str, regional: bool) -> ImportKind {
    ImportKind {
        group: "strettch.stratus.dev".into(),
        version: "v1alpha1".into(),
        kind: k.into(),
        plural: format!("{}s", k.to_ascii_lowercase()),
        regional,
    }
}

fn kinds() -> Vec<ImportKind> {
    vec![kind("Domain", false), kind("DnsRecord", false)]
}

fn domain(id: &str, name: &str) -> Found {
    Found::new("Domain", id, name, json!({"domain": name}))
}

fn record(id: &str, domain_id: &str, name: &str) -> Found {
    let mut f = Found::new(
        "DnsRecord",
        id,
        name,
        json!({"domainId": domain_id, "name": "www", "type": "A", "value": "192.0.2.1"}),
    );
    f.references.push(Reference {
        kind: "Domain".into(),
        id: domain_id.into(),
        ref_field: "domainRef",
        id_field: "domainId",
    });
    f
}

const TARGET: Target<'static> = Target {
    namespace: "imported",
    provider_config: "prod",
    manage: false,
};

fn names(ms: &[output::Manifest]) -> Vec<String> {
    ms.iter()
        .map(|m| format!("{}/{}", m.kind.kind, m.name))
        .collect()
}

#[test]
fn resources_come_in_kind_order_named_and_linked_to_what_is_in_the_same_output() {
    let found = vec![
        record("r-1", "d-1", "www.example.com"),
        record("r-2", "d-2", "www.other.org"),
        domain("d-1", "example.com"),
    ];
    let (ms, skipped, warnings) = assemble(
        &kinds(),
        found,
        &Filter::default(),
        &Managed::default(),
        &TARGET,
    );
    assert!(skipped.is_empty() && warnings.is_empty());
    assert_eq!(
        names(&ms),
        [
            "Domain/example-com",
            "DnsRecord/www-example-com",
            "DnsRecord/www-other-org"
        ]
    );
    assert_eq!(
        ms[1].body["spec"]["forProvider"]["domainRef"],
        json!({"name": "example-com"})
    );
    // The other zone is not in the output: its id stays.
    assert_eq!(ms[2].body["spec"]["forProvider"]["domainId"], "d-2");
}

#[test]
fn resources_already_managed_are_skipped_and_named_with_their_manager() {
    let managed = Managed::new(
        &[Existing {
            kind: "Domain".into(),
            namespace: "prod".into(),
            name: "zone".into(),
            external_name: Some("d-1".into()),
            provider_config: "prod".into(),
            uid: "u-zone".into(),
            create_pending: false,
        }],
        "imported",
        "prod",
    );
    let (ms, skipped, _) = assemble(
        &kinds(),
        vec![
            domain("d-1", "example.com"),
            record("r-1", "d-1", "www.example.com"),
        ],
        &Filter::default(),
        &managed,
        &TARGET,
    );
    assert_eq!(names(&ms), ["DnsRecord/www-example-com"]);
    assert_eq!(
        skipped,
        [Skipped {
            kind: "Domain".into(),
            cloud_name: "example.com".into(),
            external_id: "d-1".into(),
            by: "prod/zone".into(),
        }]
    );
    // Its manager lives in another namespace: the record names the zone by id.
    assert_eq!(ms[0].body["spec"]["forProvider"]["domainId"], "d-1");
}

#[test]
fn the_name_filter_and_unrequested_kinds_leave_resources_out() {
    let (ms, _, _) = assemble(
        &[kind("DnsRecord", false)],
        vec![
            domain("d-1", "example.com"),
            record("r-1", "d-1", "www.example.com"),
            record("r-2", "d-1", "api.example.com"),
        ],
        &Filter::new(Some("www.*"), None).unwrap(),
        &Managed::default(),
        &TARGET,
    );
    assert_eq!(names(&ms), ["DnsRecord/www-example-com"]);
}

#[test]
fn placeholders_and_notes_become_warnings_naming_the_object() {
    let mut f = domain("d-1", "example.com");
    f.placeholders.push(Placeholder {
        field: "publicKeys".into(),
        why: "put the key".into(),
    });
    f.notes.push("mind this".into());
    let (_, _, warnings) = assemble(
        &kinds(),
        vec![f],
        &Filter::default(),
        &Managed::default(),
        &TARGET,
    );
    assert_eq!(warnings.len(), 2);
    assert!(warnings[0].starts_with("Domain imported/example-com (d-1): spec.forProvider.publicKeys holds a REPLACE-ME placeholder: put the key"), "{warnings:?}");
    assert!(warnings[1].ends_with("mind this"));
}

#[test]
fn a_resource_named_under_another_provider_config_is_written_with_a_warning() {
    let managed = Managed::new(
        &[Existing {
            kind: "Domain".into(),
            namespace: "staging".into(),
            name: "zone".into(),
            external_name: Some("d-1".into()),
            provider_config: "staging".into(),
            uid: "u-zone".into(),
            create_pending: false,
        }],
        "imported",
        "prod",
    );
    let (ms, skipped, warnings) = assemble(
        &kinds(),
        vec![domain("d-1", "example.com")],
        &Filter::default(),
        &managed,
        &TARGET,
    );
    assert_eq!(names(&ms), ["Domain/example-com"]);
    assert!(skipped.is_empty());
    assert!(
        warnings[0].contains("staging/zone names the same id under another ProviderConfig; an operator that watches both namespaces refuses"),
        "{warnings:?}"
    );
}

#[test]
fn a_resource_whose_owner_mark_names_a_live_object_is_left_to_that_object() {
    let managed = Managed::new(
        &[Existing {
            kind: "Domain".into(),
            namespace: "prod".into(),
            name: "zone".into(),
            external_name: None,
            provider_config: "prod".into(),
            uid: "u-zone".into(),
            create_pending: false,
        }],
        "imported",
        "prod",
    );
    let mut owned = domain("d-1", "example.com");
    owned.owner_uid = Some("u-zone".into());
    let mut orphan = domain("d-2", "example.org");
    orphan.owner_uid = Some("u-gone".into());
    let (ms, skipped, _) = assemble(
        &kinds(),
        vec![owned, orphan],
        &Filter::default(),
        &managed,
        &TARGET,
    );
    assert_eq!(names(&ms), ["Domain/example-org"]);
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        skipped[0].by,
        "prod/zone, which created it and has not recorded its id yet"
    );
}

#[test]
fn a_kind_with_a_create_in_flight_is_not_imported_and_the_user_is_told_why() {
    let managed = Managed::new(
        &[Existing {
            kind: "Domain".into(),
            namespace: "prod".into(),
            name: "zone".into(),
            external_name: None,
            provider_config: "prod".into(),
            uid: "u-zone".into(),
            create_pending: true,
        }],
        "imported",
        "prod",
    );
    let (ms, skipped, warnings) = assemble(
        &kinds(),
        vec![
            domain("d-1", "example.com"),
            record("r-1", "d-1", "www.example.com"),
        ],
        &Filter::default(),
        &managed,
        &TARGET,
    );
    assert_eq!(names(&ms), ["DnsRecord/www-example-com"]);
    assert!(skipped.is_empty());
    assert!(
        warnings[0].starts_with("domains not imported: a create is in flight for prod/zone"),
        "{warnings:?}"
    );
}

#[test]
fn a_cloud_name_cannot_send_escape_sequences_to_the_terminal() {
    assert_eq!(
        super::printable("Domain \u{1b}[2Jevil\n.com"),
        "Domain \\u{1b}[2Jevil\\n.com"
    );
    assert_eq!(super::printable("plain ünïcode"), "plain ünïcode");
}
