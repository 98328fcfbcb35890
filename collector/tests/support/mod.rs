//! Test fixtures shared by the integration tests and the node benchmark: a fixture web site (raw
//! HTTP/1.1 on 127.0.0.1:0, so bodies can drip, stall or explode), a listener that only counts
//! connections, a DNS resolver mapping test names, and a stub validator (axum) that signs receipts
//! with a test key and counts credits per record id.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gleaner_collector::policy::Resolver;
use gleaner_protocol::api::*;
use gleaner_protocol::{
    Batch, DecodeLimits, Digest, Receipt, RecordVerdict, RequestAuth, SecretKey, Verdict,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// Fixture site

/// What the site's robots.txt does.
#[derive(Debug, Clone)]
pub enum RobotsMode {
    /// 200 with this body.
    Body(String),
    /// 404.
    NotFound,
    /// 500.
    ServerError,
    /// Closes the connection without answering.
    Hangup,
    /// 200 with ~1 MiB of rules, ending in `Disallow: /private`.
    Huge,
}

/// A fixture web site. Dropping it does not stop it (tests are short-lived).
#[derive(Clone)]
pub struct Site {
    pub addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Site {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
    pub fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

/// A realistic article page of about `paragraphs` × 400 bytes.
pub fn article(n: usize, paragraphs: usize) -> String {
    let mut s = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Article {n}</title></head><body>\
         <nav><a href=\"/\">Home</a> <a href=\"/about\">About</a></nav><main><article><h1>Article {n}</h1>"
    );
    for p in 0..paragraphs {
        s.push_str(&format!(
            "<p>Paragraph {p} of article {n}. The river valley was quiet in the early morning, and the \
             farmers walked slowly to their fields while the mist lifted from the water. Later that day \
             the market filled with traders selling bread, cheese, apples and warm woollen clothes. \
             Everyone agreed that the harvest had been better than in any year they could remember.</p>"
        ));
    }
    s.push_str(&format!(
        "<p>See also <a href=\"/page/{}\">the next article</a>.</p></article></main>\
         <footer>Copyright fixture site</footer></body></html>",
        n + 1
    ));
    s
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Starts a fixture site with the given robots.txt behaviour.
pub async fn spawn_site(robots: RobotsMode) -> Site {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let site = Site {
        addr,
        hits: Arc::default(),
    };
    let s = site.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let s = s.clone();
            let robots = robots.clone();
            tokio::spawn(async move {
                let _ = serve(sock, s, robots).await;
            });
        }
    });
    site
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<(String, String)>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 64 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let line = text.lines().next().unwrap_or("").to_string();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("/").to_string();
    Ok(Some((method, path)))
}

async fn respond(
    sock: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    sock.flush().await
}

const HTML: &str = "text/html; charset=utf-8";

