//! The `/api/v1` handlers and the router.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch, post};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Sim;
use super::catalog;
use super::cloud::API_PREFIX;
use super::reply::{SimError, success};
use super::state::{Action, IdemCheck, State as SimState};
use super::validate::{self, Kind};
use super::wire::{ComputeCreate, DomainCreate, Health, PageMeta, RecordWrite, UpsizeRequest};

type Answer = Result<Response, SimError>;

/// The `/api/v1` routes; the framework adds the gate, the fallbacks and `/_sim`.
pub fn router() -> Router<Arc<Sim>> {
    let p = |s: &str| format!("{API_PREFIX}{s}");
    Router::new()
        .route(&p("/health"), get(health))
        .route(&p("/computes"), get(list_computes).post(create_compute))
        .route(&p("/computes/specifications"), get(list_specifications))
        .route(
            &p("/computes/{id}"),
            get(get_compute).delete(delete_compute),
        )
        .route(&p("/computes/{id}/start"), post(start_compute))
        .route(&p("/computes/{id}/stop"), post(stop_compute))
        .route(&p("/computes/{id}/reboot"), post(reboot_compute))
        .route(&p("/computes/{id}/upsize"), patch(upsize_compute))
        .route(&p("/images"), get(list_images))
        .route(&p("/regions"), get(list_regions))
        .route(&p("/domains"), get(list_domains).post(create_domain))
        .route(&p("/domains/{id}"), get(get_domain).delete(delete_domain))
        .route(
            &p("/domains/{id}/records"),
            get(list_records).post(create_record),
        )
        .route(
            &p("/domains/{id}/records/{record_id}"),
            get(get_record).put(put_record).delete(delete_record),
        )
}

/// Path parameters with rejections in the error envelope.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = SimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, SimError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| SimError::bad_request(e.body_text()))
    }
}

// ---- helpers ----------------------------------------------------------------------------------

/// Parses a request body as JSON (400 MALFORMED_JSON otherwise).
pub fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, SimError> {
    crate::sim::reply::json_body(body).map_err(SimError::from)
}

fn decode<T: DeserializeOwned>(body: Value) -> Result<T, SimError> {
    serde_json::from_value(validate::strip_nulls(body))
        .map_err(|e| SimError::validation(e.to_string()))
}

/// Page and limit of a list request.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: u64,
    pub limit: u64,
}

