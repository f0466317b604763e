//! API-key scopes (api-current.md §4): the catalog, the presets, which scope each route needs,
//! and `--key-scopes KEY=scope,…`. A key without an entry has every scope.

use std::collections::BTreeSet;

/// The scopes the sandbox knows (the catalog's 20 less the three no source names).
pub const CATALOG: [&str; 17] = [
    "account:read",
    "account:write",
    "apps:read",
    "apps:write",
    "apps:delete",
    "apps:envs",
    "apps:files",
    "databases:read",
    "databases:write",
    "databases:delete",
    "databases:credentials",
    "snapshots:read",
    "snapshots:write",
    "workspaces:read",
    "workspaces:write",
    "workspaces:delete",
    "workspaces:invites",
];

/// A set of scopes, each a [`CATALOG`] entry.
pub type Scopes = BTreeSet<&'static str>;

/// Every scope (`full`).
pub fn all() -> Scopes {
    CATALOG.into_iter().collect()
}

/// The scope `method path` needs, `path` being the route template as the router has it
/// (`/v1/apps/{id}`). `None`: the route is not in the catalog, and a key may not call it.
pub fn required(method: &str, path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, s)| *s)
}

/// Every route the sandbox serves, with its scope (§5's brackets).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/v1/users/me", "account:read"),
    ("GET", "/v1/users/@me", "account:read"),
    ("PATCH", "/v1/users/me", "account:write"),
    ("GET", "/v1/apps/status", "apps:read"),
    ("POST", "/v1/apps", "apps:write"),
    ("GET", "/v1/apps/{id}", "apps:read"),
    ("DELETE", "/v1/apps/{id}", "apps:delete"),
    ("GET", "/v1/apps/{id}/status", "apps:read"),
    ("PATCH", "/v1/apps/{id}/config", "apps:write"),
    ("POST", "/v1/apps/{id}/start", "apps:write"),
    ("POST", "/v1/apps/{id}/stop", "apps:write"),
    ("POST", "/v1/apps/{id}/restart", "apps:write"),
    ("POST", "/v1/apps/{id}/files/upload", "apps:files"),
    ("GET", "/v1/apps/{id}/envs", "apps:envs"),
    ("POST", "/v1/apps/{id}/envs", "apps:envs"),
    ("DELETE", "/v1/apps/{id}/envs/{env_id}", "apps:envs"),
    ("POST", "/v1/apps/{id}/network/publish", "apps:write"),
    ("DELETE", "/v1/apps/{id}/network/publish", "apps:write"),
    ("PATCH", "/v1/apps/{id}/network/subdomain", "apps:write"),
    ("GET", "/v1/apps/{id}/network/custom", "apps:read"),
    ("POST", "/v1/apps/{id}/network/custom", "apps:write"),
    ("DELETE", "/v1/apps/{id}/network/custom", "apps:write"),
    ("GET", "/v1/apps/{id}/network/dns", "apps:read"),
    ("GET", "/v1/databases/status", "databases:read"),
    ("POST", "/v1/databases", "databases:write"),
    ("GET", "/v1/databases/{id}", "databases:read"),
    ("PUT", "/v1/databases/{id}", "databases:write"),
    ("DELETE", "/v1/databases/{id}", "databases:delete"),
    ("GET", "/v1/databases/{id}/status", "databases:read"),
    ("POST", "/v1/databases/{id}/start", "databases:write"),
    ("POST", "/v1/databases/{id}/stop", "databases:write"),
    (
        "POST",
        "/v1/databases/{id}/credentials/reset",
        "databases:credentials",
    ),
    (
        "GET",
        "/v1/databases/{id}/credentials/certificate",
        "databases:credentials",
    ),
    (
        "POST",
        "/v1/databases/{id}/credentials/certificate/reset",
        "databases:credentials",
    ),
    ("GET", "/v1/workspaces", "workspaces:read"),
    ("POST", "/v1/workspaces", "workspaces:write"),
    ("GET", "/v1/workspaces/{id}", "workspaces:read"),
    ("PUT", "/v1/workspaces/{id}", "workspaces:write"),
    ("DELETE", "/v1/workspaces/{id}", "workspaces:delete"),
];

/// A comma-separated list of scopes and presets: `read` (every `*:read`), `write` (read and
/// every `*:write`), `full` (all). At least one; unknown names are refused with the catalog.
pub fn parse_list(list: &str) -> Result<Scopes, String> {
    let mut scopes = Scopes::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "full" => scopes.extend(CATALOG),
            "read" => scopes.extend(CATALOG.iter().filter(|s| s.ends_with(":read"))),
            "write" => scopes.extend(
                CATALOG
                    .iter()
                    .filter(|s| s.ends_with(":read") || s.ends_with(":write")),
            ),
            _ => match CATALOG.iter().find(|s| **s == name) {
                Some(s) => {
                    scopes.insert(s);
                }
                None => {
                    return Err(format!(
                        "unknown scope {name:?}: use read, write, full or any of {}",
                        CATALOG.join(", ")
                    ));
                }
            },
        }
    }
    if scopes.is_empty() {
        return Err("a key needs at least one scope".into());
    }
    Ok(scopes)
}

/// `KEY=scope,scope,…` as `--key-scopes` takes it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyScopes {
    pub key: String,
    pub scopes: Scopes,
}

impl std::fmt::Debug for KeyScopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyScopes")
            .field("key", &crate::sim::key_fingerprint(&self.key))
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Parses `KEY=scope,scope,…` (the key is everything before the first `=`).
pub fn parse_key_scopes(s: &str) -> Result<KeyScopes, String> {
    let (key, list) = s
        .split_once('=')
        .ok_or("expected KEY=scope,scope,… (e.g. dev-key=apps:read,apps:write)")?;
    let key = key.trim();
    if key.is_empty() {
        return Err("the key before = is empty".into());
    }
    Ok(KeyScopes {
        key: key.to_string(),
        scopes: parse_list(list)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_expand_and_unknown_names_are_refused() {
        let read = parse_list("read").unwrap();
        assert!(read.contains("apps:read") && !read.contains("apps:write"));
        let write = parse_list("write").unwrap();
        assert!(write.contains("apps:write") && !write.contains("apps:delete"));
        assert_eq!(parse_list("full").unwrap(), all());
        assert_eq!(
            parse_list(" apps:read , databases:credentials").unwrap(),
            ["apps:read", "databases:credentials"].into()
        );
        assert!(parse_list("apps:reed").unwrap_err().contains("apps:read"));
        assert!(parse_list(" , ").is_err());
    }

    #[test]
    fn key_scopes_split_at_the_first_equals_and_never_show_the_key() {
        let ks = parse_key_scopes("a=b=apps:read").unwrap_err();
        assert!(ks.contains("unknown scope"), "{ks}");
        let ks = parse_key_scopes("secret-key=apps:read").unwrap();
        assert_eq!(ks.key, "secret-key");
        assert!(!format!("{ks:?}").contains("secret-key"));
        assert!(parse_key_scopes("apps:read").is_err());
        assert!(parse_key_scopes("=apps:read").is_err());
    }

    #[test]
    fn every_route_needs_a_catalog_scope_and_lookups_match_method_and_template() {
        for (_, _, scope) in ROUTES {
            assert!(CATALOG.contains(scope), "{scope}");
        }
        assert_eq!(required("GET", "/v1/apps/{id}"), Some("apps:read"));
        assert_eq!(required("DELETE", "/v1/apps/{id}"), Some("apps:delete"));
        assert_eq!(required("POST", "/v1/databases/{id}/restart"), None);
    }
}
