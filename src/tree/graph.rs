//! The pure part of `stratus tree`: which objects an object references (read from its spec),
//! which reference it, and the tree as text. Nothing here talks to a cluster.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde_json::Value;

/// A Kubernetes object as the tree sees it: its identity, its spec and its conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: String,
    /// Empty for cluster-scoped kinds (ProviderConfig).
    pub namespace: String,
    pub name: String,
    pub spec: Value,
    /// `(type, status, reason)` of each condition.
    pub conditions: Vec<(String, String, String)>,
}

/// Where an object points: a kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Target {
    pub fn label(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// One reference in a spec: the field it is in and what it names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The spec field, e.g. `forProvider.domainRef`.
    pub field: String,
    pub target: Target,
}

/// The kind a `…Ref` field names, by the field's name (every provider uses these names), or
/// `None` for a field that carries its kind (`fluxSourceRef.kind`) or is not a reference.
fn kind_of_field(field: &str) -> Option<&'static str> {
    Some(match field {
        "domainRef" => "Domain",
        "computeRef" => "Compute",
        "applicationRef" => "Application",
        "workspaceRef" => "Workspace",
        "databaseRef" => "Database",
        "projectRef" => "Project",
        "releaseRef" => "Release",
        "providerConfigRef" => "ProviderConfig",
        "secretKeyRef" | "writeConnectionSecretToRef" | "secretRef" => "Secret",
        _ => return None,
    })
}

/// Every reference in `node`'s spec: any object field named `…Ref` holding a `name` (and, for
/// a kind the field's name does not tell, a `kind`). Cluster-scoped ProviderConfigs have no
/// namespace; other references default to the object's own namespace.
pub fn references(node: &Node) -> Vec<Reference> {
    let mut out = BTreeSet::new();
    walk(&node.spec, "", node, &mut out);
    out.into_iter().collect()
}

fn walk(value: &Value, path: &str, node: &Node, out: &mut BTreeSet<Reference>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if key.ends_with("Ref")
                    && let Some(name) = v.get("name").and_then(Value::as_str)
                {
                    let kind = kind_of_field(key)
                        .map(str::to_string)
                        .or_else(|| v.get("kind").and_then(Value::as_str).map(str::to_string));
                    if let Some(kind) = kind {
                        let namespace = if kind == "ProviderConfig" {
                            String::new()
                        } else {
                            v.get("namespace")
                                .and_then(Value::as_str)
                                .unwrap_or(&node.namespace)
                                .to_string()
                        };
                        out.insert(Reference {
                            field: field.clone(),
                            target: Target {
                                kind,
                                namespace,
                                name: name.to_string(),
                            },
                        });
                    }
                }
                walk(v, &field, node, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{path}[{i}]"), node, out);
            }
        }
        _ => {}
    }
}

