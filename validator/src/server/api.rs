//! Route handlers. Node endpoints verify the request signature before anything else; admin and
//! lab endpoints check bearer tokens; everything else is read-only.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{delete, get, post, put};
use gleaner_protocol::api::{
    Ack, ClaimProof, CrawlCancelled, CrawlProgress, CrawlRequestAdded, EpochDetail, LeaseRequest,
    LeaseResponse, NodeStatus, PATH_BATCHES, PATH_INFO, PATH_LEASE, PATH_ME, PATH_REGISTER,
    PATH_RELEASE, PATH_REPORT, PATH_REVOCATIONS, Problem, RegisterRequest, RegisterResponse,
    ReleaseRequest, ReportRequest, ValidatorInfo,
};
use gleaner_protocol::{
    BATCH_CONTENT_TYPE, DecodeLimits, EpochRoot, PublicKey, Receipt, Revocation, Verdict,
};
use rand::Rng;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::{AppState, blocking, peer_ip};
use crate::ingest::{self, IngestOutcome, IngestParams};
use crate::scoring::SCORING;
use crate::store::{
    CrawlRequest, Judgement, LeaseParams, LedgerEntry, Network, NetworkStats, NodePage,
    NodeResumed, NodeRow, NodeSuspended, Store, StoreError,
};

/// How long a deferred lease asks its node to wait, milliseconds: spread so that the nodes turned
/// away together do not all come back together.
const DEFER_RETRY_MS: std::ops::Range<u64> = 500..1_500;

