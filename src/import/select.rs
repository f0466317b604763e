//! The filters of `stratus import`: which kinds (`--kind`), which names (`--name`, a glob on
//! the cloud's name) and which region (`--region`, only for kinds that have one).

use globset::{GlobBuilder, GlobMatcher};

use super::error::ImportError;
use super::found::{Found, ImportKind};

/// The kinds `requested` names (kind or plural, any case), in the importer's order; all of
/// `available` when none is requested. A kind the provider has but does not import, or does
/// not have at all, is an error that lists what it does import.
pub fn kinds(
    requested: &[String],
    available: &[ImportKind],
    not_importable: &[(&str, &str)],
    config: &str,
    provider: &str,
) -> Result<Vec<ImportKind>, ImportError> {
    if requested.is_empty() {
        return Ok(available.to_vec());
    }
    let same = |asked: &str, kind: &str, plural: &str| {
        asked.eq_ignore_ascii_case(kind)
            || asked.eq_ignore_ascii_case(plural)
            || asked.eq_ignore_ascii_case(&format!("{kind}s"))
    };
    let mut chosen = Vec::new();
    for asked in requested {
        let asked = asked.trim();
        if let Some(k) = available.iter().find(|k| same(asked, &k.kind, &k.plural)) {
            chosen.push(k.kind.clone());
            continue;
        }
        if let Some((kind, why)) = not_importable
            .iter()
            .find(|(kind, _)| same(asked, kind, &kind.to_ascii_lowercase()))
        {
            return Err(ImportError::NotImportable {
                kind: kind.to_string(),
                why: why.to_string(),
            });
        }
        return Err(ImportError::UnknownKind {
            config: config.to_string(),
            provider: provider.to_string(),
            kind: asked.to_string(),
            available: available
                .iter()
                .map(|k| k.kind.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(available
        .iter()
        .filter(|k| chosen.contains(&k.kind))
        .cloned()
        .collect())
}

/// `--name` and `--region`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    name: Option<GlobMatcher>,
    region: Option<String>,
}

impl Filter {
    /// `name` is a shell glob (`*`, `?`, `[abc]`, `{a,b}`), matched case-insensitively
    /// against the whole cloud name.
    pub fn new(name: Option<&str>, region: Option<&str>) -> Result<Self, ImportError> {
        let name = name
            .map(|pattern| {
                GlobBuilder::new(pattern)
                    .case_insensitive(true)
                    .build()
                    .map(|g| g.compile_matcher())
                    .map_err(|e| ImportError::BadGlob {
                        pattern: pattern.to_string(),
                        message: e.kind().to_string(),
                    })
            })
            .transpose()?;
        Ok(Self {
            name,
            region: region.map(str::to_string),
        })
    }

    /// Whether `found` (of `kind`) passes: its cloud name matches, and, when its kind has a
    /// region, its region is the one asked for. Kinds without a region are not filtered by it.
    pub fn keeps(&self, kind: &ImportKind, found: &Found) -> bool {
        let name_ok = self
            .name
            .as_ref()
            .is_none_or(|g| g.is_match(&found.cloud_name));
        let region_ok = match (&self.region, kind.regional) {
            (Some(want), true) => found
                .region
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(want)),
            _ => true,
        };
        name_ok && region_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(kind: &str, plural: &str, regional: bool) -> ImportKind {
        ImportKind {
            group: "g".into(),
            version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
            regional,
        }
    }

    fn all() -> Vec<ImportKind> {
        vec![
            kind("Compute", "computes", true),
            kind("Domain", "domains", false),
            kind("DnsRecord", "dnsrecords", false),
        ]
    }

    fn found(name: &str, region: Option<&str>) -> Found {
        let mut f = Found::new("Compute", "id", name, serde_json::json!({}));
        f.region = region.map(str::to_string);
        f
    }

    fn pick(asked: &[&str]) -> Result<Vec<String>, ImportError> {
        let asked: Vec<String> = asked.iter().map(|s| s.to_string()).collect();
        kinds(&asked, &all(), &[("Token", "no list")], "pc", "strettch")
            .map(|ks| ks.into_iter().map(|k| k.kind).collect())
    }

    #[test]
    fn kinds_are_matched_by_kind_or_plural_in_any_case_in_the_importers_order() {
        assert_eq!(
            pick(&["DNSRECORDS", "compute"]).unwrap(),
            ["Compute", "DnsRecord"]
        );
        assert_eq!(pick(&["Domains", "domain"]).unwrap(), ["Domain"]);
        assert_eq!(pick(&[]).unwrap().len(), 3);
    }

    #[test]
    fn a_kind_the_provider_does_not_have_is_an_error_listing_what_it_imports() {
        let e = pick(&["database"]).unwrap_err().to_string();
        assert!(e.contains("\"database\""), "{e}");
        assert!(e.contains("Compute, Domain, DnsRecord"), "{e}");
        let e = pick(&["tokens"]).unwrap_err().to_string();
        assert!(e.contains("Token cannot be imported: no list"), "{e}");
    }

    #[test]
    fn the_name_glob_matches_the_whole_cloud_name_ignoring_case() {
        let f = Filter::new(Some("web-*"), None).unwrap();
        let k = &all()[0];
        assert!(f.keeps(k, &found("web-1", None)));
        assert!(f.keeps(k, &found("WEB-2", None)));
        assert!(!f.keeps(k, &found("db-web-1", None)));
        let f = Filter::new(Some("{a,b}?"), None).unwrap();
        assert!(f.keeps(k, &found("a1", None)));
        assert!(!f.keeps(k, &found("c1", None)));
    }

    #[test]
    fn a_bad_glob_is_an_error_naming_it() {
        let e = Filter::new(Some("web-[a"), None).unwrap_err().to_string();
        assert!(e.contains("web-[a"), "{e}");
    }

    #[test]
    fn the_region_filters_only_kinds_that_have_a_region() {
        let f = Filter::new(None, Some("kgl-1")).unwrap();
        let (compute, domain) = (&all()[0], &all()[1]);
        assert!(f.keeps(compute, &found("a", Some("KGL-1"))));
        assert!(!f.keeps(compute, &found("a", Some("NBO-1"))));
        assert!(!f.keeps(compute, &found("a", None)));
        assert!(f.keeps(domain, &found("example.com", None)));
    }
}
