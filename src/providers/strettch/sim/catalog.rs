//! The sandbox catalog: specifications (ordered by size), images and regions.

use super::wire::{Image, Region, Specification};

/// (id, slug, vcpus, memory MiB, storage GB), smallest first: upsize moves right only.
const SPECS: [(&str, &str, u32, u64, u64); 5] = [
    (
        "5f0e7a52-3c1d-4b8e-9a61-2d7c4e8b1f01",
        "S-1C-1G",
        1,
        1024,
        25,
    ),
    (
        "8a3d1c94-6e2f-4d7a-b5c3-9e1f0a2b4c02",
        "S-1C-2G",
        1,
        2048,
        50,
    ),
    (
        "c2b7e4f1-9d3a-4e6b-8c5d-1a7f3e9b6d03",
        "S-2C-4G",
        2,
        4096,
        80,
    ),
    (
        "1e9c5a7d-2f4b-4c8e-a3d6-7b0e5f2c8a04",
        "S-4C-8G",
        4,
        8192,
        160,
    ),
    (
        "7d4f2b8e-5a1c-4e3d-9b7a-3c6e8f1d2b05",
        "S-8C-16G",
        8,
        16384,
        320,
    ),
];

/// (slug, name, version, display name).
const IMAGES: [(&str, &str, &str, &str); 3] = [
    ("UBUNTU-24.04", "Ubuntu", "24.04", "Ubuntu 24.04 LTS"),
    ("UBUNTU-22.04", "Ubuntu", "22.04", "Ubuntu 22.04 LTS"),
    ("DEBIAN-12", "Debian", "12", "Debian 12 (Bookworm)"),
];

/// (id, slug, name, country code).
const REGIONS: [(u64, &str, &str, &str); 2] = [
    (1, "KGL-1", "Kigali-1", "RW"),
    (2, "NBO-1", "Nairobi-1", "KE"),
];

pub fn specifications() -> Vec<Specification> {
    SPECS
        .iter()
        .map(|(id, slug, vcpus, mem, disk)| Specification {
            id: id.to_string(),
            specification: slug.to_string(),
            vcpus: *vcpus,
            memory_mb: *mem,
            storage_gb: *disk,
        })
        .collect()
}

pub fn images() -> Vec<Image> {
    IMAGES
        .iter()
        .map(|(image, name, version, display)| Image {
            image: image.to_string(),
            image_name: name.to_string(),
            version: version.to_string(),
            display_name: display.to_string(),
        })
        .collect()
}

pub fn regions() -> Vec<Region> {
    REGIONS
        .iter()
        .map(|(id, region, name, cc)| Region {
            id: *id,
            region: region.to_string(),
            name: name.to_string(),
            country_code: cc.to_string(),
        })
        .collect()
}

/// The size rank of a specification slug (0 = smallest), if it is in the catalog.
pub fn spec_rank(slug: &str) -> Option<usize> {
    SPECS.iter().position(|s| s.1 == slug)
}

pub fn spec_slugs() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.1).collect()
}

pub fn has_image(slug: &str) -> bool {
    IMAGES.iter().any(|i| i.0 == slug)
}

pub fn image_slugs() -> Vec<&'static str> {
    IMAGES.iter().map(|i| i.0).collect()
}

pub fn has_region(slug: &str) -> bool {
    REGIONS.iter().any(|r| r.1 == slug)
}

pub fn region_slugs() -> Vec<&'static str> {
    REGIONS.iter().map(|r| r.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_grow_strictly() {
        let specs = specifications();
        for w in specs.windows(2) {
            assert!(w[0].vcpus <= w[1].vcpus && w[0].memory_mb < w[1].memory_mb);
        }
        assert_eq!(spec_rank("S-1C-1G"), Some(0));
        assert_eq!(spec_rank("S-8C-16G"), Some(4));
        assert_eq!(spec_rank("s-1c-1g"), None);
        for s in &specs {
            let u = uuid::Uuid::parse_str(&s.id).unwrap();
            assert_eq!(u.get_version_num(), 4);
        }
    }
}