/// Largest JSON request body: the biggest legitimate one is a report of a few hundred failures.
pub const MAX_JSON_BODY_BYTES: usize = 256 * 1024;
/// Most items in one report or release.
pub const MAX_REPORT_ITEMS: usize = 1_000;
/// Most open leases per node: a node works through a few hundred pages between submissions.
pub const MAX_OPEN_LEASES_PER_NODE: u32 = 512;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route(PATH_INFO, get(info))
        .route(PATH_REGISTER, post(register))
        .route(PATH_LEASE, post(lease))
        .route(PATH_REPORT, post(report))
        .route(PATH_RELEASE, post(release))
        .route(PATH_BATCHES, post(submit_batch))
        .route(PATH_ME, get(me))
        .route("/v1/epochs", get(list_epochs))
        .route("/v1/epochs/{epoch}", get(get_epoch))
        .route("/v1/epochs/{epoch}/proof/{claimant}", get(proof))
        .route(PATH_REVOCATIONS, get(revocations))
        .route("/v1/crawl-requests", post(lab_crawl).get(lab_crawls))
        .route("/v1/crawl-requests/{id}", delete(lab_cancel_crawl))
        .route("/v1/admin/crawl-requests", post(admin_crawl))
        .route("/v1/admin/nodes", get(admin_nodes))
        .route("/v1/admin/nodes/{node}/ledger", get(admin_ledger))
        .route("/v1/admin/nodes/{node}/checks", get(admin_checks))
        .route(
            "/v1/admin/nodes/{node}/suspension",
            put(admin_suspend).delete(admin_resume),
        )
        .route("/v1/admin/epochs/close", post(admin_close_epoch))
        .route("/v1/admin/stats", get(admin_stats))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        405,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Reads a body of at most `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            413,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// A JSON body: content type JSON (or absent), bounded, parsed.
async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, T), ApiError> {
    if let Some(ct) = content_type(headers)
        && ct != "application/json"
    {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            format!("expected application/json, got {ct}"),
        ));
    }
    let bytes = read_body(headers, body, MAX_JSON_BODY_BYTES).await?;
    let value = parse_json(&bytes)?;
    Ok((bytes, value))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("malformed", format!("invalid JSON body: {e}")))
}

#[utoipa::path(get, path = "/healthz", tag = "public",
    responses((status = 200, description = "The server and its database answer.")))]
pub(super) async fn healthz(
    State(s): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = s.store().clone();
    let epoch = blocking(move || store.open_epoch()).await??;
    Ok(Json(
        serde_json::json!({ "status": "ok", "open_epoch": epoch }),
    ))
}

#[utoipa::path(get, path = "/metrics", tag = "public",
    responses((status = 200, description = "Prometheus text exposition format.", content_type = "text/plain")))]
pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let nonces = s.inner.nonces.lock().map(|n| n.len()).unwrap_or(0);
    let bands = s.store().band_index_size();
    // A count over a small table and a sum over the nodes; off the async threads all the
    // same. A failure leaves the gauge out rather than failing the scrape.
    let (waiting, judged) = {
        let store = s.store().clone();
        tokio::task::spawn_blocking(move || {
            (
                store.tiebreak_fetches_waiting().ok(),
                store.check_judgements().ok(),
            )
        })
        .await
        .unwrap_or((None, None))
    };
    let gate = s.ingest_gate();
    let (writer_queued, writer_oldest) = s.writer_queue();
    let mut gauges = vec![
        (
            "gleaner_nonces_remembered",
            "Request nonces held for replay protection.",
            nonces as f64,
        ),
        (
            "gleaner_writer_queued",
            "Store operations (batches, leases, registrations) waiting for a group commit.",
            writer_queued as f64,
        ),
        (
            "gleaner_writer_oldest_wait_seconds",
            "How long the oldest store operation still queued has waited so far (0 when none).",
            writer_oldest.map_or(0.0, |d| d.as_secs_f64()),
        ),
        (
            "gleaner_ingest_waiting",
            "Batches waiting for an ingest worker.",
            gate.waiting() as f64,
        ),
        (
            "gleaner_ingest_busy",
            "Batches being checked (of gleaner_ingest_workers).",
            gate.busy() as f64,
        ),
        (
            "gleaner_ingest_workers",
            "Batches checked at once.",
            gate.workers() as f64,
        ),
    ];
    if let Some(n) = waiting {
        gauges.push((
            "gleaner_checks_waiting_for_validator",
            "Cross-checks waiting for the validator's own fetch (disputes, checks that found no \
             page or that no node got done, audits).",
            n as f64,
        ));
    }
    if let Some((passed, failed)) = judged {
        gauges.extend([
            (
                "gleaner_node_checks_passed",
                "Cross-checks that found a node's fetch right, summed over every node (only grows).",
                passed as f64,
            ),
            (
                "gleaner_node_checks_failed",
                "Cross-checks that found a node's fetch wrong or its page not there, summed over \
                 every node (only grows): a rise is fabrication caught.",
                failed as f64,
            ),
        ]);
    }
    if let Some(b) = bands {
        gauges.extend([
            (
                "gleaner_band_index_records",
                "Accepted records in the in-memory near-duplicate (LSH band) index.",
                b.records as f64,
            ),
            (
                "gleaner_band_index_bytes",
                "Heap memory of the near-duplicate index (estimated from its capacities).",
                b.heap_bytes as f64,
            ),
        ]);
    }
    let text = s.metrics().render(&gauges);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

pub(super) async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        super::openapi::document_json(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/info", tag = "public",
    responses((status = 200, body = ValidatorInfo)))]
pub(super) async fn info(State(s): State<AppState>) -> Result<Json<ValidatorInfo>, ApiError> {
    let store = s.store().clone();
    let epoch = blocking(move || store.open_epoch()).await??;
    let c = s.config();
    Ok(Json(ValidatorInfo {
        validator: s.identity().public(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        epoch,
        max_batch_records: c.max_batch_records,
        max_batch_bytes: c.max_body_bytes as u64,
        scoring: SCORING.to_string(),
    }))
}

#[utoipa::path(post, path = "/v1/nodes/register", tag = "nodes",
    request_body = RegisterRequest,
    responses((status = 200, body = RegisterResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    description = "Signed request (x-gleaner-node, -timestamp, -nonce, -signature). Registers or \
                   updates the node's payout address; credibility and history are kept.")]
pub(super) async fn register(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RegisterResponse>, ApiError> {
    let (bytes, req): (_, RegisterRequest) = json_body(&headers, body).await?;
    let node = s.authenticate(&method, &uri, &headers, &bytes)?;
    let now = s.now_ms();
    let row = s
        .write(move |g| g.register_node(&node, &req.payout, &req.client, now))
        .await??;
    s.inner.known.insert(node);
    tracing::info!(node = %node, payout = %row.payout, client = %row.client, "node registered");
    Ok(Json(RegisterResponse {
        node,
        payout: row.payout,
        validator: s.identity().public(),
        credibility: row.credibility,
    }))
}

#[utoipa::path(post, path = "/v1/jobs/lease", tag = "nodes",
    request_body = LeaseRequest,
    responses((status = 200, body = LeaseResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    description = "Signed. Up to `max` jobs, at most one per free registered domain. No jobs with \
                   `pending` > 0 means later: domains are resting, or the validator defers new \
                   work while batches queue for its checks; ask again after `retry_after_ms`. \
                   A node the operator suspended gets 403 `node_suspended`, its detail the reason.")]
pub(super) async fn lease(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    let (bytes, req): (_, LeaseRequest) = json_body(&headers, body).await?;
    let node = s
        .authenticate_registered(&method, &uri, &headers, &bytes)
        .await?;
    // The writer first: a deferral for it takes nothing from the bucket.
    let behind = s.writer_behind();
    let allowance = if behind {
        None
    } else {
        s.ingest_gate().lease_allowance(req.max)
    };
    let Some(allowed) = allowance else {
        // Batches are queueing for the checks or for the store's writer, or jobs are going
        // out faster than they can be checked: no new work for now (see `admission`). The
        // answer skips the store; its `pending` is the last lease's count, at least 1 so that
        // a node reads it as "later", not "done" (its next lease tells it the truth).
        let reason = if behind {
            r#"reason="writer""#
        } else {
            r#"reason="checks""#
        };
        s.metrics().add("gleaner_leases_deferred_total", reason, 1);
        let pending = s.inner.last_pending.load(Ordering::Relaxed).max(1);
        return Ok(Json(LeaseResponse {
            jobs: Vec::new(),
            retry_after_ms: rand::thread_rng().gen_range(DEFER_RETRY_MS),
            pending,
        })
        .into_response());
    };
    let c = s.config();
    let params = LeaseParams {
        ttl_ms: c.lease_ttl_ms,
        max_per_domain: c.max_leases_per_domain,
        domain_delay_ms: c.domain_delay_ms,
        max_open_per_node: MAX_OPEN_LEASES_PER_NODE,
        validator_fetches: c.validator_fetches(),
        network: peer_ip(&extensions).and_then(Network::of),
        judging: c.judging_rules(),
    };
    let now = s.now_ms();
    let res = s
        .write(move |g| g.lease(&node, allowed, now, &params))
        .await
        .and_then(|r| r.map_err(ApiError::from));
    // What the bucket gave and the lease did not use (all of it if the lease failed) goes back.
    let leased = res.as_ref().map_or(0, |r| r.jobs.len() as u32);
    s.ingest_gate().give_back(allowed.saturating_sub(leased));
    let res = res?;
    s.metrics()
        .add("gleaner_leases_issued_total", "", res.jobs.len() as u64);
    s.inner
        .last_pending
        .store(res.pending + res.jobs.len() as u64, Ordering::Relaxed);
    Ok(Json(res).into_response())
}

#[utoipa::path(post, path = "/v1/jobs/report", tag = "nodes",
    request_body = ReportRequest,
    responses((status = 200, body = Ack),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    description = "Signed. Jobs that ended without a record; unknown or foreign leases are not counted.")]
pub(super) async fn report(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Ack>, ApiError> {
    let (bytes, req): (_, ReportRequest) = json_body(&headers, body).await?;
    let node = s
        .authenticate_registered(&method, &uri, &headers, &bytes)
        .await?;
    if req.failures.len() > MAX_REPORT_ITEMS {
        return Err(ApiError::new(
            413,
            "too_many_items",
            format!("at most {MAX_REPORT_ITEMS} failures per report"),
        ));
    }
    let now = s.now_ms();
    let delay = s.config().domain_delay_ms;
    let validator_fetches = s.config().validator_fetches();
    let out = s
        .write(move |g| g.report_failures(&node, &req.failures, now, delay, validator_fetches))
        .await??;
    Ok(Json(Ack {
        accepted: out.accepted,
    }))
}

#[utoipa::path(post, path = "/v1/jobs/release", tag = "nodes",
    request_body = ReleaseRequest,
    responses((status = 200, body = Ack),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    description = "Signed. Gives leases back unfetched.")]
pub(super) async fn release(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Ack>, ApiError> {
    let (bytes, req): (_, ReleaseRequest) = json_body(&headers, body).await?;
    let node = s
        .authenticate_registered(&method, &uri, &headers, &bytes)
        .await?;
    if req.lease_ids.len() > MAX_REPORT_ITEMS {
        return Err(ApiError::new(
            413,
            "too_many_items",
            format!("at most {MAX_REPORT_ITEMS} leases per release"),
        ));
    }
    let now = s.now_ms();
    let out = s
        .write(move |g| g.release(&node, &req.lease_ids, now))
        .await??;
    Ok(Json(Ack {
        accepted: out.accepted,
    }))
}

#[utoipa::path(post, path = "/v1/batches", tag = "nodes",
    request_body(content = Vec<u8>, content_type = "application/vnd.gleaner.batch+zstd",
        description = "A zstd-compressed JSON Batch (see gleaner-protocol)."),
    responses((status = 200, body = Receipt,
            description = "The signed receipt; a resubmitted batch gets the stored receipt, byte for byte."),
        (status = "4XX", body = Problem, content_type = "application/problem+json",
            description = "The whole batch was refused and nothing changed: malformed, too large, \
                           bad signature, digest mismatch, unknown/foreign/expired lease, already \
                           submitted record, future timestamp, …")),
    description = "Signed. Verified and ingested in one transaction.")]
pub(super) async fn submit_batch(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match content_type(&headers) {
        Some(ct) if ct == BATCH_CONTENT_TYPE => {}
        other => {
            return Err(ApiError::new(
                415,
                "unsupported_media_type",
                format!(
                    "expected {BATCH_CONTENT_TYPE}, got {}",
                    other.as_deref().unwrap_or("nothing")
                ),
            ));
        }
    }
    let c = s.config().clone();
    let bytes = read_body(&headers, body, c.max_body_bytes).await?;
    let node = s
        .authenticate_registered(&method, &uri, &headers, &bytes)
        .await?;
    let started = Instant::now();
    // In line for a worker (first come first served), then checked off the async workers.
    let slot = s
        .ingest_gate()
        .admit()
        .await
        .ok_or_else(|| ApiError::new(503, "shutting_down", "ingest is closed"))?;
    let state = s.clone();
    let prepared = blocking(move || {
        let limits = DecodeLimits {
            max_compressed_bytes: c.max_body_bytes,
            max_decompressed_bytes: c.max_batch_decompressed_bytes,
            max_records: c.max_batch_records as usize,
        };
        let received = ingest::decode_received(&bytes, &limits)?;
        let batch = &received.batch;
        if batch.header.node == node
            && let Some(json) = state.store().receipt(&batch.id())?
        {
            return Ok(Err(IngestOutcome::Replayed { json }));
        }
        let now = state.now_ms();
        let records = received.batch.records.len();
        let (batch_id, prepared) = ingest::prepare_received(received, &node, now, &c.languages)?;
        // Time in the slot, not just in the checks: what bounds how fast batches get through.
        state.ingest_gate().checked(records, slot.held());
        let params = IngestParams {
            cross_check_rate: c.cross_check_rate,
            new_node_cross_check_rate: c.new_node_cross_check_rate,
            audit_rate: c.audit_rate,
            domain_delay_ms: c.domain_delay_ms,
            validator_tiebreaks: c.validator_fetches(),
            sample_key: state.identity().sampling_key(),
        };
        Ok(Ok((batch_id, prepared, now, params)))
    })
    .await?;
    // Stored by the group-commit writer; the receipt goes out only after the commit.
    let outcome = match prepared {
        Ok(Ok((batch_id, prepared, now, params))) => {
            let state = s.clone();
            s.write(move |g| {
                g.ingest(
                    batch_id,
                    &node,
                    &prepared,
                    now,
                    state.identity().secret(),
                    &params,
                )
            })
            .await?
        }
        Ok(Err(replayed)) => Ok(replayed),
        Err(e) => Err(e),
    }
    .map_err(|e: ingest::IngestError| {
        s.metrics()
            .add("gleaner_batches_total", "outcome=\"refused\"", 1);
        ApiError::from(e)
    })?;
    let m = s.metrics();
    m.observe_ingest(started.elapsed().as_secs_f64());
    match &outcome {
        IngestOutcome::Fresh { receipt, .. } => {
            m.add("gleaner_batches_total", "outcome=\"ingested\"", 1);
            m.add("gleaner_points_credited_total", "", receipt.points);
            for v in &receipt.verdicts {
                let verdict = match v.verdict {
                    Verdict::Accepted => "accepted",
                    Verdict::Duplicate => "duplicate",
                    Verdict::Rejected => "rejected",
                };
                m.add(
                    "gleaner_records_total",
                    &format!("verdict=\"{verdict}\",reason=\"{}\"", v.reason),
                    1,
                );
            }
            tracing::info!(node = %node, batch = %receipt.batch_id, records = receipt.verdicts.len(),
                points = receipt.points, "batch ingested");
        }
        IngestOutcome::Replayed { .. } => {
            m.add("gleaner_batches_total", "outcome=\"replayed\"", 1);
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        outcome.json().to_vec(),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/nodes/me", tag = "nodes",
    responses((status = 200, body = NodeStatus),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    description = "Signed (empty body). The node's standing.")]
pub(super) async fn me(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<NodeStatus>, ApiError> {
    let bytes = read_body(&headers, body, MAX_JSON_BODY_BYTES).await?;
    let node = s
        .authenticate_registered(&method, &uri, &headers, &bytes)
        .await?;
    let store = s.store().clone();
    let standing = blocking(move || store.node_standing(&node))
        .await??
        .ok_or_else(|| ApiError::new(403, "unknown_node", "node is not registered"))?;
    Ok(Json(NodeStatus {
        node,
        payout: standing.row.payout,
        credibility: standing.row.credibility,
        points_total: u64::try_from(standing.row.points_total).unwrap_or(0),
        points_pending: u64::try_from(standing.epoch_points).unwrap_or(0),
        epoch: standing.open_epoch,
        records_revoked: standing.row.records_revoked,
        checks_passed: standing.row.checks_passed,
        checks_failed: standing.row.checks_failed,
        suspended: standing.row.suspended_reason,
    }))
}

#[utoipa::path(get, path = "/v1/epochs", tag = "public",
    responses((status = 200, body = Vec<EpochRoot>, description = "Closed epochs, newest first.")))]
pub(super) async fn list_epochs(State(s): State<AppState>) -> Result<Response, ApiError> {
    let store = s.store().clone();
    let roots = blocking(move || store.epochs()).await??;
    Ok(Json(roots).into_response())
}

fn parse_epoch(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request("bad_path", format!("epoch {raw:?} is not a number")))
}

fn parse_key(raw: &str, what: &str) -> Result<PublicKey, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::bad_request("bad_path", format!("{what} {raw:?}: {e}")))
}

#[utoipa::path(get, path = "/v1/epochs/{epoch}", tag = "public",
    params(("epoch" = u64, Path, description = "Epoch number")),
    responses((status = 200, body = EpochDetail, description = "The signed root, the total and all leaves."),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_epoch(
    State(s): State<AppState>,
    Path(epoch): Path<String>,
) -> Result<Response, ApiError> {
    let epoch = parse_epoch(&epoch)?;
    let store = s.store().clone();
    let found = blocking(move || store.epoch(epoch)).await??;
    let (root, leaves) =
        found.ok_or_else(|| ApiError::not_found(format!("epoch {epoch} is not closed")))?;
    Ok(Json(EpochDetail { root, leaves }).into_response())
}

#[utoipa::path(get, path = "/v1/epochs/{epoch}/proof/{claimant}", tag = "public",
    params(("epoch" = u64, Path, description = "Epoch number"),
        ("claimant" = String, Path, description = "Payout key, base58")),
    responses((status = 200, body = ClaimProof,
            description = "Verifiable with gleaner_protocol::verify_reward_proof against epoch.root."),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn proof(
    State(s): State<AppState>,
    Path((epoch, claimant)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let epoch = parse_epoch(&epoch)?;
    let claimant = parse_key(&claimant, "claimant")?;
    let store = s.store().clone();
    let proof = blocking(move || store.epoch_proof(epoch, &claimant)).await??;
    let proof = proof.ok_or_else(|| {
        ApiError::not_found(format!("no leaf for {claimant} in closed epoch {epoch}"))
    })?;
    Ok(Json(proof).into_response())
}

async fn add_crawl(
    s: &AppState,
    requester: String,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (_, req): (_, CrawlRequest) = json_body(headers, body).await?;
    let store = s.store().clone();
    let now = s.now_ms();
    let added = blocking(move || store.add_crawl_request(&requester, &req, now)).await??;
    s.forget_crawl_progress().await;
    Ok(Json(added).into_response())
}

#[utoipa::path(post, path = "/v1/crawl-requests", tag = "labs",
    request_body = CrawlRequest,
    responses((status = 200, body = CrawlRequestAdded),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])),
    description = "Lab API key (bearer). Seeds, domains in scope and sitemaps to crawl.")]
pub(super) async fn lab_crawl(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let who = s.require_lab(&headers)?;
    add_crawl(&s, who, &headers, body).await
}

#[utoipa::path(get, path = "/v1/crawl-requests", tag = "labs",
    responses((status = 200, body = Vec<CrawlProgress>,
            description = "The caller's crawl requests (every one for the admin token), oldest \
                first, with how far each has got, as read at most 5 s ago."),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])),
    description = "Lab API key (bearer): the crawl requests made with it.")]
pub(super) async fn lab_crawls(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = s.require_lab(&headers)?;
    let all = s.crawl_progress().await?;
    let mine: Vec<&crate::store::CrawlProgress> = all
        .iter()
        .filter(|r| who == "admin" || r.requester == who)
        .collect();
    Ok(Json(mine).into_response())
}

#[utoipa::path(delete, path = "/v1/crawl-requests/{id}", tag = "labs",
    params(("id" = i64, Path, description = "The crawl request's id")),
    responses((status = 200, body = CrawlCancelled,
            description = "Its queued pages left the frontier; pages out with nodes finish."),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])),
    description = "Lab API key (bearer): cancels one of the key's own crawl requests (the admin \
        token: any). Another key's request is `not_found`.")]
pub(super) async fn lab_cancel_crawl(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = s.require_lab(&headers)?;
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "bad_path",
            format!("crawl request id {id:?} is not a number"),
        )
    })?;
    let store = s.store().clone();
    let now = s.now_ms();
    let owner = (who != "admin").then_some(who);
    let cancelled =
        blocking(move || store.cancel_crawl_request(id, owner.as_deref(), now)).await??;
    s.forget_crawl_progress().await;
    Ok(Json(cancelled).into_response())
}

#[utoipa::path(post, path = "/v1/admin/crawl-requests", tag = "admin",
    request_body = CrawlRequest,
    responses((status = 200, body = CrawlRequestAdded),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn admin_crawl(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    s.require_admin(&headers)?;
    add_crawl(&s, "operator".into(), &headers, body).await
}

#[utoipa::path(get, path = "/v1/admin/nodes", tag = "admin",
    responses((status = 200, body = Vec<NodeRow>),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn admin_nodes(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.require_admin(&headers)?;
    let store = s.store().clone();
    let nodes = blocking(move || store.nodes()).await??;
    Ok(Json(nodes).into_response())
}

/// `PUT /v1/admin/nodes/{node}/suspension`: why the node is suspended.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    /// For the node's owner, who reads it in their node's standing: at most 200 bytes, no
    /// control characters.
    pub reason: String,
}

#[utoipa::path(put, path = "/v1/admin/nodes/{node}/suspension", tag = "admin",
    params(("node" = String, Path, description = "Node key, base58")),
    request_body = SuspendRequest,
    responses((status = 200, body = NodeSuspended,
            description = "Suspended: no lease and no batch taken until resumed; its open leases are given back."),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn admin_suspend(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(node): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    s.require_admin(&headers)?;
    let key = parse_key(&node, "node")?;
    let (_, req): (_, SuspendRequest) = json_body(&headers, body).await?;
    let now = s.now_ms();
    let done = s
        .write(move |g| g.suspend_node(&key, &req.reason, now))
        .await??;
    Ok(Json(done).into_response())
}

#[utoipa::path(delete, path = "/v1/admin/nodes/{node}/suspension", tag = "admin",
    params(("node" = String, Path, description = "Node key, base58")),
    responses((status = 200, body = NodeResumed),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn admin_resume(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(node): Path<String>,
) -> Result<Response, ApiError> {
    s.require_admin(&headers)?;
    let key = parse_key(&node, "node")?;
    let done = s.write(move |g| g.resume_node(&key)).await??;
    Ok(Json(done).into_response())
}

#[utoipa::path(get, path = "/v1/admin/nodes/{node}/ledger", tag = "admin",
    params(("node" = String, Path, description = "Node key, base58"),
        ("after" = Option<i64>, Query, description = "Only entries whose `seq` is above this (default 0: from the first)"),
        ("limit" = Option<u32>, Query, description = "Most entries in the page, 1 to 1000 (default 500)")),
    responses((status = 200, body = Vec<LedgerEntry>,
            description = "One page of the node's ledger, oldest first.",
            headers(("link" = String, description = "`<…?after=SEQ&limit=N>; rel=\"next\"` while entries remain after this page (RFC 8288)"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn admin_ledger(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    node_page(
        &s,
        &headers,
        &node,
        query,
        "ledger",
        Store::ledger_page,
        |e| e.seq,
    )
    .await
}