fn target_of(node: &Node) -> Target {
    Target {
        kind: node.kind.clone(),
        namespace: node.namespace.clone(),
        name: node.name.clone(),
    }
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a (String, String, String)> {
    node.conditions.iter().find(|c| c.0 == type_)
}

/// READY, SYNCED and the reason that explains the state best: Stalled's when stalled, Ready's
/// when not ready, Synced's when not synced, else Ready's.
fn status_columns(node: &Node) -> (String, String, String) {
    let status = |t: &str| condition(node, t).map_or("-".to_string(), |c| c.1.clone());
    let reason = |t: &str| condition(node, t).map(|c| c.2.clone());
    let stalled = condition(node, "Stalled").is_some_and(|c| c.1 == "True");
    let why = if stalled {
        reason("Stalled")
    } else if status("Ready") != "True" {
        reason("Ready")
    } else if status("Synced") != "True" {
        reason("Synced")
    } else {
        reason("Ready")
    };
    (status("Ready"), status("Synced"), why.unwrap_or_default())
}

/// Options of the rendering.
pub struct Shape {
    /// How deep to follow what the root references.
    pub depth: usize,
    /// The kinds `all` holds every object of: a reference to another kind (a Secret, a Flux
    /// source) is shown without a state rather than as missing.
    pub listed: BTreeSet<String>,
}

/// The tree of `root` within `all` (every object of the namespace the tree may show), as
/// aligned text: the root; what it uses (its references, followed `depth` deep; a Secret
/// names the object that writes it); and what uses it (objects referencing it).
pub fn render(root: &Node, all: &[Node], shape: &Shape) -> String {
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let (ready, synced, why) = status_columns(root);
    rows.push((format!("{}/{}", root.kind, root.name), ready, synced, why));
    let mut seen = BTreeSet::from([target_of(root)]);
    let uses = references(root);
    let users: Vec<(&Node, String)> = all
        .iter()
        .filter(|n| target_of(n) != target_of(root))
        .filter_map(|n| {
            references(n)
                .into_iter()
                .find(|r| r.target == target_of(root))
                .map(|r| (n, r.field))
        })
        .collect();
    let total = uses.len() + users.len();
    let mut index = 0;
    for r in &uses {
        index += 1;
        let last = index == total;
        add_use(&mut rows, r, all, shape, "", last, shape.depth, &mut seen);
    }
    for (n, field) in &users {
        index += 1;
        let last = index == total;
        let (ready, synced, why) = status_columns(n);
        rows.push((
            format!(
                "{}used by {}/{} ({field})",
                branch("", last),
                n.kind,
                n.name
            ),
            ready,
            synced,
            why,
        ));
    }
    let width = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<width$}  {:<5}  {:<6}  REASON",
        "NAME", "READY", "SYNCED"
    );
    for (name, ready, synced, why) in rows {
        let pad = width - name.chars().count();
        let _ = writeln!(
            text,
            "{name}{}  {ready:<5}  {synced:<6}  {why}",
            " ".repeat(pad)
        );
    }
    text
}

fn branch(prefix: &str, last: bool) -> String {
    format!("{prefix}{}", if last { "└─ " } else { "├─ " })
}

