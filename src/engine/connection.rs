//! Connection Secrets: the credentials a resource produces (an API key, a token), written to a
//! Secret the object owns. The engine can create, patch and delete Secrets but never read them:
//! ownership is proven by a label test (JSON patch `test`) or by the Secret's UID as a
//! precondition, so a Secret the operator did not create is never overwritten.
//!
//! Values are held as [`SecretBytes`], whose `Debug` prints only a length: never a value in a
//! log, an event, a status or a metric.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

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
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // It exists: ours only if it carries our UID (a patch of nothing but a test).
                let patch: json_patch::Patch =
                    serde_json::from_value(json!([self.test_owner()]))
                        .map_err(|e| SecretError::Kube(kube::Error::SerdeError(e)))?;
                Ok(self
                    .api
                    .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
                    .await?)
            }
            Err(e) => Err(e.into()),
        }
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
    fn pointer_segments_are_escaped() {
        assert_eq!(pointer("stratus.dev/owner-uid"), "stratus.dev~1owner-uid");
        assert_eq!(pointer("a~b"), "a~0b");
    }
}