async fn serve(mut sock: TcpStream, site: Site, robots: RobotsMode) -> std::io::Result<()> {
    let Some((method, path)) = read_request(&mut sock).await? else {
        return Ok(());
    };
    *site.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    if method != "GET" {
        return respond(&mut sock, "405 Method Not Allowed", &[], b"").await;
    }
    let html = |b: String| (vec![("Content-Type", HTML.to_string())], b.into_bytes());
    let (route, query) = path.split_once('?').unwrap_or((&path, ""));
    match route {
        "/robots.txt" => match &robots {
            RobotsMode::Body(b) => {
                respond(
                    &mut sock,
                    "200 OK",
                    &[("Content-Type", "text/plain".into())],
                    b.as_bytes(),
                )
                .await
            }
            RobotsMode::NotFound => respond(&mut sock, "404 Not Found", &[], b"nope").await,
            RobotsMode::ServerError => {
                respond(&mut sock, "500 Internal Server Error", &[], b"").await
            }
            RobotsMode::Hangup => Ok(()),
            RobotsMode::Huge => {
                let mut b = String::from("User-agent: GleanerBot\n");
                let mut i = 0;
                while b.len() < 400 * 1024 {
                    b.push_str(&format!("Disallow: /junk/{i}/\n"));
                    i += 1;
                }
                b.push_str("Disallow: /private\n");
                while b.len() < 1024 * 1024 {
                    b.push_str(&format!("Disallow: /more/{i}/\n"));
                    i += 1;
                }
                respond(
                    &mut sock,
                    "200 OK",
                    &[("Content-Type", "text/plain".into())],
                    b.as_bytes(),
                )
                .await
            }
        },
        r if r.starts_with("/page/") || r.starts_with("/private/") || r == "/" => {
            let n: usize = r
                .rsplit('/')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let (h, b) = html(article(n, 8));
            respond(&mut sock, "200 OK", &h, &b).await
        }
        r if r.starts_with("/big") => {
            // ~170 KB realistic page.
            let n: usize = r
                .rsplit('/')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(1);
            let (h, b) = html(article(n, 420));
            respond(&mut sock, "200 OK", &h, &b).await
        }
        r if r.starts_with("/redirect/") => {
            let n: usize = r
                .rsplit('/')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let to = if n == 0 {
                "/page/0".to_string()
            } else {
                format!("/redirect/{}", n - 1)
            };
            respond(&mut sock, "302 Found", &[("Location", to)], b"").await
        }
        "/loop-a" => {
            respond(
                &mut sock,
                "301 Moved",
                &[("Location", "/loop-b".into())],
                b"",
            )
            .await
        }
        "/loop-b" => {
            respond(
                &mut sock,
                "301 Moved",
                &[("Location", "/loop-a".into())],
                b"",
            )
            .await
        }
        "/redirect-to" => {
            let to = query.strip_prefix("to=").unwrap_or("/");
            let to = to.replace("%3A", ":").replace("%2F", "/");
            respond(&mut sock, "302 Found", &[("Location", to)], b"").await
        }
        "/gzip" => {
            let body = gzip(article(2, 20).as_bytes());
            respond(
                &mut sock,
                "200 OK",
                &[
                    ("Content-Type", HTML.into()),
                    ("Content-Encoding", "gzip".into()),
                ],
                &body,
            )
            .await
        }
        "/deflate" => {
            let body = zlib(article(3, 20).as_bytes());
            respond(
                &mut sock,
                "200 OK",
                &[
                    ("Content-Type", HTML.into()),
                    ("Content-Encoding", "deflate".into()),
                ],
                &body,
            )
            .await
        }
        "/bomb" => {
            // 64 MiB of spaces compresses to ~64 KB.
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(b"<html><body>").unwrap();
            let chunk = vec![b' '; 1024 * 1024];
            for _ in 0..64 {
                e.write_all(&chunk).unwrap();
            }
            let body = e.finish().unwrap();
            respond(
                &mut sock,
                "200 OK",
                &[
                    ("Content-Type", HTML.into()),
                    ("Content-Encoding", "gzip".into()),
                ],
                &body,
            )
            .await
        }
        "/huge" => {
            // 8 MiB body, streamed.
            let head = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: {HTML}\r\nContent-Length: {}\r\n\r\n",
                8 * 1024 * 1024
            );
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(article(4, 10).as_bytes()).await?;
            let chunk =
                "<p>filler filler filler filler filler filler filler filler</p>\n".repeat(1000);
            let mut sent = 0;
            while sent < 8 * 1024 * 1024 {
                if sock.write_all(chunk.as_bytes()).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            Ok(())
        }
        "/slow" => {
            // Slow drip: one byte every 300 ms, forever.
            sock.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: {HTML}\r\n\r\n<html>"
                )
                .as_bytes(),
            )
            .await?;
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if sock.write_all(b" ").await.is_err() {
                    return Ok(());
                }
            }
        }
        "/stall" => {
            sock.write_all(format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: {HTML}\r\nContent-Length: 100000\r\n\r\n<html>").as_bytes()).await?;
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        "/no-headers" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        "/binary" => {
            respond(
                &mut sock,
                "200 OK",
                &[("Content-Type", "application/octet-stream".into())],
                &[0u8, 1, 2, 255, 254],
            )
            .await
        }
        "/image" => {
            respond(
                &mut sock,
                "200 OK",
                &[("Content-Type", "image/png".into())],
                b"\x89PNG\r\n\x1a\n",
            )
            .await
        }
        "/untyped-binary" => respond(&mut sock, "200 OK", &[], &[0u8, 159, 146, 150, 7, 7]).await,
        "/latin1" => {
            // Declared in <meta>, not in the header.
            let mut b = b"<!doctype html><html><head><meta charset=\"windows-1252\"><title>Caf\xe9</title></head><body><main><p>".to_vec();
            for _ in 0..30 {
                b.extend_from_slice(b"Le caf\xe9 cr\xe8me br\xfbl\xe9e est d\xe9licieux, na\xefvement servi \xe0 la fen\xeatre. ");
            }
            b.extend_from_slice(b"</p></main></body></html>");
            respond(
                &mut sock,
                "200 OK",
                &[("Content-Type", "text/html".into())],
                &b,
            )
            .await
        }
        "/lying-utf8" => {
            // Header says UTF-8, body is windows-1252.
            let mut b = b"<!doctype html><html><head><title>Cr\xe8me</title></head><body><main><p>"
                .to_vec();
            for _ in 0..30 {
                b.extend_from_slice(
                    b"Tr\xe8s bien, le g\xe2teau \xe0 la cr\xe8me est pr\xeat pour l'\xe9t\xe9. ",
                );
            }
            b.extend_from_slice(b"</p></main></body></html>");
            respond(
                &mut sock,
                "200 OK",
                &[("Content-Type", "text/html; charset=utf-8".into())],
                &b,
            )
            .await
        }
        "/too-many" => {
            respond(
                &mut sock,
                "429 Too Many Requests",
                &[("Retry-After", "120".into())],
                b"",
            )
            .await
        }
        "/unavailable" => {
            respond(
                &mut sock,
                "503 Service Unavailable",
                &[("Retry-After", "30".into())],
                b"",
            )
            .await
        }
        "/missing" => {
            respond(
                &mut sock,
                "404 Not Found",
                &[("Content-Type", HTML.into())],
                b"<html>gone</html>",
            )
            .await
        }
        "/noindex" => {
            let b =
                article(5, 6).replace("<head>", "<head><meta name=\"robots\" content=\"noindex\">");
            let (h, b) = html(b);
            respond(&mut sock, "200 OK", &h, &b).await
        }
        "/x-noindex" => {
            respond(
                &mut sock,
                "200 OK",
                &[
                    ("Content-Type", HTML.into()),
                    ("X-Robots-Tag", "noindex".into()),
                ],
                article(6, 6).as_bytes(),
            )
            .await
        }
        "/x-nofollow" => {
            respond(
                &mut sock,
                "200 OK",
                &[
                    ("Content-Type", HTML.into()),
                    ("X-Robots-Tag", "GleanerBot: nofollow".into()),
                ],
                article(7, 6).as_bytes(),
            )
            .await
        }
        "/set-cookie" => {
            respond(
                &mut sock,
                "302 Found",
                &[
                    ("Location", "/echo-headers".into()),
                    ("Set-Cookie", "session=secret; Path=/".into()),
                ],
                b"",
            )
            .await
        }
        _ => respond(&mut sock, "404 Not Found", &[], b"").await,
    }
}

