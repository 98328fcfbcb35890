//! Authentication: node request signatures (with replay protection and per-node rate limits) and
//! bearer tokens for operators and labs.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

use axum::http::{HeaderMap, Method, Uri};
use gleaner_protocol::auth::{
    HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, MAX_CLOCK_SKEW_MS,
};
use gleaner_protocol::{PublicKey, RequestAuth};

use super::AppState;
use super::error::ApiError;

/// Most remembered nonces. At the default 10 requests/s per node this covers 3,000 nodes at full
/// speed over the 10-minute window; beyond it new requests are refused (503) rather than letting
/// memory grow without bound.
pub const MAX_NONCES: usize = 2_000_000;
/// How often (ms of validator time) expired nonces are swept.
const NONCE_SWEEP_MS: i64 = 10_000;

/// `(node, nonce)` pairs seen within the clock-skew window, with when they may be forgotten.
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashMap<([u8; 32], u128), i64>,
    last_sweep_ms: i64,
}

impl NonceCache {
    /// Records a nonce; `Err(true)` if it was seen (replay), `Err(false)` if the cache is full.
    fn check_and_insert(
        &mut self,
        node: &PublicKey,
        nonce: u128,
        timestamp_ms: i64,
        now_ms: i64,
    ) -> Result<(), bool> {
        if now_ms - self.last_sweep_ms >= NONCE_SWEEP_MS || self.seen.len() >= MAX_NONCES {
            self.seen.retain(|_, forget_at| *forget_at >= now_ms);
            self.last_sweep_ms = now_ms;
        }
        let key = (*node.as_bytes(), nonce);
        if self.seen.contains_key(&key) {
            return Err(true);
        }
        if self.seen.len() >= MAX_NONCES {
            return Err(false);
        }
        // The request stays acceptable until timestamp + skew; remember it until then (and at
        // least a full window from now, in case the clock moves backwards).
        let forget_at = timestamp_ms.max(now_ms).saturating_add(MAX_CLOCK_SKEW_MS);
        self.seen.insert(key, forget_at);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Nodes known to be registered (a cache in front of the store).
#[derive(Debug, Default)]
pub struct KnownNodes(RwLock<HashSet<PublicKey>>);

impl KnownNodes {
    pub fn insert(&self, node: PublicKey) {
        if let Ok(mut s) = self.0.write() {
            s.insert(node);
        }
    }

    pub fn contains(&self, node: &PublicKey) -> bool {
        self.0.read().map(|s| s.contains(node)).unwrap_or(false)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .ok_or_else(|| {
            ApiError::unauthorized("missing_auth", format!("header {name} is required"))
        })?
        .to_str()
        .map_err(|_| ApiError::unauthorized("bad_auth", format!("header {name} is not ASCII")))
}

impl AppState {
    /// Verifies a node's signed request: headers, freshness, signature over method, path, query
    /// and body, then the per-node rate limit, then the nonce (a replay is refused). Does not
    /// require registration (see [`AppState::authenticate_registered`]).
    pub fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PublicKey, ApiError> {
        let auth = RequestAuth::from_headers(
            header(headers, HEADER_NODE)?,
            header(headers, HEADER_TIMESTAMP)?,
            header(headers, HEADER_NONCE)?,
            header(headers, HEADER_SIGNATURE)?,
        )
        .map_err(|e| ApiError::unauthorized("bad_auth", e.to_string()))?;
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or_else(|| uri.path());
        let now = self.now_ms();
        auth.verify(method.as_str(), path, body, now)
            .map_err(|e| ApiError::unauthorized(e.code(), e.to_string()))?;
        if self.inner.node_limiter.check_key(&auth.node).is_err() {
            return Err(ApiError::new(
                429,
                "rate_limited",
                "too many requests from this node; slow down",
            ));
        }
        let nonce = u128::from_str_radix(&auth.nonce, 16)
            .map_err(|e| ApiError::unauthorized("bad_auth", e.to_string()))?;
        let verdict = self
            .inner
            .nonces
            .lock()
            .map_err(|_| ApiError::internal("nonce_lock", &"poisoned"))?
            .check_and_insert(&auth.node, nonce, auth.timestamp_ms, now);
        match verdict {
            Ok(()) => Ok(auth.node),
            Err(true) => Err(ApiError::unauthorized(
                "replayed_request",
                "this nonce was already used",
            )),
            Err(false) => Err(ApiError::new(503, "server_busy", "nonce memory is full")),
        }
    }

    /// [`AppState::authenticate`], and the node must be registered.
    pub async fn authenticate_registered(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PublicKey, ApiError> {
        let node = self.authenticate(method, uri, headers, body)?;
        if self.inner.known.contains(&node) {
            return Ok(node);
        }
        let store = self.inner.store.clone();
        let registered = super::blocking(move || store.is_registered(&node)).await??;
        if !registered {
            return Err(ApiError::new(
                403,
                "unknown_node",
                format!("node {node} is not registered; POST /v1/nodes/register first"),
            ));
        }
        self.inner.known.insert(node);
        Ok(node)
    }

    /// Checks a bearer token against the admin token.
    pub fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = &self.inner.config.admin_token;
        match bearer(headers) {
            Some(t) if !token.is_empty() && ct_eq(t.as_bytes(), token.as_bytes()) => Ok(()),
            _ => Err(ApiError::unauthorized(
                "bad_token",
                "a valid admin bearer token is required",
            )),
        }
    }

    /// Checks a bearer token against the lab tokens (the admin token also works). Returns who.
    pub fn require_lab(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let c = &self.inner.config;
        if let Some(t) = bearer(headers) {
            if !c.admin_token.is_empty() && ct_eq(t.as_bytes(), c.admin_token.as_bytes()) {
                return Ok("admin".into());
            }
            for (i, lab) in c.lab_tokens.iter().enumerate() {
                if ct_eq(t.as_bytes(), lab.as_bytes()) {
                    return Ok(format!("lab:{i}"));
                }
            }
        }
        Err(ApiError::unauthorized(
            "bad_token",
            "a valid lab API key (bearer token) is required",
        ))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Constant-time comparison (for equal lengths), so token checks leak no prefix timing.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The mutex type of the nonce cache, named for `Inner`.
pub type NonceMutex = Mutex<NonceCache>;
