//! Connection Secrets: the credentials a resource produces (an API key, a token), written to a
//! Secret the object owns. The engine can create, patch and delete Secrets but never read them:
//! ownership is proven by a label test (JSON patch `test`) or by the Secret's UID as a
//! precondition, so a Secret the operator did not create is never overwritten.
//!
//! Values are held as [`SecretBytes`], whose `Debug` prints only a length: never a value in a
//! log, an event, a status or a metric.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Resource, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;

use super::Invalid;
use crate::api::common::{ConnectionSecretSpec, ROTATION_MAX, SECRET_NAME_MAX};

/// The type of every connection Secret the engine writes.
pub const SECRET_TYPE: &str = "stratus.dev/connection";
/// Label on a connection Secret: the UID of the object that owns it (the ownership proof a
/// JSON patch tests before any write to a Secret whose UID the object has not recorded).
pub const OWNER_UID_LABEL: &str = "stratus.dev/owner-uid";
/// Annotation on a connection Secret: `Kind namespace/name` of the object that owns it.
pub const OWNER_ANNOTATION: &str = "stratus.dev/owner";
/// Annotation on a connection Secret: the non-secret version of the value it holds.
pub const VERSION_ANNOTATION: &str = "stratus.dev/version";
/// Annotation on a connection Secret: the Idempotency-Key of the create whose answer it holds,
/// so a reconcile recovering from a crash can tell whether that answer reached the Secret.
pub const CREATE_KEY_ANNOTATION: &str = "stratus.dev/create-key";
/// Prefix of the keys holding the previous value during a rotation's grace period.
pub const PREVIOUS_PREFIX: &str = "previous-";

/// Bytes of a secret value. `Debug` prints the length only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into())
    }

    /// The value, for the Secret's data only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// A credential's value as the cloud answered it (Crossplane's `ConnectionDetails`): keys and
/// secret bytes, and a non-secret `version` naming this value (a key id, a prefix, a serial)
/// that [`Adapter::revoke`](super::Adapter::revoke) is told to keep. Every value of one kind
/// should have the same keys (a rotation copies the current keys to `previous-` keys).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionDetails {
    pub version: String,
    values: BTreeMap<String, SecretBytes>,
}

impl ConnectionDetails {
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            values: BTreeMap::new(),
        }
    }

    /// Add a value under `key` (a Secret data key: letters, digits, `-`, `_`, `.`).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.values.insert(key.into(), SecretBytes::new(value));
        self
    }

    pub fn keys(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }

    pub fn get(&self, key: &str) -> Option<&SecretBytes> {
        self.values.get(key)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn data(&self) -> BTreeMap<String, ByteString> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), ByteString(v.0.clone())))
            .collect()
    }
}

impl std::fmt::Debug for ConnectionDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionDetails")
            .field("version", &self.version)
            .field("keys", &self.keys())
            .finish()
    }
}

/// What a create answered (Crossplane's `ExternalCreation`): the resource, and the credential
/// the cloud shows only in this answer, if the kind produces one.
#[derive(Debug, Clone)]
pub struct Created<O> {
    pub observed: O,
    pub connection: Option<ConnectionDetails>,
}

impl<O> From<O> for Created<O> {
    /// A create that produced no credential.
    fn from(observed: O) -> Self {
        Self {
            observed,
            connection: None,
        }
    }
}

/// Which values of a credential a revocation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation<'a> {
    /// Every value but this version: the resource is this object's own creation, so every
    /// other value was issued by the operator, including values whose answer was lost in a
    /// crash (whose version nobody knows).
    AllBut(&'a str),
    /// Exactly these versions, all issued by the operator: for a resource that was adopted,
    /// whose other values someone else issued and uses, and for a value that could not be
    /// written.
    Only(&'a [String]),
}

/// The checks `spec.writeConnectionSecretToRef` and `spec.connectionSecretRotation` get before
/// any call: the CRD schema has the same bounds, but an object stored before they existed
/// never went through them.
pub fn validate(spec: &ConnectionSecretSpec) -> Result<(), Invalid> {
    if let Some(r) = &spec.write_connection_secret_to_ref
        && let Err(why) = check_secret_name(&r.name)
    {
        return Err(Invalid::new(
            "InvalidSpec",
            format!(
                "spec.writeConnectionSecretToRef.name {:?} is not a valid Secret name: {why}; use a name such as my-app-credentials",
                truncate_chars(&r.name, 64)
            ),
        ));
    }
    if let Some(nonce) = &spec.connection_secret_rotation {
        let why = if nonce.chars().count() > ROTATION_MAX {
            Some(format!(
                "it has {} characters, at most {ROTATION_MAX} are allowed",
                nonce.chars().count()
            ))
        } else if nonce.chars().any(char::is_control) {
            Some("it contains a control character (a newline, a tab)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(Invalid::new(
                "InvalidSpec",
                format!(
                    "spec.connectionSecretRotation is not usable: {why}; use a short string such as a date (2026-12-02) or a counter"
                ),
            ));
        }
    }
    Ok(())
}

