//! The web console: one static page (HTML, CSS, JS built into the binary) and two JSON endpoints
//! it reads: `GET /console/api/overview` (network statistics, epochs, the newest revocations) and
//! `GET /console/api/datasets` (the catalog with sample rows).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use gleaner_dataset::{SampleRow, list_datasets, sample_rows};
use gleaner_protocol::api::Revocation;
use serde::Serialize;

use crate::dataset::DatasetInfo;
use crate::server::{ApiError, AppState};
use crate::store::NetworkStats;

const INDEX_HTML: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const STYLE_CSS: &str = include_str!("../../console/style.css");

/// Newest revocations listed.
const LATEST_REVOCATIONS: usize = 10;
/// Sample rows shown per dataset.
const SAMPLE_ROWS: usize = 5;
/// Datasets shown in the catalog (newest names last; the rest are reachable via `/v1/datasets`).
const MAX_CATALOG: usize = 20;

/// The console routes, merged into the server's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/style.css",
            get(|| async { asset(STYLE_CSS, "text/css; charset=utf-8") }),
        )
        .route("/console/api/overview", get(overview))
        .route("/console/api/datasets", get(datasets))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:"),
    );
    res
}

/// `GET /console/api/overview`.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub validator: String,
    pub version: &'static str,
    pub stats: NetworkStats,
    /// The newest revocations, newest first (the whole log: `GET /v1/revocations`).
    pub revocations: Vec<Revocation>,
}

async fn overview(State(state): State<AppState>) -> Result<axum::Json<Overview>, ApiError> {
    let now = state.now_ms();
    let s = state.clone();
    let (stats, revocations) = crate::server::blocking(move || {
        let store = s.store();
        let latest = store.latest_revocations(LATEST_REVOCATIONS)?;
        Ok::<_, crate::store::StoreError>((
            store.network_stats(now)?,
            s.revocation_signer().sign(latest),
        ))
    })
    .await?
    .map_err(|e| ApiError::internal(e.code(), &e))?;
    Ok(axum::Json(Overview {
        validator: state.identity().public().to_string(),
        version: env!("CARGO_PKG_VERSION"),
        stats,
        revocations,
    }))
}

/// One catalog entry: the dataset and a few of its rows.
#[derive(Debug, Serialize)]
pub struct CatalogEntry {
    #[serde(flatten)]
    pub info: DatasetInfo,
    pub sample: Vec<SampleRow>,
}

async fn datasets(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<CatalogEntry>>, ApiError> {
    let root = state.config().datasets_dir.clone();
    let entries = crate::server::blocking(move || {
        let manifests = list_datasets(&root)?;
        let skip = manifests.len().saturating_sub(MAX_CATALOG);
        Ok::<_, gleaner_dataset::DatasetError>(
            manifests
                .into_iter()
                .skip(skip)
                .map(|m| {
                    let sample =
                        sample_rows(&root.join(&m.name), &m, SAMPLE_ROWS).unwrap_or_else(|e| {
                            tracing::warn!(dataset = %m.name, cause = %e, "no sample rows");
                            Vec::new()
                        });
                    CatalogEntry {
                        info: DatasetInfo::of(&m),
                        sample,
                    }
                })
                .collect::<Vec<_>>(),
        )
    })
    .await?
    .map_err(|e| ApiError::internal(e.code(), &e))?;
    Ok(axum::Json(entries))
}
