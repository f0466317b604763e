//! A small `multipart/form-data` reader (RFC 7578) for the two multipart routes: the whole body
//! is in memory already (≤ the route's body limit), so parts are slices of it.

use axum::body::Bytes;

/// One part: its field name, file name if it is a file, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Bytes,
}

impl Part {
    /// The part as text (a form field), or why not.
    pub fn text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.data)
            .map_err(|_| format!("field {} is not UTF-8 text", self.name))
    }
}

/// The boundary of a `multipart/form-data` content type, or why there is none.
pub fn boundary(content_type: Option<&str>) -> Result<String, String> {
    let ct = content_type.ok_or("the request has no Content-Type; send multipart/form-data")?;
    let mut params = ct.split(';');
    let mime = params.next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!(
            "the body must be multipart/form-data, not {mime:?}"
        ));
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 200)
        .ok_or_else(|| "the multipart Content-Type has no boundary".to_string())
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = from;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|b| *b == first)
        {
            None => return None,
            Some(off) => {
                let at = i + off;
                if &hay[at..at + needle.len()] == needle {
                    return Some(at);
                }
                i = at + 1;
            }
        }
    }
    None
}

/// The value of `param="…"` in a Content-Disposition header.
fn disposition_param(value: &str, param: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(param)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The parts of `body`, delimited by `boundary`.
pub fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let broken = || "the multipart body is malformed".to_string();
    let mut pos = find(body, delimiter.as_bytes(), 0).ok_or_else(broken)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        // The rest of the delimiter line (transport padding), then the part's headers.
        let line_end = find(body, b"\r\n", pos).ok_or_else(broken)?;
        let head_start = line_end + 2;
        let head_end = if body[head_start..].starts_with(b"\r\n") {
            head_start
        } else {
            find(body, b"\r\n\r\n", head_start).ok_or_else(broken)? + 2
        };
        let head = std::str::from_utf8(&body[head_start..head_end])
            .map_err(|_| "a multipart part has headers that are not UTF-8".to_string())?;
        let data_start = head_end + 2;
        let data_end = find(body, next_delimiter.as_bytes(), data_start).ok_or_else(broken)?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n").filter(|l| !l.is_empty()) {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name");
                filename = disposition_param(v, "filename");
            }
        }
        let name = name.ok_or("a multipart part has no Content-Disposition name")?;
        parts.push(Part {
            name,
            filename,
            data: body.slice(data_start..data_end),
        });
        pos = data_end + next_delimiter.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Bytes {
        let mut b = Vec::new();
        for (name, file, data) in parts {
            b.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(f) => b.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                         Content-Type: application/zip\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            b.extend_from_slice(data);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Bytes::from(b)
    }

    #[test]
    fn fields_and_files_come_back_byte_for_byte() {
        let zip: &[u8] = b"PK\x03\x04\r\n--not-the-boundary\r\n\x00\xff";
        let b = body(
            "XyZ",
            &[
                ("name", None, b"web"),
                ("file", Some("app.zip"), zip),
                ("empty", None, b""),
            ],
        );
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        let parts = parse(&b, &boundary(Some(ct)).unwrap()).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].text().unwrap()),
            ("name", "web")
        );
        assert_eq!(parts[1].filename.as_deref(), Some("app.zip"));
        assert_eq!(&parts[1].data[..], zip);
        assert_eq!(parts[2].text().unwrap(), "");
    }

    #[test]
    fn other_content_types_and_broken_bodies_are_refused() {
        assert!(boundary(Some("application/json")).is_err());
        assert!(boundary(None).is_err());
        assert!(boundary(Some("multipart/form-data")).is_err());
        assert!(parse(&Bytes::from_static(b"garbage"), "b").is_err());
        assert!(parse(&Bytes::from_static(b"--b\r\nX: y\r\n\r\nno end"), "b").is_err());
    }
}