#[utoipa::path(get, path = "/v1/admin/nodes/{node}/checks", tag = "admin",
    params(("node" = String, Path, description = "Node key, base58"),
        ("after" = Option<i64>, Query, description = "Only rows whose `seq` is above this (default 0: from the first)"),
        ("limit" = Option<u32>, Query, description = "Most rows in the page, 1 to 1000 (default 500)")),
    responses((status = 200, body = Vec<Judgement>,
            description = "One page of the node's check history, oldest first: each cross-check's verdict on the node, its part in the check, and its credibility before and after.",
            headers(("link" = String, description = "`<…?after=SEQ&limit=N>; rel=\"next\"` while rows remain after this page (RFC 8288)"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn admin_checks(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    node_page(
        &s,
        &headers,
        &node,
        query,
        "checks",
        Store::judgements_page,
        |j| j.seq,
    )
    .await
}

/// One page of a node's rows at `/v1/admin/nodes/{node}/{what}` for the admin token: `read`
/// gives the rows whose `seq` is above the query's `after`, oldest first.
async fn node_page<T: serde::Serialize + Send + 'static>(
    s: &AppState,
    headers: &HeaderMap,
    node: &str,
    query: Option<String>,
    what: &str,
    read: NodePage<T>,
    seq: fn(&T) -> i64,
) -> Result<Response, ApiError> {
    s.require_admin(headers)?;
    let key = parse_key(node, "node")?;
    let page = SeqPage::parse(query.as_deref())?;
    let store = s.store().clone();
    // One row past the page says whether there is a next one.
    let rows = blocking(move || read(&store, &key, page.after, page.limit + 1)).await??;
    Ok(page.response(rows, seq, &format!("/v1/admin/nodes/{node}/{what}")))
}

#[utoipa::path(get, path = "/v1/revocations", tag = "public",
    params(("node" = Option<String>, Query, description = "Only this node's records (base58 key)"),
        ("after" = Option<i64>, Query, description = "Only revocations whose `seq` is above this (default 0: from the first)"),
        ("limit" = Option<u32>, Query, description = "Most revocations in the page, 1 to 1000 (default 500)")),
    responses((status = 200, body = Vec<Revocation>,
            description = "Records revoked after they were accepted, oldest first: rows a dataset exported before them should drop.",
            headers(("link" = String, description = "`<…?after=SEQ&limit=N>; rel=\"next\"` while revocations remain after this page (RFC 8288)"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn revocations(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (node, page) = revocations_query(query.as_deref())?;
    let found = blocking(move || {
        let entries = s
            .store()
            .revocations(page.after, page.limit + 1, node.as_ref())?;
        Ok::<_, StoreError>(s.revocation_signer().sign(entries))
    })
    .await??;
    let path = match node {
        Some(k) => format!("{PATH_REVOCATIONS}?node={k}"),
        None => PATH_REVOCATIONS.to_string(),
    };
    Ok(page.response(found, |r| i64::try_from(r.seq).unwrap_or(i64::MAX), &path))
}

/// The query of `GET /v1/revocations`: `node` (at most once) narrows the log to one node's
/// records; the rest is a [`SeqPage`].
fn revocations_query(query: Option<&str>) -> Result<(Option<PublicKey>, SeqPage), ApiError> {
    let mut node = None;
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "node" {
            rest.append_pair(&name, &value);
        } else {
            let key = value
                .parse()
                .map_err(|e| ApiError::bad_request("bad_query", format!("node {value:?}: {e}")))?;
            if node.replace(key).is_none() {
                continue;
            }
            return Err(ApiError::bad_request(
                "bad_query",
                "query parameter \"node\" given twice",
            ));
        }
    }
    Ok((node, SeqPage::parse(Some(&rest.finish()))?))
}

/// Entries in a page (ledger, revocations) when the query does not say.
pub const PAGE_DEFAULT: usize = 500;
/// Most entries a page may ask for.
pub const PAGE_MAX: usize = 1_000;

/// The query of a page of a log read by `seq` (a node's ledger, the revocations): `after` (a
/// `seq`, default 0) and `limit` (1 to [`PAGE_MAX`], default [`PAGE_DEFAULT`]), each at most
/// once, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeqPage {
    after: i64,
    limit: usize,
}

impl SeqPage {
    /// The page's JSON from `entries`, read as up to `limit + 1` (one entry past the page says
    /// whether there is a next one), with a `Link` to the next page at `path` when there is.
    fn response<T: serde::Serialize>(
        &self,
        mut entries: Vec<T>,
        seq: impl Fn(&T) -> i64,
        path: &str,
    ) -> Response {
        let more = entries.len() > self.limit;
        entries.truncate(self.limit);
        let mut response = Json(&entries).into_response();
        if let Some(last) = entries.last().filter(|_| more) {
            let join = if path.contains('?') { '&' } else { '?' };
            let next = format!(
                "<{path}{join}after={}&limit={}>; rel=\"next\"",
                seq(last),
                self.limit
            );
            if let Ok(v) = HeaderValue::from_str(&next) {
                response.headers_mut().insert(header::LINK, v);
            }
        }
        response
    }

    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let bad = |detail: String| ApiError::bad_request("bad_query", detail);
        let mut page = SeqPage {
            after: 0,
            limit: PAGE_DEFAULT,
        };
        let (mut after_seen, mut limit_seen) = (false, false);
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let seen = match name.as_ref() {
                "after" => {
                    page.after = value.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                        bad(format!(
                            "after must be a seq (an integer from 0), not {value:?}"
                        ))
                    })?;
                    &mut after_seen
                }
                "limit" => {
                    page.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=PAGE_MAX).contains(n))
                        .ok_or_else(|| {
                            bad(format!(
                                "limit must be an integer from 1 to {PAGE_MAX}, not {value:?}"
                            ))
                        })?;
                    &mut limit_seen
                }
                other => {
                    return Err(bad(format!(
                        "unknown query parameter {other:?}: this endpoint takes after and limit"
                    )));
                }
            };
            if std::mem::replace(seen, true) {
                return Err(bad(format!("query parameter {name:?} given twice")));
            }
        }
        Ok(page)
    }
}