/// What is wrong with `name` as a Secret name (a DNS subdomain, RFC 1123), if anything.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "it contains {c:?}: only lowercase letters, digits, '-' and '.' are allowed"
        ));
    }
    if name.len() > SECRET_NAME_MAX {
        return Err(format!(
            "it has {} characters, at most {SECRET_NAME_MAX} are allowed",
            name.len()
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if name
        .split('.')
        .any(|part| !edge(part.chars().next()) || !edge(part.chars().last()))
    {
        return Err("every part between dots must start and end with a letter or digit".into());
    }
    Ok(())
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

/// Values the cloud issued whose write to the connection Secret failed, held in memory per
/// object UID so a retry writes the same value instead of asking the cloud for another (every
/// `replace` mints a credential). The record names a held value (`unwritten`), so after a
/// restart, which loses this memory, the value is revoked instead.
#[derive(Default)]
pub struct Unwritten(Mutex<HashMap<String, ConnectionDetails>>);

impl Unwritten {
    pub fn hold(&self, uid: &str, details: ConnectionDetails) {
        self.0.lock().insert(uid.to_string(), details);
    }

    /// The value held for the object with `uid`, if it is the `version` the record names.
    pub fn take(&self, uid: &str, version: &str) -> Option<ConnectionDetails> {
        let mut map = self.0.lock();
        map.remove(uid).filter(|d| d.version == version)
    }

    pub fn forget(&self, uid: &str) {
        self.0.lock().remove(uid);
    }
}

/// Why a write to a connection Secret did not happen.
#[derive(Debug)]
pub enum SecretError {
    /// The Secret exists and is not this object's (or no longer the one it recorded).
    Conflict,
    /// The Secret does not exist.
    Gone,
    Kube(kube::Error),
}

impl From<kube::Error> for SecretError {
    fn from(e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) if s.code == 404 => SecretError::Gone,
            // A failed `test` and a UID that differs are both 422; a UID precondition 409.
            kube::Error::Api(s) if s.code == 422 || s.code == 409 => SecretError::Conflict,
            _ => SecretError::Kube(e),
        }
    }
}

/// The connection Secrets of the object `owner`, in its namespace.
pub struct Secrets<'a, K: Resource<DynamicType = ()>> {
    api: Api<Secret>,
    owner: &'a K,
}

/// A JSON Pointer segment (`/` and `~` escaped).
fn pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The base64 form the Secret's data holds.
fn b64(bytes: &[u8]) -> serde_json::Value {
    serde_json::to_value(ByteString(bytes.to_vec())).unwrap_or_default()
}

impl<'a, K: Resource<DynamicType = ()>> Secrets<'a, K> {
    pub fn new(client: kube::Client, owner: &'a K) -> Self {
        let ns = owner.meta().namespace.clone().unwrap_or_default();
        Self {
            api: Api::namespaced(client, &ns),
            owner,
        }
    }

    fn uid(&self) -> String {
        self.owner.meta().uid.clone().unwrap_or_default()
    }

    fn owned_by(&self) -> String {
        format!(
            "{} {}/{}",
            K::kind(&()),
            self.owner.meta().namespace.as_deref().unwrap_or(""),
            self.owner.name_any()
        )
    }

    /// The test that the Secret is this object's: its owner-UID label.
    fn test_owner(&self) -> serde_json::Value {
        json!({"op": "test", "path": format!("/metadata/labels/{}", pointer(OWNER_UID_LABEL)), "value": self.uid()})
    }

