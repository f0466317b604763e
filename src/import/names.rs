//! Object names for imported resources: valid DNS-1123 labels derived from the cloud's name,
//! so the manifests apply as they are and a user recognises each object. Names that would
//! collide (two resources with the same derived name, or an object of that name already in
//! the namespace) get a short suffix from the external id, stable from one run to the next.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

/// The longest object name written (a DNS-1123 label).
pub const MAX_NAME: usize = 63;
/// Hex characters of the external id's digest used to tell colliding names apart.
const SUFFIX: usize = 6;

/// `name` as a DNS-1123 label: lowercase ASCII letters, digits and `-`; every other character
/// becomes `-`, runs of `-` shrink to one, none at either end, at most [`MAX_NAME`]. An empty
/// result becomes `fallback`.
pub fn dns1123(name: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    out.truncate(MAX_NAME);
    let trimmed = out.trim_end_matches('-').to_string();
    if trimmed.is_empty() {
        fallback.to_string()
    } else {
        trimmed
    }
}

/// The first `len` hex characters of the SHA-256 of `id`.
fn digest(id: &str, len: usize) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..len]
        .to_string()
}

/// `base` with the suffix of `id` (`base-1a2b3c`), cut to fit [`MAX_NAME`].
pub fn with_suffix(base: &str, id: &str, len: usize) -> String {
    let suffix = digest(id, len);
    let room = MAX_NAME - suffix.len() - 1;
    let head: String = base.chars().take(room).collect();
    format!("{}-{suffix}", head.trim_end_matches('-'))
}

/// Names for one kind's resources, given as `(name hint, external id)`, in the same order.
/// Every resource whose derived name is shared with another, or is in `taken` (objects of the
/// kind already in the namespace), gets the id suffix: so which one keeps the plain name never
/// depends on listing order.
pub fn assign(
    resources: &[(String, String)],
    fallback: &str,
    taken: &HashSet<String>,
) -> Vec<String> {
    let bases: Vec<String> = resources
        .iter()
        .map(|(hint, _)| dns1123(hint, fallback))
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for b in &bases {
        *count.entry(b.as_str()).or_default() += 1;
    }
    let mut used: HashSet<String> = taken.clone();
    let mut names = Vec::with_capacity(resources.len());
    for (base, (_, id)) in bases.iter().zip(resources) {
        let mut name = if count[base.as_str()] > 1 || taken.contains(base) {
            with_suffix(base, id, SUFFIX)
        } else {
            base.clone()
        };
        // Two ids whose short digests agree (or a suffixed name that is taken): longer ones.
        let mut len = SUFFIX;
        while used.contains(&name) && len < 64 {
            len += 4;
            name = with_suffix(base, id, len.min(40));
        }
        used.insert(name.clone());
        names.push(name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(n: &str) -> bool {
        !n.is_empty()
            && n.len() <= MAX_NAME
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !n.starts_with('-')
            && !n.ends_with('-')
    }

    #[test]
    fn a_cloud_name_becomes_a_lowercase_label_with_dashes_for_other_characters() {
        assert_eq!(dns1123("My App_01", "x"), "my-app-01");
        assert_eq!(dns1123("www.example.com", "x"), "www-example-com");
        assert_eq!(dns1123("--Über  cool!!--", "x"), "ber-cool");
        assert_eq!(dns1123("@", "record"), "record");
        assert_eq!(dns1123("", "compute"), "compute");
    }

    #[test]
    fn a_long_name_is_cut_to_63_characters_without_a_trailing_dash() {
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        let n = dns1123(&long, "x");
        assert_eq!(n, "a".repeat(62));
        assert!(valid(&n));
        let n = dns1123(&"x".repeat(200), "x");
        assert_eq!(n.len(), 63);
    }

    #[test]
    fn colliding_names_all_get_a_stable_suffix_from_their_ids() {
        let rs = vec![
            ("Web".to_string(), "id-1".to_string()),
            ("web".to_string(), "id-2".to_string()),
            ("db".to_string(), "id-3".to_string()),
        ];
        let names = assign(&rs, "x", &HashSet::new());
        assert_eq!(names[2], "db");
        assert_ne!(names[0], names[1]);
        assert!(
            names[0].starts_with("web-") && names[0].len() == 10,
            "{names:?}"
        );
        // Listed in another order, each resource keeps its name.
        let reversed: Vec<_> = rs.iter().rev().cloned().collect();
        let again = assign(&reversed, "x", &HashSet::new());
        assert_eq!(again, names.iter().rev().cloned().collect::<Vec<_>>());
    }

    #[test]
    fn a_name_already_used_in_the_namespace_gets_a_suffix() {
        let taken = HashSet::from(["web".to_string()]);
        let names = assign(&[("web".into(), "id-1".into())], "x", &taken);
        assert!(names[0].starts_with("web-"), "{names:?}");
    }

    #[test]
    fn suffixed_long_names_stay_valid_labels() {
        let rs = vec![
            ("a".repeat(80), "id-1".to_string()),
            ("a".repeat(80), "id-2".to_string()),
        ];
        for n in assign(&rs, "x", &HashSet::new()) {
            assert!(valid(&n), "{n}");
        }
    }
}
