//! `stratus import --provider-config NAME`: list what a ProviderConfig's account holds and
//! write the manifests that adopt it, so resources made before stratus (in a console, by a
//! script) come under it without being created again.
//!
//! Each manifest names its resource by `stratus.dev/external-name`, fills `forProvider` from
//! what the cloud reports (mapped as the kind's adapter reads it, so the object is in sync at
//! its first reconcile) and, unless `--manage`, sets `managementPolicies: ["Observe"]`: the
//! operator then reports the resource and never changes or deletes it. Resources an object in
//! the cluster already manages are skipped. Secret values never appear: the output holds no
//! key, password or env value, and no connection-secret reference (see `docs/operations.md`).
//!
//! This module is provider-neutral: each provider implements [`Importer`] in
//! `src/providers/<p>/import.rs`, registered in `providers::importers()`. The importer builds
//! its cloud handle as the operator does (`Connect::connect`), so its requests go through the
//! same throttle `Policy` (limits and budget group) and it calls list endpoints only.

pub mod cluster;
pub mod error;
pub mod found;
pub mod names;
pub mod output;
pub mod select;

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;

pub use error::ImportError;
pub use found::{
    Connection, Found, ImportKind, Importer, ListOptions, Listing, PLACEHOLDER, Placeholder,
    Reference, wants,
};

/// `stratus import` flags.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The ProviderConfig whose account is listed (its credentials Secret is read as the
    /// operator reads it).
    #[arg(long, value_name = "NAME")]
    pub provider_config: String,
    /// The namespace the manifests are written for.
    #[arg(short = 'n', long, value_name = "NS", default_value = "default")]
    pub namespace: String,
    /// Only this kind (kind or plural, any case; repeatable or comma-separated).
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Only resources whose cloud name matches this glob (`*`, `?`, `[…]`, `{a,b}`; case-insensitive).
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,
    /// Only resources in this region, for kinds that have one (Compute; Project and
    /// Release in the cloudapi dialect); kinds
    /// without a region are not filtered by it.
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// Let the operator change and delete the imported resources (no
    /// `managementPolicies: ["Observe"]`): read the warnings first.
    #[arg(long)]
    pub manage: bool,
    /// Write one file per object (`<kind>-<name>.yaml`) here instead of printing to stdout.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// A resource left out because an object of the cluster already manages it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub kind: String,
    pub cloud_name: String,
    pub external_id: String,
    /// `namespace/name` of the object that manages it.
    pub by: String,
}

/// What one import produced, before it is written.
#[derive(Debug, Default)]
pub struct Outcome {
    pub manifests: Vec<output::Manifest>,
    pub skipped: Vec<Skipped>,
    /// What the user must know or do, one line each.
    pub warnings: Vec<String>,
}

/// `stratus import`.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let kube = crate::tree::client(args.kubeconfig.as_ref()).await?;
    let outcome = import(&kube, &args, &crate::providers::importers()).await?;
    for s in &outcome.skipped {
        let line = format!(
            "{} {} ({}): skipped (already managed by {})",
            s.kind, s.cloud_name, s.external_id, s.by
        );
        eprintln!("{}", printable(&line));
    }
    for w in &outcome.warnings {
        eprintln!("warning: {}", printable(w));
    }
    match &args.output_dir {
        Some(dir) => {
            let written = output::write_dir(dir, &outcome.manifests)?;
            eprintln!(
                "wrote {} manifest(s) to {}; {} skipped as already managed",
                written.len(),
                dir.display(),
                outcome.skipped.len()
            );
        }
        None => {
            print!("{}", output::stream(&outcome.manifests));
            eprintln!(
                "{} manifest(s); {} skipped as already managed",
                outcome.manifests.len(),
                outcome.skipped.len()
            );
        }
    }
    Ok(())
}