    /// Make sure Secret `name` exists and is this object's: create it (empty, owned by the
    /// object), or prove an existing one is (its owner-UID label). Returns the Secret as the API
    /// server has it (its UID, and the annotations saying what value it holds).
    pub async fn claim(&self, name: &str) -> Result<Secret, SecretError> {
        let owner_ref = self
            .owner
            .controller_owner_ref(&())
            .ok_or(SecretError::Conflict)?;
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": name,
                "labels": {OWNER_UID_LABEL: self.uid()},
                "annotations": {OWNER_ANNOTATION: self.owned_by()},
                "ownerReferences": [owner_ref],
            },
            "type": SECRET_TYPE,
        }))
        .map_err(|e| SecretError::Kube(kube::Error::SerdeError(e)))?;
        match self.api.create(&PostParams::default(), &secret).await {
            Ok(s) => Ok(s),
            // Only "it exists" leads to the ownership test: a create refused for another reason
            // (forbidden, invalid) is that error, never a conflict.
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                // It exists: ours only if it carries our UID (a patch of nothing but a test).
                let patch: json_patch::Patch =
                    serde_json::from_value(json!([self.test_owner()]))
                        .map_err(|e| SecretError::Kube(kube::Error::SerdeError(e)))?;
                Ok(self
                    .api
                    .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
                    .await?)
            }
            Err(e) => Err(SecretError::Kube(e)),
        }
    }

    /// Prove Secret `name` is still the one with `uid` and this object's (a JSON patch of
    /// nothing but tests, which changes nothing): `Gone` when someone deleted it, `Conflict`
    /// when another Secret took its name.
    pub async fn check(&self, name: &str, uid: &str) -> Result<(), SecretError> {
        self.json_patch(
            name,
            json!([
                {"op": "test", "path": "/metadata/uid", "value": uid},
                self.test_owner(),
            ]),
        )
        .await
        .map(|_| ())
    }

    /// Write `details` as the Secret's whole data, on the Secret with `uid` (a precondition).
    /// `create_key`: the create whose answer this is.
    pub async fn write(
        &self,
        name: &str,
        uid: &str,
        details: &ConnectionDetails,
        create_key: Option<&str>,
    ) -> Result<Secret, SecretError> {
        // The data replaced whole, in one write: a JSON patch `add` replaces the member.
        // The UID recorded and the owner label both: a UID copied into the annotation by
        // someone who may edit the object never names a Secret that is not this object's.
        let ops = json!([
            {"op": "test", "path": "/metadata/uid", "value": uid},
            self.test_owner(),
            {"op": "add", "path": "/data", "value": details.data()},
            {"op": "add", "path": format!("/metadata/annotations/{}", pointer(VERSION_ANNOTATION)), "value": details.version},
            {"op": "add", "path": format!("/metadata/annotations/{}", pointer(CREATE_KEY_ANNOTATION)), "value": create_key.unwrap_or("")},
        ]);
        self.json_patch(name, ops).await
    }

    /// Rotate: the current values under `keys` move to `previous-` keys, and `details` become
    /// the current ones, in one write.
    pub async fn rotate(
        &self,
        name: &str,
        uid: &str,
        keys: &[String],
        details: &ConnectionDetails,
    ) -> Result<Secret, SecretError> {
        let mut ops = vec![
            json!({"op": "test", "path": "/metadata/uid", "value": uid}),
            self.test_owner(),
        ];
        for k in keys {
            ops.push(json!({"op": "copy", "from": format!("/data/{}", pointer(k)), "path": format!("/data/{}{}", PREVIOUS_PREFIX, pointer(k))}));
        }
        if keys.is_empty() {
            ops.push(json!({"op": "add", "path": "/data", "value": {}}));
        }
        for (k, v) in &details.values {
            ops.push(
                json!({"op": "add", "path": format!("/data/{}", pointer(k)), "value": b64(&v.0)}),
            );
        }
        ops.push(json!({"op": "add", "path": format!("/metadata/annotations/{}", pointer(VERSION_ANNOTATION)), "value": details.version}));
        self.json_patch(name, serde_json::Value::Array(ops)).await
    }

    /// Remove the `previous-` keys of `keys` (absent ones are fine: a merge patch).
    pub async fn drop_previous(
        &self,
        name: &str,
        uid: &str,
        keys: &[String],
    ) -> Result<(), SecretError> {
        // Proven ours first (owner label and UID), then the keys go; absent ones are fine.
        self.json_patch(
            name,
            json!([
                {"op": "test", "path": "/metadata/uid", "value": uid},
                self.test_owner(),
            ]),
        )
        .await?;
        let data: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|k| (format!("{PREVIOUS_PREFIX}{k}"), serde_json::Value::Null))
            .collect();
        let patch = json!({"metadata": {"uid": uid}, "data": data});
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Let the Secret outlive the object (deletionPolicy Orphan): remove its owner reference,
    /// if it is this object's. A Secret that is gone or not ours is left alone.
    pub async fn orphan(&self, name: &str) -> Result<(), SecretError> {
        let ops = json!([
            self.test_owner(),
            {"op": "add", "path": "/metadata/ownerReferences", "value": []},
        ]);
        match self.json_patch(name, ops).await {
            Ok(_) | Err(SecretError::Gone | SecretError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Delete the Secret with `uid` (a precondition: never another Secret of that name).
    pub async fn delete(&self, name: &str, uid: &str) -> Result<(), SecretError> {
        // Only a Secret carrying this object's owner label (a test patch of nothing else), and
        // then only the incarnation with that UID.
        match self.json_patch(name, json!([self.test_owner()])).await {
            Ok(_) => {}
            Err(SecretError::Gone | SecretError::Conflict) => return Ok(()),
            Err(e) => return Err(e),
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.into()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(e) => match SecretError::from(e) {
                SecretError::Gone | SecretError::Conflict => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn json_patch(&self, name: &str, ops: serde_json::Value) -> Result<Secret, SecretError> {
        let patch: json_patch::Patch = serde_json::from_value(ops)
            .map_err(|e| SecretError::Kube(kube::Error::SerdeError(e)))?;
        Ok(self
            .api
            .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_value() {
        let d = ConnectionDetails::new("key-1").with("token", "very-secret-token");
        let shown = format!("{d:?} {:?} {:?}", d.get("token"), Created::<u8>::from(1));
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(
            shown.contains("key-1") && shown.contains("token"),
            "{shown}"
        );
    }

    #[test]
    fn secret_names_must_be_dns_subdomains() {
        for ok in ["a", "w-conn", "app.credentials", "0db", &"a".repeat(253)] {
            assert_eq!(check_secret_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Upper",
            "under_score",
            "-lead",
            "trail-",
            "a..b",
            ".dot",
            "sp ace",
            "slash/name",
            &"a".repeat(254),
        ] {
            assert!(check_secret_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_invalid_secret_name_or_rotation_is_invalid_spec_naming_the_field() {
        let spec = |name: &str, rotation: Option<&str>| ConnectionSecretSpec {
            write_connection_secret_to_ref: Some(crate::api::common::SecretReference {
                name: name.into(),
            }),
            connection_secret_rotation: rotation.map(str::to_string),
        };
        assert_eq!(validate(&spec("w-conn", Some("2026-12-02"))), Ok(()));
        assert_eq!(validate(&spec("w-conn", Some(&"é".repeat(253)))), Ok(()));
        let bad = validate(&spec("Bad_Name", None)).unwrap_err();
        assert_eq!(bad.reason, "InvalidSpec");
        assert!(
            bad.message.contains("spec.writeConnectionSecretToRef.name"),
            "{}",
            bad.message
        );
        for nonce in ["a\nb".to_string(), "x".repeat(254)] {
            let bad = validate(&spec("w-conn", Some(&nonce))).unwrap_err();
            assert_eq!(bad.reason, "InvalidSpec");
            assert!(
                bad.message.contains("spec.connectionSecretRotation"),
                "{}",
                bad.message
            );
        }
    }

    #[test]
    fn the_schema_bounds_match_the_checks_in_code() {
        let schema = serde_json::to_value(schemars::schema_for!(ConnectionSecretSpec)).unwrap();
        let text = schema.to_string();
        assert!(text.contains("\"maxLength\":253"), "{text}");
        assert!(
            text.contains(&serde_json::to_string(crate::api::common::SECRET_NAME_PATTERN).unwrap()),
            "{text}"
        );
        assert!(
            text.contains(&serde_json::to_string(crate::api::common::ROTATION_PATTERN).unwrap()),
            "{text}"
        );
    }

    #[test]
    fn a_value_is_held_only_as_the_version_recorded() {
        let held = Unwritten::default();
        held.hold("uid-1", ConnectionDetails::new("v2").with("token", "x"));
        assert!(held.take("uid-1", "v1").is_none(), "another version");
        assert!(
            held.take("uid-1", "v2").is_none(),
            "taken (and dropped) above"
        );
        held.hold("uid-1", ConnectionDetails::new("v2").with("token", "x"));
        assert_eq!(
            held.take("uid-1", "v2").map(|d| d.version),
            Some("v2".into())
        );
    }

    #[test]
    fn pointer_segments_are_escaped() {
        assert_eq!(pointer("stratus.dev/owner-uid"), "stratus.dev~1owner-uid");
        assert_eq!(pointer("a~b"), "a~0b");
    }
}