#[allow(clippy::too_many_arguments)]
fn add_use(
    rows: &mut Vec<(String, String, String, String)>,
    r: &Reference,
    all: &[Node],
    shape: &Shape,
    prefix: &str,
    last: bool,
    depth: usize,
    seen: &mut BTreeSet<Target>,
) {
    let found = all.iter().find(|n| target_of(n) == r.target);
    let label = format!(
        "{}uses {} ({})",
        branch(prefix, last),
        r.target.label(),
        r.field
    );
    match found {
        Some(n) => {
            let (ready, synced, why) = status_columns(n);
            rows.push((label, ready, synced, why));
            let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
            // Follow once per object, and only so deep: references may form cycles.
            if depth > 1 && seen.insert(target_of(n)) {
                let next = references(n);
                let count = next.len();
                for (i, r) in next.iter().enumerate() {
                    add_use(
                        rows,
                        r,
                        all,
                        shape,
                        &child_prefix,
                        i + 1 == count,
                        depth - 1,
                        seen,
                    );
                }
            }
        }
        None if r.target.kind == "Secret" => {
            // A Secret a stratus object writes: name the writer.
            let writer = all.iter().find(|n| {
                n.spec["writeConnectionSecretToRef"]["name"].as_str() == Some(&r.target.name)
                    && n.namespace == r.target.namespace
            });
            let note = writer.map_or(String::new(), |w| {
                format!("written by {}/{}", w.kind, w.name)
            });
            rows.push((label, "-".into(), "-".into(), note));
        }
        None if shape.listed.contains(&r.target.kind) => {
            rows.push((label, "-".into(), "-".into(), "not found".into()))
        }
        None => rows.push((label, "-".into(), "-".into(), String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(depth: usize) -> Shape {
        Shape {
            depth,
            listed: ["Application", "Database", "DnsRecord", "Domain", "Compute"]
                .map(String::from)
                .into(),
        }
    }

    fn node(kind: &str, name: &str, spec: Value, ready: &str, reason: &str) -> Node {
        Node {
            kind: kind.into(),
            namespace: "shop".into(),
            name: name.into(),
            spec,
            conditions: vec![
                ("Ready".into(), ready.into(), reason.into()),
                ("Synced".into(), "True".into(), "ReconcileSuccess".into()),
                ("Stalled".into(), "False".into(), "NotStalled".into()),
            ],
        }
    }

    #[test]
    fn references_are_found_by_field_name_anywhere_in_the_spec() {
        let app = node(
            "Application",
            "shop",
            json!({
                "providerConfigRef": {"name": "vertra"},
                "forProvider": {
                    "workspaceRef": {"name": "team"},
                    "env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "orders-db", "key": "uri"}}}],
                    "source": {"fluxSourceRef": {"kind": "GitRepository", "name": "shop", "namespace": "flux"}},
                },
            }),
            "True",
            "Available",
        );
        let refs: Vec<(String, String, String)> = references(&app)
            .into_iter()
            .map(|r| (r.field, r.target.label(), r.target.namespace))
            .collect();
        assert_eq!(
            refs,
            [
                (
                    "forProvider.env[0].valueFrom.secretKeyRef".into(),
                    "Secret/orders-db".into(),
                    "shop".into()
                ),
                (
                    "forProvider.source.fluxSourceRef".into(),
                    "GitRepository/shop".into(),
                    "flux".into()
                ),
                (
                    "forProvider.workspaceRef".into(),
                    "Workspace/team".into(),
                    "shop".into()
                ),
                (
                    "providerConfigRef".into(),
                    "ProviderConfig/vertra".into(),
                    String::new()
                ),
            ]
        );
    }

    #[test]
    fn a_tree_shows_what_the_object_uses_and_what_uses_it_with_their_state() {
        let db = node(
            "Database",
            "orders",
            json!({"forProvider": {"engine": "PostgreSQL"}, "writeConnectionSecretToRef": {"name": "orders-db"}}),
            "False",
            "Creating",
        );
        let app = node(
            "Application",
            "shop",
            json!({"forProvider": {"env": [{"valueFrom": {"secretKeyRef": {"name": "orders-db"}}}]}}),
            "True",
            "Available",
        );
        let record = node(
            "DnsRecord",
            "www",
            json!({"forProvider": {"valueFrom": {"applicationRef": {"name": "shop", "type": "CNAME"}}}}),
            "True",
            "Available",
        );
        let text = render(&app, &[db, app.clone(), record], &shape(3));
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        assert!(lines[0].starts_with("NAME"), "{text}");
        assert!(
            lines[1].starts_with("Application/shop") && lines[1].ends_with("Available"),
            "{text}"
        );
        assert!(
            lines[2].contains("├─ uses Secret/orders-db")
                && lines[2].ends_with("written by Database/orders"),
            "{text}"
        );
        assert!(
            lines[3].contains("└─ used by DnsRecord/www (forProvider.valueFrom.applicationRef)"),
            "{text}"
        );
        assert_eq!(lines.len(), 4, "{text}");
    }

    #[test]
    fn a_stalled_object_shows_the_stalled_reason_and_a_missing_reference_says_so() {
        let mut record = node(
            "DnsRecord",
            "www",
            json!({"forProvider": {"domainRef": {"name": "gone"}}}),
            "False",
            "WaitingForDomain",
        );
        record.conditions[2] = ("Stalled".into(), "True".into(), "InvalidSpec".into());
        let text = render(&record, std::slice::from_ref(&record), &shape(3));
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .trim_end()
                .ends_with("InvalidSpec"),
            "{text}"
        );
        assert!(
            text.contains("└─ uses Domain/gone (forProvider.domainRef)"),
            "{text}"
        );
        assert!(
            text.lines()
                .nth(2)
                .unwrap()
                .trim_end()
                .ends_with("not found"),
            "{text}"
        );
    }

    #[test]
    fn references_that_form_a_cycle_are_followed_once() {
        let a = node(
            "Compute",
            "a",
            json!({"x": {"computeRef": {"name": "b"}}}),
            "True",
            "Available",
        );
        let b = node(
            "Compute",
            "b",
            json!({"x": {"computeRef": {"name": "a"}}}),
            "True",
            "Available",
        );
        let text = render(&a, &[a.clone(), b], &shape(10));
        assert!(text.lines().count() < 10, "{text}");
    }
}