/// `line` with every control character (a cloud name's terminal escape, say) shown escaped,
/// so what the cloud reports cannot drive the user's terminal.
fn printable(line: &str) -> String {
    line.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Everything but the writing: read the ProviderConfig, list the account through the
/// provider's importer, leave out what is filtered or already managed, name and link the rest.
pub async fn import(
    kube: &kube::Client,
    args: &ImportArgs,
    importers: &[Box<dyn Importer>],
) -> Result<Outcome, ImportError> {
    let config = &args.provider_config;
    let (spec, key) = crate::engine::providers::read_provider_config(kube, config).await?;
    let provider = spec.provider;
    let importer = importers
        .iter()
        .find(|i| i.provider() == provider)
        .ok_or_else(|| ImportError::NoImporter(provider.as_str().to_string()))?;
    let kinds = select::kinds(
        &args.kinds,
        &importer.kinds(),
        &importer.not_importable(),
        config,
        provider.as_str(),
    )?;
    let filter = select::Filter::new(args.name.as_deref(), args.region.as_deref())?;
    let mut outcome = Outcome::default();
    if args.region.is_some() && !kinds.iter().any(|k| k.regional) {
        outcome.warnings.push(format!(
            "--region filters nothing here: none of {} has a region",
            kinds
                .iter()
                .map(|k| k.kind.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let existing = cluster::existing(kube, &kinds, &args.namespace, &mut outcome.warnings).await?;
    let managed = cluster::Managed::new(&existing, &args.namespace, config);
    let connection = Connection {
        config_name: config.clone(),
        spec,
        key,
    };
    let listing = importer
        .list(
            connection,
            &kinds,
            ListOptions {
                manage: args.manage,
            },
        )
        .await?;
    outcome.warnings.extend(listing.warnings);
    let target = output::Target {
        namespace: &args.namespace,
        provider_config: config,
        manage: args.manage,
    };
    let (manifests, skipped, warnings) =
        assemble(&kinds, listing.found, &filter, &managed, &target);
    outcome.manifests = manifests;
    outcome.skipped = skipped;
    outcome.warnings.extend(warnings);
    Ok(outcome)
}

/// The pure part of [`import`]: filter, skip the managed, name, link and render, in the
/// importer's kind order and then by name.
pub fn assemble(
    kinds: &[ImportKind],
    found: Vec<Found>,
    filter: &select::Filter,
    managed: &cluster::Managed,
    target: &output::Target<'_>,
) -> (Vec<output::Manifest>, Vec<Skipped>, Vec<String>) {
    let mut skipped = Vec::new();
    let mut early = Vec::new();
    let mut per_kind: Vec<(&ImportKind, Vec<Found>)> =
        kinds.iter().map(|k| (k, Vec::new())).collect();
    for (kind, _) in &per_kind {
        let pending = managed.pending(&kind.kind);
        if !pending.is_empty() {
            early.push(format!(
                "{} not imported: a create is in flight for {} (no stratus.dev/external-name yet), and its resource may be among those listed; importing it would take it from that object. Run stratus import again once the create has settled",
                kind.plural,
                pending.join(", ")
            ));
        }
    }
    for f in found {
        let Some((kind, list)) = per_kind.iter_mut().find(|(k, _)| k.kind == f.kind) else {
            continue;
        };
        if !filter.keeps(kind, &f) || !managed.pending(&kind.kind).is_empty() {
            continue;
        }
        let owner = f
            .owner_uid
            .as_deref()
            .and_then(|uid| managed.owner(&f.kind, uid))
            .map(|at| format!("{at}, which created it and has not recorded its id yet"));
        if let Some(by) = managed
            .manager(&f.kind, &f.external_id)
            .map(str::to_string)
            .or(owner)
        {
            skipped.push(Skipped {
                kind: f.kind.clone(),
                cloud_name: f.cloud_name.clone(),
                external_id: f.external_id.clone(),
                by,
            });
            continue;
        }
        if let Some(other) = managed.named_elsewhere(&f.kind, &f.external_id) {
            early.push(format!(
                "{} {} ({}): {other} names the same id under another ProviderConfig; an operator that watches both namespaces refuses the later of two objects of one kind naming one id (AlreadyManaged), whatever account each reaches: apply this object only where no operator sees both",
                f.kind, f.cloud_name, f.external_id
            ));
        }
        list.push(f);
    }
    // Names first, for every kind: a reference may point at any of them.
    let mut names: HashMap<(String, String), String> = HashMap::new();
    let mut named: Vec<(&ImportKind, Vec<(String, Found)>)> = Vec::new();
    for (kind, mut list) in per_kind {
        list.sort_by(|a, b| (&a.name_hint, &a.external_id).cmp(&(&b.name_hint, &b.external_id)));
        let hints: Vec<(String, String)> = list
            .iter()
            .map(|f| (f.name_hint.clone(), f.external_id.clone()))
            .collect();
        let fallback = kind.kind.to_ascii_lowercase();
        let assigned = names::assign(&hints, &fallback, &managed.taken(&kind.kind));
        for (name, f) in assigned.iter().zip(&list) {
            names.insert((f.kind.clone(), f.external_id.clone()), name.clone());
        }
        named.push((kind, assigned.into_iter().zip(list).collect()));
    }
    let mut manifests = Vec::new();
    let mut warnings = early;
    for (kind, list) in named {
        for (name, f) in list {
            let what = format!(
                "{} {}/{name} ({})",
                kind.kind, target.namespace, f.external_id
            );
            for p in &f.placeholders {
                warnings.push(format!(
                    "{what}: spec.forProvider.{} holds a {PLACEHOLDER} placeholder: {}",
                    p.field, p.why
                ));
            }
            for n in &f.notes {
                warnings.push(format!("{what}: {n}"));
            }
            manifests.push(output::manifest(kind, &f, &name, &names, target));
        }
    }
    (manifests, skipped, warnings)
}

#[cfg(test)]
mod tests;
