//! App code as the sandbox sees it: the names in a ZIP (never the contents), with the rules the
//! API applies — 100 B to 100 MB, `node_modules` and `.git` stripped — and the sandbox's build
//! marker: a file named [`FAIL_BUILD`] anywhere in the archive makes its build fail.

use std::collections::BTreeSet;

use super::reply::ApiError;
use super::wire::codes;

/// The smallest archive accepted.
pub const MIN_ZIP_BYTES: usize = 100;
/// The largest file or archive accepted (100 MB).
pub const MAX_FILE_BYTES: usize = 100 * 1024 * 1024;
/// A file of this name in an archive makes the build of that code fail.
pub const FAIL_BUILD: &str = "FAIL_BUILD";
/// Where the sandbox serves [`sample_zip`] (no key needed), for examples and demos that have
/// no server of their own for code.
pub const SAMPLE_ZIP_PATH: &str = "/_sim/sample.zip";

/// A small Node.js app (`index.js`, `package.json`), byte for byte the same on every build
/// (stored, not compressed, with the ZIP epoch as every file's time), so an example can pin its
/// SHA-256.
pub fn sample_zip() -> Vec<u8> {
    use std::io::Write;
    let files = [
        (
            "index.js",
            "// The stratus example app: answers every request with a greeting.\n\
             const http = require('http');\n\
             http.createServer((req, res) => res.end('hello from stratus\\n')).listen(process.env.PORT || 80);\n",
        ),
        (
            "package.json",
            "{\n  \"name\": \"stratus-example\",\n  \"version\": \"1.0.0\",\n  \"main\": \"index.js\"\n}\n",
        ),
    ];
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, text) in files {
        out.start_file(name, options).expect("writing to memory");
        out.write_all(text.as_bytes()).expect("writing to memory");
    }
    out.finish().expect("writing to memory").into_inner()
}

/// Directories the platform strips from uploads.
const STRIPPED: [&str; 2] = ["node_modules", ".git"];

/// What an upload holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    /// File paths, `/`-separated, relative to the app's root.
    pub files: BTreeSet<String>,
    /// The stripped directories (`node_modules`, `sub/.git`), once each.
    pub removed_directories: Vec<String>,
    /// The archive holds a [`FAIL_BUILD`] file.
    pub fail_build: bool,
}

/// `dir/name` without empty, `.` or leading `/` segments; `None` if it climbs out (`..`).
pub fn clean_path(dir: Option<&str>, name: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in dir
        .unwrap_or("")
        .split(['/', '\\'])
        .chain(name.split(['/', '\\']))
    {
        match seg {
            "" | "." => {}
            ".." => return None,
            s => out.push(s),
        }
    }
    (!out.is_empty()).then(|| out.join("/"))
}

fn too_large(len: usize) -> ApiError {
    ApiError::bad_request(
        codes::FILE_TOO_LARGE,
        format!("the file has {len} bytes; at most {MAX_FILE_BYTES} (100 MB) are accepted"),
    )
}

impl Archive {
    fn add(&mut self, path: String) {
        let segs: Vec<&str> = path.split('/').collect();
        if let Some(i) = segs.iter().position(|s| STRIPPED.contains(s)) {
            let dir = segs[..=i].join("/");
            if !self.removed_directories.contains(&dir) {
                self.removed_directories.push(dir);
            }
            return;
        }
        if segs.last() == Some(&FAIL_BUILD) {
            self.fail_build = true;
        }
        self.files.insert(path);
    }
}

/// The names in a ZIP, placed under `dir`.
pub fn read_zip(bytes: &[u8], dir: Option<&str>) -> Result<Archive, ApiError> {
    if bytes.len() < MIN_ZIP_BYTES {
        return Err(ApiError::bad_request(
            codes::ZIP_TOO_SMALL,
            format!(
                "the archive has {} bytes; at least {MIN_ZIP_BYTES} are needed",
                bytes.len()
            ),
        ));
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(bytes.len()));
    }
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
        ApiError::bad_request(
            codes::INVALID_ZIP,
            format!("the file is not a ZIP archive: {e}"),
        )
    })?;
    let mut archive = Archive::default();
    for name in zip.file_names() {
        if name.ends_with('/') || name.ends_with('\\') {
            continue;
        }
        let Some(path) = clean_path(dir, name) else {
            return Err(ApiError::bad_request(
                codes::INVALID_ZIP,
                format!("the archive entry {name:?} climbs out of the app's directory"),
            ));
        };
        archive.add(path);
    }
    Ok(archive)
}

/// One file uploaded as it is (not a ZIP), placed under `dir`.
pub fn single_file(name: &str, len: usize, dir: Option<&str>) -> Result<Archive, ApiError> {
    if len > MAX_FILE_BYTES {
        return Err(too_large(len));
    }
    let path = clean_path(dir, name).ok_or_else(|| {
        ApiError::validation(&["file"], format!("{name:?} is not a usable file name"))
    })?;
    let mut archive = Archive::default();
    archive.add(path);
    Ok(archive)
}

/// True if `bytes` start like a ZIP (local file header or empty archive).
pub fn looks_like_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip(files: &[&str]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for f in files {
            w.start_file(*f, opts).unwrap();
            w.write_all(b"console.log('hello from the sandbox test suite');\n")
                .unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn the_sample_zip_is_the_same_on_every_build_and_an_archive_vertra_takes() {
        let a = sample_zip();
        assert_eq!(a, sample_zip());
        assert!(a.len() >= MIN_ZIP_BYTES);
        // deploy/examples/vertra.yaml pins this digest.
        assert_eq!(
            crate::providers::vertra::code::sha256_hex(&a),
            "fdd675c71f8f9cfc2a8e2f3ab8639390c8a9a8b0089966b557f3e4adce93da59"
        );
        crate::providers::vertra::code::check_zip(&a).unwrap();
    }

    #[test]
    fn names_are_cleaned_stripped_and_the_build_marker_is_seen() {
        let a = read_zip(
            &zip(&[
                "./index.js",
                "node_modules/x/i.js",
                "sub/.git/HEAD",
                "sub/FAIL_BUILD",
                "node_modules/y.js",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            a.files,
            ["index.js", "sub/FAIL_BUILD"].map(String::from).into()
        );
        assert_eq!(a.removed_directories, ["node_modules", "sub/.git"]);
        assert!(a.fail_build);
        let a = read_zip(&zip(&["index.js"]), Some("/src/")).unwrap();
        assert_eq!(a.files, ["src/index.js".to_string()].into());
        assert!(!a.fail_build);
    }

    #[test]
    fn small_large_broken_and_escaping_archives_are_refused() {
        let code = |r: Result<Archive, ApiError>| r.unwrap_err().code;
        assert_eq!(code(read_zip(b"PK\x03\x04", None)), codes::ZIP_TOO_SMALL);
        assert_eq!(code(read_zip(&[7u8; 200], None)), codes::INVALID_ZIP);
        assert_eq!(code(read_zip(&zip(&["../x.js"]), None)), codes::INVALID_ZIP);
        assert_eq!(
            code(single_file("big.bin", MAX_FILE_BYTES + 1, None)),
            codes::FILE_TOO_LARGE
        );
        assert_eq!(clean_path(Some("a"), "b/../c"), None);
        assert!(looks_like_zip(&zip(&["a.js"])));
    }
}
