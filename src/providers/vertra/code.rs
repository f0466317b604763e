//! An app's code: a ZIP fetched from a URL and checked against its SHA-256, or a Flux artifact
//! (a `.tar.gz`) repackaged as the ZIP Vertra takes. Everything here is bounded: the download
//! (100 MB, Vertra's upload limit), the unpacked size (512 MB), the number of entries, and the
//! paths (no absolute paths, no `..`, regular files and directories only).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Vertra's largest upload.
pub const MAX_ARCHIVE_BYTES: usize = 100 * 1024 * 1024;
/// Vertra's smallest upload.
pub const MIN_ARCHIVE_BYTES: usize = 100;
/// Vertra's largest unpacked upload.
pub const MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
/// The most files an archive may hold.
pub const MAX_ENTRIES: usize = 100_000;
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Why code could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The download failed (network, 5xx): worth trying again later.
    #[error("cannot download the code: {0}")]
    Fetch(String),
    /// What was downloaded is not what the spec pins: the spec (or the source) must change.
    #[error("the code downloaded from {url} has SHA-256 {got}, not the {expected} the spec pins")]
    Digest {
        url: String,
        expected: String,
        got: String,
    },
    /// The archive is not usable as it is: the source must change.
    #[error("the code archive is not usable: {0}")]
    Invalid(String),
}

impl CodeError {
    /// Whether trying again later may succeed without a change of the spec or the source.
    pub fn is_transient(&self) -> bool {
        matches!(self, CodeError::Fetch(_))
    }
}

/// The SHA-256 of `bytes`, 64 lower-case hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a code URL may be fetched: HTTPS, or plain HTTP to a loopback or in-cluster
/// (`*.svc`, `*.svc.cluster.local`) host, as Flux's source-controller serves artifacts. The
/// digest is checked either way.
pub fn check_url(url: &str) -> Result<reqwest::Url, CodeError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CodeError::Invalid(format!("{url:?} is not a URL: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(CodeError::Invalid(
            "the code URL must not carry credentials".into(),
        ));
    }
    let host = parsed.host_str().unwrap_or_default().trim_end_matches('.');
    let in_cluster = host.ends_with(".svc") || host.ends_with(".svc.cluster.local");
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback || in_cluster => Ok(parsed),
        other => Err(CodeError::Invalid(format!(
            "the code URL must be https:// (plain http only to a loopback or in-cluster host), not {other}://"
        ))),
    }
}

/// Download `url` (at most [`MAX_ARCHIVE_BYTES`]).
pub async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, CodeError> {
    let parsed = check_url(url)?;
    let fail = |e: reqwest::Error| CodeError::Fetch(e.without_url().to_string());
    let mut response = http
        .get(parsed)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(fail)?;
    let status = response.status();
    if status.is_redirection() {
        return Err(CodeError::Invalid(format!(
            "HTTP {status} from the code URL: redirects are not followed; use the final URL"
        )));
    }
    if !status.is_success() {
        let message = format!("HTTP {status} from the code URL");
        return Err(if status.is_server_error() || status.as_u16() == 429 {
            CodeError::Fetch(message)
        } else {
            CodeError::Invalid(message)
        });
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ARCHIVE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fail)? {
        if body.len() + chunk.len() > MAX_ARCHIVE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large() -> CodeError {
    CodeError::Invalid(format!(
        "the archive is larger than Vertra's {} MB upload limit",
        MAX_ARCHIVE_BYTES / 1024 / 1024
    ))
}

/// A ZIP from `url` whose SHA-256 must be `sha256`, checked to be a ZIP Vertra accepts.
pub async fn fetch_zip(
    http: &reqwest::Client,
    url: &str,
    sha256: &str,
) -> Result<Arc<[u8]>, CodeError> {
    let bytes = fetch(http, url).await?;
    let got = sha256_hex(&bytes);
    if !got.eq_ignore_ascii_case(sha256) {
        return Err(CodeError::Digest {
            url: url.to_string(),
            expected: sha256.to_string(),
            got,
        });
    }
    check_zip(&bytes)?;
    Ok(bytes.into())
}

/// Whether `bytes` is a ZIP Vertra takes: size bounds, readable, bounded entries.
pub fn check_zip(bytes: &[u8]) -> Result<(), CodeError> {
    if bytes.len() < MIN_ARCHIVE_BYTES {
        return Err(CodeError::Invalid(format!(
            "the archive is {} bytes; Vertra takes at least {MIN_ARCHIVE_BYTES}",
            bytes.len()
        )));
    }
    let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| CodeError::Invalid(format!("not a ZIP: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(CodeError::Invalid(format!(
            "the ZIP holds {} entries; at most {MAX_ENTRIES} are taken",
            archive.len()
        )));
    }
    Ok(())
}

/// A Flux artifact (`.tar.gz`) whose digest must be `digest` (`sha256:<hex>`), as a ZIP.
pub async fn fetch_flux_artifact(
    http: &reqwest::Client,
    url: &str,
    digest: &str,
) -> Result<Arc<[u8]>, CodeError> {
    let bytes = fetch(http, url).await?;
    let expected = digest.strip_prefix("sha256:").ok_or_else(|| {
        CodeError::Invalid(format!(
            "the artifact's digest {digest:?} is not sha256:<hex>"
        ))
    })?;
    let got = sha256_hex(&bytes);
    if !got.eq_ignore_ascii_case(expected) {
        return Err(CodeError::Digest {
            url: url.to_string(),
            expected: expected.to_string(),
            got,
        });
    }
    // Unpacking and compressing up to 512 MB is CPU work: off the async threads.
    let zip = tokio::task::spawn_blocking(move || tar_gz_to_zip(&bytes))
        .await
        .map_err(|e| CodeError::Invalid(format!("repackaging the artifact failed: {e}")))??;
    Ok(zip.into())
}