/// A listener that accepts and counts connections, answering nothing. Addresses the policy must
/// refuse are pointed here: the count must stay 0.
pub struct Counter {
    pub addr: SocketAddr,
    pub count: Arc<AtomicUsize>,
}

pub async fn spawn_counter() -> Counter {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            if let Ok((sock, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                drop(sock);
            }
        }
    });
    Counter { addr, count }
}

impl Counter {
    pub fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// A resolver that maps test names to fixed addresses and fails for everything else (tests never
/// reach real DNS).
#[derive(Debug, Default, Clone)]
pub struct MapResolver {
    pub names: HashMap<String, Vec<std::net::IpAddr>>,
}

impl MapResolver {
    pub fn with(mut self, name: &str, ips: &[&str]) -> Self {
        self.names.insert(
            name.to_string(),
            ips.iter().map(|i| i.parse().unwrap()).collect(),
        );
        self
    }
}

impl Resolver for MapResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move {
            match self.names.get(host.trim_end_matches('.')) {
                Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host}: unknown test name"),
                )),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Stub validator

/// Seed of the stub validator's key.
pub const VALIDATOR_SEED: [u8; 32] = [7; 32];

#[derive(Default)]
pub struct StubState {
    pub queue: VecDeque<String>,
    /// lease id → (url, expires_at_ms)
    pub leases: HashMap<String, (String, i64)>,
    pub next_lease: u64,
    pub lease_ttl_ms: i64,
    /// batch id → (blake3 of body, receipt)
    pub batches: HashMap<String, (Digest, Receipt)>,
    /// record id → times credited (must end at 1)
    pub credits: HashMap<String, u32>,
    /// Batches resent with different bytes under the same id (must stay 0).
    pub mismatched_resends: u32,
    pub resends: u32,
    pub failures: Vec<JobFailure>,
    pub released: Vec<String>,
    pub registered: u32,
    pub bad_auth: u32,
    pub points: u64,
    /// Points each accepted record is credited (10 unless set).
    pub record_points: Option<u64>,
    /// What `GET /v1/nodes/me` reports as revoked.
    pub revoked: u64,
    /// What `GET /v1/nodes/me` reports as the operator's reason for a suspension.
    pub suspended: Option<String>,
    /// What `GET /v1/epochs` lists (newest first).
    pub epochs: Vec<gleaner_protocol::EpochRoot>,
    /// What `GET /v1/epochs` answers instead of the list, if set: 404 as an older validator
    /// would, 503 as an overloaded one.
    pub epochs_fail: Option<u16>,
    /// How many times `GET /v1/epochs` was asked.
    pub epochs_asked: u32,
    /// epoch → what `GET /v1/epochs/{epoch}` answers (else 404).
    pub details: HashMap<u64, gleaner_protocol::api::EpochDetail>,
    /// `(epoch, claimant)` → what `GET /v1/epochs/{epoch}/proof/{claimant}` answers (else 404).
    pub proofs: HashMap<(u64, String), ClaimProof>,
    /// The revocation log `GET /v1/revocations` pages through (`after`, `limit`), every node's
    /// entries whatever `node` asks: the node must pick its own.
    pub revocations: Vec<gleaner_protocol::api::Revocation>,
    /// What `GET /v1/revocations` answers instead, if set (404: a validator older than the log).
    pub revocations_fail: Option<u16>,
    /// How many times `GET /v1/revocations` was asked.
    pub revocations_asked: u32,
    /// URLs whose jobs say the validator will not follow their links (`Job::follow_links`).
    pub links_unwanted: HashSet<String>,
    /// URL → how many outlinks its record carried, as received.
    pub outlinks_received: HashMap<String, usize>,
}

