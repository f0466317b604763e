//! `stratus tree KIND/NAME` (and `kubectl stratus tree …` when the binary is installed as
//! `kubectl-stratus`): an object, what it references and what references it, each with
//! Ready, Synced and the reason, like `crossplane beta trace`. It reads objects of the stratus
//! kinds in one namespace and the ProviderConfigs; it never reads a Secret's data or calls a
//! cloud.

pub mod graph;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use self::graph::{Node, Shape};

/// `stratus tree` flags.
#[derive(Args, Debug, Clone)]
pub struct TreeArgs {
    /// The object: KIND/NAME, where KIND is a kind, its plural or a short name
    /// (application/shop, domains/example-com, cmp/web).
    pub object: String,
    /// The object's namespace.
    #[arg(
        short = 'n',
        long,
        env = "STRATUS_TREE_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// Kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// How deep to follow what the object references.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=10))]
    pub depth: u8,
}

/// A kind the tree can list: its names and where its objects are served.
struct Listed {
    kind: String,
    names: Vec<String>,
    resource: ApiResource,
    namespaced: bool,
}

fn listed_kinds() -> Vec<Listed> {
    let mut crds: Vec<_> = crate::providers::kinds().iter().map(|k| k.crd()).collect();
    crds.push(<crate::api::provider_config::ProviderConfig as kube::CustomResourceExt>::crd());
    crds.into_iter()
        .map(|crd| {
            let n = &crd.spec.names;
            let gvk = GroupVersionKind::gvk(&crd.spec.group, &crd.spec.versions[0].name, &n.kind);
            let mut names = vec![n.kind.to_lowercase(), n.plural.clone()];
            names.extend(n.singular.clone());
            names.extend(n.short_names.clone().unwrap_or_default());
            Listed {
                kind: n.kind.clone(),
                names,
                resource: ApiResource::from_gvk_with_plural(&gvk, &n.plural),
                namespaced: crd.spec.scope == "Namespaced",
            }
        })
        .collect()
}

/// A client from `kubeconfig`, else the usual places (`$KUBECONFIG`, `~/.kube/config`, in a
/// cluster). For the commands a user runs (`tree`, `logs`).
pub async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found: pass --kubeconfig or set KUBECONFIG")?,
    };
    Ok(Client::try_from(config)?)
}

fn node(kind: &str, o: &DynamicObject) -> Node {
    let conditions = o.data["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                    (s("type"), s("status"), s("reason"))
                })
                .collect()
        })
        .unwrap_or_default();
    Node {
        kind: kind.to_string(),
        namespace: o.namespace().unwrap_or_default(),
        name: o.name_any(),
        spec: o.data.get("spec").cloned().unwrap_or(Value::Null),
        conditions,
    }
}

/// Prints the tree of `args.object` to stdout.
pub async fn run(args: TreeArgs) -> anyhow::Result<()> {
    let Some((kind_name, name)) = args.object.split_once('/') else {
        bail!("{:?} is not KIND/NAME (e.g. application/shop)", args.object);
    };
    let kinds = listed_kinds();
    let wanted = kind_name.to_lowercase();
    let Some(root_kind) = kinds.iter().find(|k| k.names.contains(&wanted)) else {
        let known: Vec<&str> = kinds.iter().map(|k| k.kind.as_str()).collect();
        bail!(
            "{kind_name:?} is not a stratus kind; one of: {}",
            known.join(", ")
        );
    };
    let client = client(args.kubeconfig.as_ref()).await?;
    let mut all = Vec::new();
    for k in &kinds {
        let api: Api<DynamicObject> = if k.namespaced {
            Api::namespaced_with(client.clone(), &args.namespace, &k.resource)
        } else {
            Api::all_with(client.clone(), &k.resource)
        };
        match api.list(&ListParams::default()).await {
            Ok(list) => all.extend(list.items.iter().map(|o| node(&k.kind, o))),
            // A kind whose CRD is not installed has no objects; one the caller may not list
            // (cluster-scoped ProviderConfigs for a namespace user) is left out.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 403 => {}
            Err(e) => return Err(e).with_context(|| format!("listing {}", k.resource.plural)),
        }
    }
    let root = all
        .iter()
        .find(|n| {
            n.kind == root_kind.kind
                && n.name == name
                && (!root_kind.namespaced || n.namespace == args.namespace)
        })
        .cloned()
        .with_context(|| {
            format!(
                "{}/{name} not found in namespace {}",
                root_kind.kind, args.namespace
            )
        })?;
    let shape = Shape {
        depth: usize::from(args.depth),
        listed: kinds
            .iter()
            .map(|k| k.kind.clone())
            .collect::<BTreeSet<_>>(),
    };
    print!("{}", graph::render(&root, &all, &shape));
    Ok(())
}
