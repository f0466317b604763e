//! Pure rules for request bodies: fields of a JSON object (or multipart text) with the limits
//! api-current.md gives, each failure a `400 VALIDATION_ERROR` naming its field in
//! `details.path`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde_json::{Map, Value};

use super::reply::ApiError;
use super::state::apps::EnvInput;
use super::state::network::SubdomainWish;
use super::wire::codes;

/// Names (apps, databases, workspaces): at most this many characters.
pub const NAME_MAX: usize = 50;
/// App and database descriptions.
pub const DESCRIPTION_MAX: usize = 128;
/// Workspace descriptions.
pub const WORKSPACE_DESCRIPTION_MAX: usize = 200;
/// Start and build commands.
pub const COMMAND_MAX: usize = 512;
pub const ENV_KEY_MAX: usize = 255;
pub const ENV_VALUE_MAX: usize = 3072;
pub const ENV_NOTE_MAX: usize = 50;
/// The least RAM (MB) of an app, and of a published one.
pub const APP_RAM_MIN: u64 = 100;
pub const PUBLISHED_RAM_MIN: u64 = 512;
/// App languages (§6).
pub const LANGUAGES: [&str; 10] = [
    "javascript",
    "typescript",
    "bun",
    "python",
    "static",
    "php",
    "go",
    "ruby",
    "java",
    "rust",
];

/// A JSON object body; anything else is `400 VALIDATION_ERROR`.
pub fn json_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let v = crate::sim::reply::json_body(body).map_err(ApiError::from)?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::validation(&[], "the body must be a JSON object")),
    }
}

/// A JSON object body, or `{}` when the body is empty (routes whose body is optional).
pub fn optional_object(
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    match &body {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        _ => json_object(body),
    }
}

fn check_len(field: &str, s: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(ApiError::validation(
            &[field],
            format!("{field} must have {min} to {max} characters; it has {n}"),
        ));
    }
    Ok(())
}

/// A string field: absent or null → `None`; `min..=max` characters.
pub fn string(
    obj: &Map<String, Value>,
    field: &str,
    min: usize,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            check_len(field, s, min, max)?;
            Ok(Some(s.clone()))
        }
        Some(_) => Err(ApiError::validation(
            &[field],
            format!("{field} must be a string"),
        )),
    }
}

/// A field that must be there.
pub fn required<T>(field: &str, v: Option<T>) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::validation(&[field], format!("{field} is required")))
}

/// A string field that may be cleared: absent → `None`, null (or `""` when `empty_clears`) →
/// `Some(None)`.
pub fn nullable_string(
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
    empty_clears: bool,
) -> Result<Option<Option<String>>, ApiError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.is_empty() && empty_clears => Ok(Some(None)),
        Some(Value::String(s)) => {
            check_len(field, s, 0, max)?;
            Ok(Some(Some(s.clone())))
        }
        Some(_) => Err(ApiError::validation(
            &[field],
            format!("{field} must be a string or null"),
        )),
    }
}

/// A whole number field (JSON numbers only).
pub fn integer(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::validation(&[field], format!("{field} must be a whole number"))
        }),
    }
}

/// A whole number given as text (multipart fields).
pub fn integer_text(field: &str, s: &str) -> Result<u64, ApiError> {
    s.trim()
        .parse()
        .map_err(|_| ApiError::validation(&[field], format!("{field} must be a whole number")))
}

/// A boolean field.
pub fn boolean(obj: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::validation(
            &[field],
            format!("{field} must be true or false"),
        )),
    }
}

/// RAM of an app: at least 100 MB, 512 when published.
pub fn app_ram(field: &str, ram: u64, published: bool) -> Result<u64, ApiError> {
    let min = if published {
        PUBLISHED_RAM_MIN
    } else {
        APP_RAM_MIN
    };
    if ram < min {
        let why = if published {
            " for a published app"
        } else {
            ""
        };
        return Err(ApiError::validation(
            &[field],
            format!("{field} must be at least {min} MB{why}; got {ram}"),
        ));
    }
    Ok(ram)
}

/// A version: `recommended`, `latest`, (`auto` in updates) or an exact one.
pub fn version(field: &str, v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.is_empty() || v.len() > 32 || v.chars().any(char::is_whitespace) {
        return Err(ApiError::validation(
            &[field],
            format!("{field} must be recommended, latest or an exact version"),
        ));
    }
    Ok(v.to_string())
}

/// A language of §6.
pub fn language(v: &str) -> Result<String, ApiError> {
    if LANGUAGES.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(ApiError::validation(
            &["language"],
            format!("language must be one of {}", LANGUAGES.join(", ")),
        ))
    }
}

/// A subdomain label: 3–50 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn subdomain_label(field: &str, s: &str) -> Result<String, ApiError> {
    let ok = (3..=50).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if !ok {
        return Err(ApiError::validation(
            &[field],
            format!(
                "{field} must be 3 to 50 lowercase letters, digits or hyphens, not starting or \
                 ending with a hyphen; got {s:?}"
            ),
        ));
    }
    Ok(s.to_string())
}

/// What a create's or a publish's `subdomain` asks for: `random`, or a name.
pub fn subdomain_wish(field: &str, s: &str) -> Result<SubdomainWish, ApiError> {
    if s == "random" {
        Ok(SubdomainWish::Random)
    } else {
        subdomain_label(field, s).map(SubdomainWish::Named)
    }
}