#[derive(Clone)]
pub struct Stub {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<StubState>>,
}

impl Stub {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn now_ms() -> i64 {
    gleaner_collector::now_ms()
}

fn check_auth(
    st: &Mutex<StubState>,
    headers: &axum::http::HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> bool {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let ok = RequestAuth::from_headers(
        &h(gleaner_protocol::auth::HEADER_NODE),
        &h(gleaner_protocol::auth::HEADER_TIMESTAMP),
        &h(gleaner_protocol::auth::HEADER_NONCE),
        &h(gleaner_protocol::auth::HEADER_SIGNATURE),
    )
    .and_then(|a| a.verify(method, path, body, now_ms()))
    .is_ok();
    if !ok {
        st.lock().unwrap().bad_auth += 1;
    }
    ok
}

fn problem(status: u16, code: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(Problem::new(status, code, code)),
    )
        .into_response()
}

/// Starts the stub validator with `urls` as jobs; leases expire after `lease_ttl_ms`.
pub async fn spawn_stub(urls: Vec<String>, lease_ttl_ms: i64) -> Stub {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};

    type S = Arc<Mutex<StubState>>;
    let state: S = Arc::new(Mutex::new(StubState {
        queue: urls.into(),
        lease_ttl_ms,
        ..StubState::default()
    }));
    let key = SecretKey::from_bytes(&VALIDATOR_SEED);