/// A ZIP being written into memory, refused once it passes Vertra's upload limit (so a
/// hostile artifact that compresses badly never grows without bound).
struct CappedBuffer {
    inner: std::io::Cursor<Vec<u8>>,
    max: usize,
}

impl Write for CappedBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let end = self.inner.position() as usize + data.len();
        if end > self.max {
            return Err(std::io::Error::other(too_large().to_string()));
        }
        self.inner.write(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for CappedBuffer {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Repackage a `.tar.gz` as a ZIP: regular files and directories only, relative paths without
/// `..`, at most [`MAX_ENTRIES`] entries and [`MAX_UNPACKED_BYTES`] unpacked, and a ZIP of at
/// most [`MAX_ARCHIVE_BYTES`]. Each file is streamed from the tar into the ZIP, never held
/// whole. Blocking: call it off the async threads.
pub fn tar_gz_to_zip(tar_gz: &[u8]) -> Result<Vec<u8>, CodeError> {
    tar_gz_to_zip_within(tar_gz, MAX_ARCHIVE_BYTES)
}

fn tar_gz_to_zip_within(tar_gz: &[u8], max: usize) -> Result<Vec<u8>, CodeError> {
    let invalid = |m: String| CodeError::Invalid(m);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
    let mut out = zip::ZipWriter::new(CappedBuffer {
        inner: std::io::Cursor::new(Vec::new()),
        max,
    });
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut total: u64 = 0;
    let mut entries = 0usize;
    for entry in archive
        .entries()
        .map_err(|e| invalid(format!("not a tar.gz: {e}")))?
    {
        let mut entry = entry.map_err(|e| invalid(format!("a broken tar entry: {e}")))?;
        let kind = entry.header().entry_type();
        let path = entry
            .path()
            .map_err(|e| invalid(format!("an entry without a usable path: {e}")))?
            .into_owned();
        let name = safe_name(&path)?;
        let Some(name) = name else { continue };
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(invalid(format!(
                "the artifact holds more than {MAX_ENTRIES} entries"
            )));
        }
        if kind.is_dir() {
            out.add_directory(format!("{name}/"), options)
                .map_err(|e| invalid(format!("cannot write the ZIP: {e}")))?;
        } else if kind.is_file() {
            total = total.saturating_add(entry.size());
            if total > MAX_UNPACKED_BYTES {
                return Err(invalid(format!(
                    "the artifact unpacks to more than {} MB",
                    MAX_UNPACKED_BYTES / 1024 / 1024
                )));
            }
            out.start_file(name.as_str(), options)
                .map_err(|e| invalid(format!("cannot write the ZIP: {e}")))?;
            // The header's size was counted above; the copy reads no more than it says.
            let size = entry.size();
            std::io::copy(&mut entry.by_ref().take(size), &mut out)
                .map_err(|e| invalid(format!("cannot repackage {name}: {e}")))?;
        }
        // Links, devices and the like are left out: Vertra takes files.
    }
    let zip = out
        .finish()
        .map_err(|e| invalid(format!("cannot write the ZIP: {e}")))?
        .inner
        .into_inner();
    check_zip(&zip)?;
    Ok(zip)
}

/// An entry's path as a ZIP name: `None` for the archive root; an error for an absolute path or
/// one that climbs out with `..`.
fn safe_name(path: &std::path::Path) -> Result<Option<String>, CodeError> {
    use std::path::Component;
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => {
                return Err(CodeError::Invalid(format!(
                    "the artifact holds the path {:?}, which leaves its root",
                    path.display().to_string()
                )));
            }
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // `append_data` refuses `..`; write the raw name to test what a hostile tar holds.
            let raw = &mut header.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_flux_tarball_becomes_a_zip_with_the_same_files() {
        let body = vec![b'x'; 300];
        let zip = tar_gz_to_zip(&tar_gz(&[("./index.js", &body), ("lib/a.js", b"a")])).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut names: Vec<String> = archive.file_names().map(str::to_string).collect();
        names.sort();
        assert_eq!(names, ["index.js", "lib/a.js"]);
        let mut text = String::new();
        archive
            .by_name("lib/a.js")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "a");
    }

    #[test]
    fn an_artifact_whose_zip_would_pass_the_upload_limit_is_refused_while_it_is_written() {
        // Random bytes do not compress: 200 KB of them make a ZIP past a 64 KB limit (the
        // same code path as 101 MB against Vertra's 100 MB, in a fraction of the time).
        let mut noise = vec![0u8; 200 * 1024];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let e = tar_gz_to_zip_within(&tar_gz(&[("blob.bin", &noise)]), 64 * 1024).unwrap_err();
        assert!(e.to_string().contains("upload limit"), "{e}");
    }

    #[test]
    fn paths_that_leave_the_root_and_garbage_are_refused() {
        let e = tar_gz_to_zip(&tar_gz(&[("../etc/passwd", b"x")])).unwrap_err();
        assert!(e.to_string().contains("leaves its root"), "{e}");
        assert!(tar_gz_to_zip(b"not gzip at all").is_err());
        assert!(check_zip(&[0u8; 50]).is_err(), "too small");
        assert!(check_zip(&[0u8; 500]).is_err(), "not a ZIP");
    }

    #[test]
    fn code_urls_are_https_or_plain_http_only_inside_the_cluster_or_on_loopback() {
        for ok in [
            "https://example.com/app.zip",
            "http://127.0.0.1:8080/a.zip",
            "http://source-controller.flux-system.svc.cluster.local./gitrepository/a/b/c.tar.gz",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/a.zip",
            "ftp://example.com/a.zip",
            "https://user:pw@example.com/a.zip",
            "nonsense",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_digest_is_lower_case_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