#[utoipa::path(post, path = "/v1/admin/epochs/close", tag = "admin",
    responses((status = 200, body = EpochRoot),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn admin_close_epoch(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.require_admin(&headers)?;
    let root = s.close_epoch().await?;
    Ok(Json(root).into_response())
}

#[utoipa::path(get, path = "/v1/admin/stats", tag = "admin",
    responses((status = 200, body = NetworkStats),
        (status = "4XX", body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn admin_stats(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.require_admin(&headers)?;
    let store = s.store().clone();
    let now = s.now_ms();
    let stats = blocking(move || store.network_stats(now)).await??;
    Ok(Json(stats).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of one node's revocations keeps the node in the link to the next page, after the
    /// query it already has; the ledger's plain path gets a query of its own.
    #[test]
    fn the_next_page_link_keeps_the_query_it_was_asked_with() {
        let key = gleaner_protocol::SecretKey::from_bytes(&[5; 32]).public();
        let (node, page) = revocations_query(Some(&format!("limit=2&node={key}&after=7"))).unwrap();
        assert_eq!(node, Some(key));
        assert_eq!((page.after, page.limit), (7, 2));
        let link = |path: &str| {
            let r = page.response(vec![8i64, 9, 10], |s| *s, path);
            r.headers()
                .get(header::LINK)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            link(&format!("{PATH_REVOCATIONS}?node={key}")).unwrap(),
            format!("<{PATH_REVOCATIONS}?node={key}&after=9&limit=2>; rel=\"next\"")
        );
        assert_eq!(
            link("/v1/admin/nodes/N/ledger").unwrap(),
            "</v1/admin/nodes/N/ledger?after=9&limit=2>; rel=\"next\""
        );
        // Two entries fill the page and none is past it: no next page.
        assert_eq!(
            page.response(vec![8i64, 9], |s| *s, "/x")
                .headers()
                .get(header::LINK),
            None
        );
        for bad in [
            "node=nobody",
            &format!("node={key}&node={key}"),
            "node=x&limit=0",
        ] {
            let e = revocations_query(Some(bad)).unwrap_err();
            assert_eq!(e.code, "bad_query", "{bad}");
        }
    }
}