    async fn info() -> Response {
        let key = SecretKey::from_bytes(&VALIDATOR_SEED);
        axum::Json(ValidatorInfo {
            validator: key.public(),
            version: "stub".into(),
            epoch: 1,
            max_batch_records: 1000,
            max_batch_bytes: 8 * 1024 * 1024,
            scoring: "points/v1".into(),
        })
        .into_response()
    }
    async fn register(State(st): State<S>, headers: HeaderMap, body: Bytes) -> Response {
        if !check_auth(&st, &headers, "POST", PATH_REGISTER, &body) {
            return problem(401, "bad_signature");
        }
        let Ok(req) = serde_json::from_slice::<RegisterRequest>(&body) else {
            return problem(400, "malformed");
        };
        st.lock().unwrap().registered += 1;
        let key = SecretKey::from_bytes(&VALIDATOR_SEED);
        let node = headers
            .get(gleaner_protocol::auth::HEADER_NODE)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(req.payout);
        axum::Json(RegisterResponse {
            node,
            payout: req.payout,
            validator: key.public(),
            credibility: 0.1,
        })
        .into_response()
    }
    async fn lease(State(st): State<S>, headers: HeaderMap, body: Bytes) -> Response {
        if !check_auth(&st, &headers, "POST", PATH_LEASE, &body) {
            return problem(401, "bad_signature");
        }
        let Ok(req) = serde_json::from_slice::<LeaseRequest>(&body) else {
            return problem(400, "malformed");
        };
        let mut s = st.lock().unwrap();
        let now = now_ms();
        // Expired leases go back to the queue.
        let expired: Vec<String> = s
            .leases
            .iter()
            .filter(|(_, (_, e))| *e <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for id in expired {
            if let Some((url, _)) = s.leases.remove(&id) {
                s.queue.push_back(url);
            }
        }
        let mut jobs = Vec::new();
        while jobs.len() < req.max as usize {
            let Some(url) = s.queue.pop_front() else {
                break;
            };
            s.next_lease += 1;
            let id = format!("lease-{}", s.next_lease);
            let exp = now + s.lease_ttl_ms;
            s.leases.insert(id.clone(), (url.clone(), exp));
            let follow_links = !s.links_unwanted.contains(&url);
            jobs.push(Job {
                lease_id: id,
                url,
                expires_at_ms: exp,
                follow_links,
            });
        }
        axum::Json(LeaseResponse {
            jobs,
            retry_after_ms: 200,
            pending: 0,
        })
        .into_response()
    }
    async fn report(State(st): State<S>, headers: HeaderMap, body: Bytes) -> Response {
        if !check_auth(&st, &headers, "POST", PATH_REPORT, &body) {
            return problem(401, "bad_signature");
        }
        let Ok(req) = serde_json::from_slice::<ReportRequest>(&body) else {
            return problem(400, "malformed");
        };
        let mut s = st.lock().unwrap();
        let n = req.failures.len() as u32;
        for f in req.failures {
            s.leases.remove(&f.lease_id);
            s.failures.push(f);
        }
        axum::Json(Ack { accepted: n }).into_response()
    }
    async fn release(State(st): State<S>, headers: HeaderMap, body: Bytes) -> Response {
        if !check_auth(&st, &headers, "POST", PATH_RELEASE, &body) {
            return problem(401, "bad_signature");
        }
        let Ok(req) = serde_json::from_slice::<ReleaseRequest>(&body) else {
            return problem(400, "malformed");
        };
        let mut s = st.lock().unwrap();
        let mut n = 0;
        for id in req.lease_ids {
            if let Some((url, _)) = s.leases.remove(&id) {
                s.queue.push_front(url);
                n += 1;
            }
            s.released.push(id);
        }
        axum::Json(Ack { accepted: n }).into_response()
    }
    async fn batches(State(st): State<S>, headers: HeaderMap, body: Bytes) -> Response {
        if !check_auth(&st, &headers, "POST", PATH_BATCHES, &body) {
            return problem(401, "bad_signature");
        }
        let Ok(batch) = Batch::decode(&body, &DecodeLimits::default()) else {
            return problem(400, "malformed");
        };
        if batch.verify().is_err() {
            return problem(400, "bad_signature");
        }
        let id = batch.id();
        let digest = Digest::of(&body);
        let mut s = st.lock().unwrap();
        if let Some((d, r)) = s.batches.get(&id.to_string()).cloned() {
            s.resends += 1;
            if d != digest {
                s.mismatched_resends += 1;
            }
            return axum::Json(r).into_response();
        }
        let key = SecretKey::from_bytes(&VALIDATOR_SEED);
        let verdicts: Vec<RecordVerdict> = batch
            .records
            .iter()
            .map(|r| RecordVerdict {
                record_id: r.id(),
                verdict: Verdict::Accepted,
                reason: "ok".into(),
                points: s.record_points.unwrap_or(10),
            })
            .collect();
        for v in &verdicts {
            *s.credits.entry(v.record_id.to_string()).or_default() += 1;
        }
        for r in &batch.records {
            s.leases.remove(&r.lease_id);
            s.outlinks_received.insert(r.url.clone(), r.outlinks.len());
        }
        let receipt = Receipt::sign(
            &key,
            id,
            batch.header.node,
            1,
            now_ms(),
            "points/v1",
            verdicts,
        );
        s.points = s.points.saturating_add(receipt.points);
        s.batches.insert(id.to_string(), (digest, receipt.clone()));
        axum::Json(receipt).into_response()
    }
    async fn me(State(st): State<S>, headers: HeaderMap) -> Response {
        if !check_auth(&st, &headers, "GET", PATH_ME, b"") {
            return problem(401, "bad_signature");
        }
        let s = st.lock().unwrap();
        let node = headers
            .get(gleaner_protocol::auth::HEADER_NODE)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
            .unwrap();
        axum::Json(NodeStatus {
            node,
            payout: node,
            credibility: 0.1,
            points_total: s.points,
            points_pending: s.points,
            // The open epoch: the one after those closed.
            epoch: s.epochs.len() as u64 + 1,
            records_revoked: s.revoked,
            checks_passed: 3,
            checks_failed: 1,
            suspended: s.suspended.clone(),
        })
        .into_response()
    }

    async fn epochs(State(st): State<S>) -> Response {
        let mut s = st.lock().unwrap();
        s.epochs_asked += 1;
        if let Some(status) = s.epochs_fail {
            return problem(status, "epochs_unavailable");
        }
        axum::Json(s.epochs.clone()).into_response()
    }
    async fn detail(
        State(st): State<S>,
        axum::extract::Path(epoch): axum::extract::Path<u64>,
    ) -> Response {
        match st.lock().unwrap().details.get(&epoch) {
            Some(d) => axum::Json(d.clone()).into_response(),
            None => problem(404, "not_found"),
        }
    }
    async fn proof(
        State(st): State<S>,
        axum::extract::Path((epoch, claimant)): axum::extract::Path<(u64, String)>,
    ) -> Response {
        match st.lock().unwrap().proofs.get(&(epoch, claimant)) {
            Some(p) => axum::Json(p.clone()).into_response(),
            None => problem(404, "not_found"),
        }
    }

    async fn revocations(
        State(st): State<S>,
        axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
    ) -> Response {
        let mut s = st.lock().unwrap();
        s.revocations_asked += 1;
        if let Some(status) = s.revocations_fail {
            return problem(status, "not_found");
        }
        let number = |k: &str, default| q.get(k).map_or(default, |v| v.parse().unwrap());
        let (after, limit): (u64, u64) = (number("after", 0), number("limit", 500));
        assert!(q.contains_key("node"), "the node asks for its own entries");
        let page: Vec<_> = s
            .revocations
            .iter()
            .filter(|r| r.seq > after)
            .take(limit as usize)
            .cloned()
            .collect();
        axum::Json(page).into_response()
    }

    let _ = key;
    let app = axum::Router::new()
        .route(PATH_INFO, get(info))
        .route(PATH_REGISTER, post(register))
        .route(PATH_LEASE, post(lease))
        .route(PATH_REPORT, post(report))
        .route(PATH_RELEASE, post(release))
        .route(PATH_BATCHES, post(batches))
        .route(PATH_ME, get(me))
        .route(PATH_EPOCHS, get(epochs))
        .route("/v1/epochs/{epoch}", get(detail))
        .route("/v1/epochs/{epoch}/proof/{claimant}", get(proof))
        .route(gleaner_protocol::api::PATH_REVOCATIONS, get(revocations))
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Stub { addr, state }
}