/// A custom domain: a lowercase host name of at least two labels, not under vertraweb.app.
pub fn custom_domain(s: &str) -> Result<String, ApiError> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !d.ends_with(".vertraweb.app");
    if !ok {
        return Err(ApiError::bad_request(
            codes::INVALID_CUSTOM_DOMAIN_FORMAT,
            format!("{s:?} is not a domain name such as app.example.com"),
        ));
    }
    Ok(d)
}

/// One env `{key, value, note?}` (item `i` of a list, for the path).
fn env(v: &Value, field: &str, i: Option<usize>) -> Result<EnvInput, ApiError> {
    let at = |name: &str| match i {
        Some(i) => format!("{field}[{i}].{name}"),
        None => name.to_string(),
    };
    let bad = |name: &str, msg: String| ApiError::validation(&[&at(name)], msg);
    let Some(obj) = v.as_object() else {
        return Err(bad("", "an env is an object {key, value, note?}".into()));
    };
    let key = match obj.get("key") {
        Some(Value::String(k))
            if !k.is_empty()
                && k.len() <= ENV_KEY_MAX
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            k.clone()
        }
        _ => {
            return Err(bad(
                "key",
                format!("key must be 1 to {ENV_KEY_MAX} letters, digits or underscores"),
            ));
        }
    };
    let value = match obj.get("value") {
        Some(Value::String(s)) if s.chars().count() <= ENV_VALUE_MAX => s.clone(),
        _ => {
            return Err(bad(
                "value",
                format!("value must be a string of at most {ENV_VALUE_MAX} characters"),
            ));
        }
    };
    let note = match obj.get("note") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.chars().count() <= ENV_NOTE_MAX => Some(Some(s.clone())),
        Some(_) => {
            return Err(bad(
                "note",
                format!("note must be null or a string of at most {ENV_NOTE_MAX} characters"),
            ));
        }
    };
    Ok(EnvInput { key, value, note })
}

/// Envs as `POST …/envs` takes them: one object, an array, or (older clients)
/// `{"environments": [...]}`; no key twice.
pub fn envs(v: &Value, field: &str) -> Result<Vec<EnvInput>, ApiError> {
    let list = match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, e)| env(e, field, Some(i)))
            .collect::<Result<Vec<_>, _>>()?,
        Value::Object(o) if o.contains_key("environments") => {
            return envs(&o["environments"], "environments");
        }
        Value::Object(_) => vec![env(v, field, None)?],
        _ => {
            return Err(ApiError::validation(
                &[field],
                "envs must be an object {key, value, note?} or an array of them",
            ));
        }
    };
    for (i, e) in list.iter().enumerate() {
        if list[..i].iter().any(|o| o.key == e.key) {
            return Err(ApiError::validation(
                &[field],
                format!("the key {} is given twice", e.key),
            ));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn fields_are_typed_and_bounded_and_errors_name_them() {
        let o = obj(json!({"name": "", "ram": "1024", "d": null, "flag": 1}));
        let e = string(&o, "name", 1, 50).unwrap_err();
        assert_eq!(e.details, Some(json!({"path": ["name"]})));
        assert_eq!(
            integer(&o, "ram").unwrap_err().code,
            codes::VALIDATION_ERROR
        );
        assert_eq!(nullable_string(&o, "d", 10, false).unwrap(), Some(None));
        assert_eq!(nullable_string(&o, "x", 10, false).unwrap(), None);
        assert!(boolean(&o, "flag").is_err());
        assert!(required("name", None::<String>).is_err());
        assert_eq!(
            app_ram("memory", 256, true).unwrap_err().code,
            codes::VALIDATION_ERROR
        );
        assert_eq!(app_ram("memory", 100, false).unwrap(), 100);
    }

    #[test]
    fn names_on_the_network_follow_their_patterns() {
        assert!(subdomain_label("s", "my-app1").is_ok());
        for bad in ["ab", "-ab", "ab-", "My-app", "a_b", &"a".repeat(51)] {
            assert!(subdomain_label("s", bad).is_err(), "{bad}");
        }
        assert_eq!(
            subdomain_wish("s", "random").unwrap(),
            SubdomainWish::Random
        );
        assert_eq!(
            custom_domain("App.Example.com.").unwrap(),
            "app.example.com"
        );
        for bad in ["@", "localhost", "a..b", "x.vertraweb.app", "-a.com"] {
            assert_eq!(
                custom_domain(bad).unwrap_err().code,
                codes::INVALID_CUSTOM_DOMAIN_FORMAT,
                "{bad}"
            );
        }
    }

    #[test]
    fn envs_come_as_one_a_list_or_the_older_environments_body_and_keys_are_unique() {
        let one = envs(&json!({"key": "A", "value": "1"}), "envs").unwrap();
        assert_eq!(one[0].note, None);
        let list = envs(
            &json!([{"key": "A", "value": "1", "note": null}, {"key": "B", "value": "2", "note": "n"}]),
            "envs",
        )
        .unwrap();
        assert_eq!(list[0].note, Some(None));
        assert_eq!(list[1].note, Some(Some("n".into())));
        let old = envs(
            &json!({"environments": [{"key": "A", "value": "1"}]}),
            "envs",
        )
        .unwrap();
        assert_eq!(old.len(), 1);
        let e = envs(
            &json!([{"key": "A", "value": "1"}, {"key": "A", "value": "2"}]),
            "envs",
        );
        assert!(e.unwrap_err().message.contains("twice"));
        let e = envs(&json!([{"key": "A B", "value": "1"}]), "envs").unwrap_err();
        assert_eq!(e.details, Some(json!({"path": ["envs[0].key"]})));
    }
}