impl Paging {
    pub fn parse(query: Option<&str>) -> Result<Self, SimError> {
        let mut p = Paging { page: 1, limit: 20 };
        for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "page" => {
                    p.page = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        SimError::validation(format!("page must be an integer ≥ 1; got {v:?}"))
                    })?
                }
                "limit" => {
                    p.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| {
                            SimError::validation(format!(
                                "limit must be an integer from 1 to 100; got {v:?}"
                            ))
                        })?
                }
                _ => {}
            }
        }
        Ok(p)
    }

    pub fn offset(&self) -> usize {
        usize::try_from((self.page - 1).saturating_mul(self.limit)).unwrap_or(usize::MAX)
    }

    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    pub fn meta(&self, total: u64) -> PageMeta {
        PageMeta {
            total,
            page: self.page,
            limit: self.limit,
        }
    }

    fn slice<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.offset())
            .take(self.limit())
            .cloned()
            .collect()
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The idempotent-create frame: checks the key, parses the body, and under the state lock
/// replays a remembered answer, refuses a reused key with another body, or runs `create` and
/// remembers its (successful) answer.
fn idempotent_create(
    sim: &Sim,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    route: &str,
    message: &'static str,
    status: StatusCode,
    create: impl FnOnce(&mut SimState, Value, Timestamp) -> Result<Value, SimError>,
) -> Answer {
    let key = validate::idempotency_key(header_str(headers, "idempotency-key"))
        .map_err(SimError::idempotency)?;
    let body = json_body(body)?;
    let hash = {
        let mut h = Sha256::new();
        h.update(route.as_bytes());
        h.update(b"\n");
        h.update(validate::canonical_json(&body).as_bytes());
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let now = Timestamp::now();
    let mut st = sim.state();
    match st.idem_check(&key, &hash, now) {
        IdemCheck::Replay(e) => {
            let mut resp = success(StatusCode::ACCEPTED, &e.message, e.data, None);
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(resp);
        }
        IdemCheck::Mismatch => {
            return Err(SimError::unprocessable(format!(
                "Idempotency-Key {key} was already used with a different request; use a new key \
                 for a different request"
            )));
        }
        IdemCheck::Fresh => {}
    }
    let data = create(&mut st, body, now)?;
    st.idem_remember(key, hash, message, data.clone(), now);
    drop(st);
    sim.mutated();
    Ok(success(status, message, data, None))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, SimError> {
    serde_json::to_value(v).map_err(|e| SimError::internal(e.to_string()))
}

// ---- system and catalog -----------------------------------------------------------------------

async fn health() -> Response {
    success(
        StatusCode::OK,
        "Service is healthy",
        Health {
            service: "public-api".into(),
            status: "ok".into(),
        },
        None,
    )
}

async fn list_specifications(RawQuery(q): RawQuery) -> Answer {
    let paging = Paging::parse(q.as_deref())?;
    let specs = catalog::specifications();
    Ok(success(
        StatusCode::OK,
        "Specifications retrieved successfully",
        paging.slice(&specs),
        Some(paging.meta(specs.len() as u64)),
    ))
}

async fn list_images() -> Response {
    success(
        StatusCode::OK,
        "Images retrieved successfully",
        catalog::images(),
        None,
    )
}

async fn list_regions() -> Response {
    success(
        StatusCode::OK,
        "Regions retrieved successfully",
        catalog::regions(),
        None,
    )
}

// ---- computes ---------------------------------------------------------------------------------

async fn list_computes(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Answer {
    let paging = Paging::parse(q.as_deref())?;
    let (page, total) =
        sim.state()
            .list_computes(Timestamp::now(), paging.offset(), paging.limit());
    Ok(success(
        StatusCode::OK,
        "Computes retrieved successfully",
        page,
        Some(paging.meta(total)),
    ))
}

fn decode_compute_create(body: Value) -> Result<ComputeCreate, SimError> {
    if body.get("specification").is_none_or(Value::is_null) && body.get("specificationId").is_some()
    {
        return Err(SimError::validation(format!(
            "specification is required: a slug such as S-1C-1G (one of {}); specificationId is not accepted",
            catalog::spec_slugs().join(", ")
        )));
    }
    validate::check_fields(
        &body,
        &[
            ("hostName", Kind::Str, true),
            ("image", Kind::Str, true),
            ("region", Kind::Str, true),
            ("specification", Kind::Str, true),
            ("publicKeys", Kind::StrList, true),
            ("withPublicIp", Kind::Bool, false),
            ("tags", Kind::StrList, false),
        ],
    )
    .map_err(SimError::validation)?;
    let req: ComputeCreate = decode(body)?;
    if !validate::is_hostname_label(&req.host_name) {
        return Err(SimError::validation(format!(
            "hostName must be a valid hostname: 1 to 63 letters, digits or hyphens, not starting or \
             ending with a hyphen; got {:?}",
            req.host_name
        )));
    }
    if !catalog::has_image(&req.image) {
        return Err(SimError::validation(format!(
            "image must be one of {}; got {:?}",
            catalog::image_slugs().join(", "),
            req.image
        )));
    }
    if !catalog::has_region(&req.region) {
        return Err(SimError::validation(format!(
            "region must be one of {}; got {:?}",
            catalog::region_slugs().join(", "),
            req.region
        )));
    }
    if catalog::spec_rank(&req.specification).is_none() {
        return Err(SimError::validation(format!(
            "specification must be one of {}; got {:?}",
            catalog::spec_slugs().join(", "),
            req.specification
        )));
    }
    if req.public_keys.is_empty() || req.public_keys.iter().any(|k| k.trim().is_empty()) {
        return Err(SimError::validation(
            "publicKeys must hold at least one SSH public key, and no empty ones",
        ));
    }
    Ok(req)
}

async fn create_compute(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    idempotent_create(
        &sim,
        &headers,
        body,
        "POST /computes",
        "Compute creation initiated",
        StatusCode::ACCEPTED,
        |st, body, now| {
            let req = decode_compute_create(body)?;
            to_value(&st.create_compute(req, now))
        },
    )
}

async fn get_compute(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    let c = sim.state().compute_mut(&id, Timestamp::now())?.view();
    Ok(success(
        StatusCode::OK,
        "Compute retrieved successfully",
        c,
        None,
    ))
}

async fn delete_compute(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    let c = sim.state().delete_compute(&id, Timestamp::now())?;
    sim.mutated();
    Ok(success(
        StatusCode::ACCEPTED,
        "Compute deletion initiated",
        c,
        None,
    ))
}

fn action(sim: &Sim, id: &str, a: Action, message: &str) -> Answer {
    let c = sim.state().compute_action(id, a, Timestamp::now())?;
    sim.mutated();
    Ok(success(StatusCode::ACCEPTED, message, c, None))
}

async fn start_compute(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    action(&sim, &id, Action::Start, "Compute start initiated")
}

async fn stop_compute(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    action(&sim, &id, Action::Stop, "Compute stop initiated")
}

async fn reboot_compute(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    action(&sim, &id, Action::Reboot, "Compute reboot initiated")
}

async fn upsize_compute(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let now = Timestamp::now();
    // An unknown compute is a 404 whatever the body says.
    sim.state().compute_mut(&id, now)?;
    let body = json_body(body)?;
    if body.get("newSpecification").is_none_or(Value::is_null)
        && body.get("newSpecificationId").is_some()
    {
        return Err(SimError::validation(format!(
            "newSpecification is required: a slug such as S-2C-4G (one of {}); newSpecificationId is not accepted",
            catalog::spec_slugs().join(", ")
        )));
    }
    validate::check_fields(&body, &[("newSpecification", Kind::Str, true)])
        .map_err(SimError::validation)?;
    let req: UpsizeRequest = decode(body)?;
    let c = sim.state().upsize(&id, &req.new_specification, now)?;
    sim.mutated();
    Ok(success(
        StatusCode::ACCEPTED,
        "Compute upsize initiated",
        c,
        None,
    ))
}

// ---- domains ----------------------------------------------------------------------------------

async fn list_domains(State(sim): State<Arc<Sim>>, RawQuery(q): RawQuery) -> Answer {
    let paging = Paging::parse(q.as_deref())?;
    let now = Timestamp::now();
    let st = sim.state();
    let page: Vec<_> = st
        .domains
        .iter()
        .skip(paging.offset())
        .take(paging.limit())
        .map(|d| d.view(now))
        .collect();
    let total = st.domains.len() as u64;
    drop(st);
    Ok(success(
        StatusCode::OK,
        "Domains retrieved successfully",
        page,
        Some(paging.meta(total)),
    ))
}

async fn create_domain(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    idempotent_create(
        &sim,
        &headers,
        body,
        "POST /domains",
        "Domain registration initiated",
        StatusCode::ACCEPTED,
        |st, body, now| {
            validate::check_fields(&body, &[("domain", Kind::Str, true)])
                .map_err(SimError::validation)?;
            let req: DomainCreate = decode(body)?;
            to_value(&st.create_domain(&req.domain, now)?)
        },
    )
}

async fn get_domain(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    let d = sim.state().domain(&id)?.view(Timestamp::now());
    Ok(success(
        StatusCode::OK,
        "Domain retrieved successfully",
        d,
        None,
    ))
}

async fn delete_domain(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    let d = sim.state().delete_domain(&id, Timestamp::now())?;
    sim.mutated();
    Ok(success(
        StatusCode::ACCEPTED,
        "Domain and its records deleted",
        d,
        None,
    ))
}

// ---- records ----------------------------------------------------------------------------------

fn decode_record(body: Value) -> Result<RecordWrite, SimError> {
    validate::check_fields(
        &body,
        &[
            ("name", Kind::Str, true),
            ("type", Kind::Str, true),
            ("value", Kind::Str, true),
            ("ttl", Kind::U32, false),
            ("priority", Kind::U16, false),
            ("weight", Kind::U16, false),
            ("port", Kind::U16, false),
            ("comment", Kind::Str, false),
        ],
    )
    .map_err(SimError::validation)?;
    let t = body.get("type").and_then(Value::as_str).unwrap_or_default();
    if !["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS"].contains(&t) {
        return Err(SimError::validation(format!(
            "type must be one of {}; got {t:?}",
            validate::RECORD_TYPES
        )));
    }
    decode(body)
}

async fn list_records(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    let paging = Paging::parse(q.as_deref())?;
    let st = sim.state();
    let d = st.domain(&id)?;
    let page = paging.slice(&d.records);
    let total = d.records.len() as u64;
    drop(st);
    Ok(success(
        StatusCode::OK,
        "Records retrieved successfully",
        page,
        Some(paging.meta(total)),
    ))
}

async fn create_record(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let route = format!("POST /domains/{id}/records");
    idempotent_create(
        &sim,
        &headers,
        body,
        &route,
        "Record created",
        StatusCode::CREATED,
        |st, body, now| {
            st.domain(&id)?;
            let w = decode_record(body)?;
            to_value(&st.create_record(&id, w, now)?)
        },
    )
}

async fn get_record(
    State(sim): State<Arc<Sim>>,
    P((id, record_id)): P<(String, String)>,
) -> Answer {
    let r = sim.state().record(&id, &record_id)?;
    Ok(success(
        StatusCode::OK,
        "Record retrieved successfully",
        r,
        None,
    ))
}

async fn put_record(
    State(sim): State<Arc<Sim>>,
    P((id, record_id)): P<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let now = Timestamp::now();
    sim.state().record(&id, &record_id)?;
    let w = decode_record(json_body(body)?)?;
    let r = sim.state().update_record(&id, &record_id, w, now)?;
    sim.mutated();
    Ok(success(StatusCode::OK, "Record updated", r, None))
}

async fn delete_record(
    State(sim): State<Arc<Sim>>,
    P((id, record_id)): P<(String, String)>,
) -> Answer {
    let r = sim.state().delete_record(&id, &record_id)?;
    sim.mutated();
    Ok(success(StatusCode::OK, "Record deleted", r, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_rules() {
        let p = Paging::parse(None).unwrap();
        assert_eq!((p.page, p.limit, p.offset()), (1, 20, 0));
        let p = Paging::parse(Some("page=3&limit=100&x=y")).unwrap();
        assert_eq!((p.page, p.limit, p.offset()), (3, 100, 200));
        for bad in [
            "page=0",
            "limit=0",
            "limit=101",
            "page=abc",
            "limit=",
            "page=-1",
        ] {
            let e = Paging::parse(Some(bad)).unwrap_err();
            assert_eq!(e.code, "VALIDATION_ERROR", "{bad}");
        }
        let p = Paging::parse(Some(&format!("page={}&limit=100", u64::MAX))).unwrap();
        assert_eq!(p.offset(), usize::MAX, "saturates instead of overflowing");
    }
}
