//! Sitemaps named by crawl requests, fetched by the validator from a real site on 127.0.0.1:
//! robots.txt obeyed, indexes followed, gzip read, scope and page budget kept, bad sitemaps
//! failed with a reason, and the server's timer doing it on its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use gleaner_validator::server::{self, AppState};
use gleaner_validator::sitemaps::SitemapFetcher;
use gleaner_validator::{Clock, Config, CrawlRequest, Identity, Store};

const T0: i64 = 1_767_225_600_000;

fn urlset(base: &str, paths: &[&str]) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">"#,
    );
    for p in paths {
        xml.push_str(&format!("<url><loc>{base}{p}</loc></url>"));
    }
    xml.push_str("</urlset>");
    xml
}

/// A site with robots.txt, a sitemap index, a plain and a gzip urlset, a sitemap robots.txt
/// forbids, and an HTML page posing as a sitemap.
async fn site() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let xml = |body: String| ([(header::CONTENT_TYPE, "application/xml")], body).into_response();
    let index = format!(
        r#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{base}/sitemap-a.xml</loc></sitemap>
<sitemap><loc>{base}/sitemap-b.xml.gz</loc></sitemap>
<sitemap><loc>{base}/private/sitemap.xml</loc></sitemap>
<sitemap><loc>https://elsewhere.example/sitemap.xml</loc></sitemap>
</sitemapindex>"#
    );
    let a = urlset(&base, &["/a/1", "/a/2", "/a/2#dup", "/a/3"]);
    // Out of scope (another site) and a page listed twice across sitemaps.
    let b = {
        let mut xml = urlset(&base, &["/b/1", "/a/1"]);
        xml = xml.replace(
            "</urlset>",
            "<url><loc>https://elsewhere.example/x</loc></url></urlset>",
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, xml.as_bytes()).unwrap();
        gz.finish().unwrap()
    };
    let private = urlset(&base, &["/private/1"]);
    let app = Router::new()
        .route(
            "/robots.txt",
            get(|| async { "User-agent: *\nDisallow: /private/\n" }),
        )
        .route("/sitemap_index.xml", get(move || async move { xml(index) }))
        .route("/sitemap-a.xml", get(move || async move { xml(a) }))
        .route(
            "/sitemap-b.xml.gz",
            get(move || async move { ([(header::CONTENT_TYPE, "application/gzip")], b) }),
        )
        .route(
            "/private/sitemap.xml",
            get(move || async move { xml(private) }),
        )
        // An index that names the next index, without end.
        .route(
            "/deep/{n}",
            get(move |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                xml(format!(
                    r#"<sitemapindex><sitemap><loc>http://{addr}/deep/{}</loc></sitemap></sitemapindex>"#,
                    n + 1
                ))
            }),
        )
        .route(
            "/page.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>not a sitemap</body></html>",
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The fixture site and an empty store.
async fn setup() -> (SocketAddr, tempfile::TempDir, Arc<Store>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let site = site().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    (site, dir, store)
}

/// Runs sitemap passes until none is left queued.
async fn drain(fetcher: &SitemapFetcher, store: &Arc<Store>) {
    let mut passes = 0;
    while fetcher.run_pending(store, || T0 + 1_000).await.unwrap() > 0 {
        passes += 1;
        assert!(passes < 10, "sitemap passes never end");
    }
}

fn request(site: SocketAddr, sitemaps: &[&str], max_pages: u32) -> CrawlRequest {
    CrawlRequest {
        seeds: vec![],
        domains: vec![],
        sitemaps: sitemaps
            .iter()
            .map(|p| format!("http://{site}{p}"))
            .collect(),
        max_pages,
        max_depth: 1,
    }
}

#[tokio::test]
async fn sitemaps_feed_the_frontier_within_scope_budget_and_robots() {
    let (site, _dir, store) = setup().await;
    let added = store
        .add_crawl_request(
            "lab",
            &request(
                site,
                &["/sitemap_index.xml", "/page.html", "/missing.xml"],
                1_000,
            ),
            T0,
        )
        .unwrap();
    let fetcher = SitemapFetcher::new(&[site]).unwrap();
    drain(&fetcher, &store).await;
    let status = store.sitemap_status(added.id).unwrap();
    let by_url = |suffix: &str| {
        status
            .iter()
            .find(|s| s.url.ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} not in {status:#?}"))
    };
    let index = by_url("/sitemap_index.xml");
    assert_eq!(
        (index.state.as_str(), index.urls_found, index.depth),
        ("done", 4, 0)
    );
    let a = by_url("/sitemap-a.xml");
    // Four <loc>s, one of them the same page with a fragment.
    assert_eq!(
        (a.state.as_str(), a.urls_found, a.urls_queued, a.depth),
        ("done", 4, 3, 1)
    );
    let b = by_url("/sitemap-b.xml.gz");
    // /b/1 is new; /a/1 was already seen; elsewhere.example is out of scope.
    assert_eq!(
        (b.state.as_str(), b.urls_found, b.urls_queued),
        ("done", 3, 1)
    );
    // Each failure keeps its reason code: refused by robots.txt, not a sitemap, and a sitemap
    // answering 404 (a failed fetch, not an empty sitemap).
    for (url, code) in [
        ("/private/sitemap.xml", "sitemap_robots"),
        ("/page.html", "sitemap_not_sitemap"),
        ("/missing.xml", "sitemap_fetch"),
    ] {
        let s = by_url(url);
        assert_eq!(s.state, "failed", "{s:?}");
        assert!(
            s.error.as_deref().is_some_and(|e| e.starts_with(code)),
            "{code}: {s:?}"
        );
    }
    // The out-of-scope child sitemap was never queued.
    assert!(status.iter().all(|s| !s.url.contains("elsewhere")));
    assert_eq!(status.len(), 6, "{status:#?}");

    // A second request naming the same sitemap: its pages are already in the seen-set from the
    // first request, so nothing is queued twice.
    let again = store
        .add_crawl_request("lab", &request(site, &["/sitemap-a.xml"], 10), T0)
        .unwrap();
    drain(&fetcher, &store).await;
    let s = store.sitemap_status(again.id).unwrap();
    assert_eq!((s[0].state.as_str(), s[0].urls_queued), ("done", 0));
}

#[tokio::test]
async fn page_budget_caps_what_a_sitemap_queues() {
    let (site, _dir, store) = setup().await;
    let added = store
        .add_crawl_request("lab", &request(site, &["/sitemap-a.xml"], 2), T0)
        .unwrap();
    let fetcher = SitemapFetcher::new(&[site]).unwrap();
    assert_eq!(fetcher.run_pending(&store, || T0).await.unwrap(), 1);
    let s = store.sitemap_status(added.id).unwrap();
    assert_eq!((s[0].state.as_str(), s[0].urls_queued), ("done", 2));
}

#[tokio::test]
async fn nested_indexes_are_followed_two_levels_deep() {
    let (site, _dir, store) = setup().await;
    let added = store
        .add_crawl_request("lab", &request(site, &["/deep/0"], 10), T0)
        .unwrap();
    drain(&SitemapFetcher::new(&[site]).unwrap(), &store).await;
    let s = store.sitemap_status(added.id).unwrap();
    let depths: Vec<(i64, &str, u32)> = s
        .iter()
        .map(|s| (s.depth, s.state.as_str(), s.urls_found))
        .collect();
    assert_eq!(
        depths,
        [(0, "done", 1), (1, "done", 1), (2, "done", 1)],
        "{s:#?}"
    );
}

#[tokio::test]
async fn private_addresses_stay_refused_unless_allowed() {
    let (site, _dir, store) = setup().await;
    let added = store
        .add_crawl_request("lab", &request(site, &["/sitemap-a.xml"], 10), T0)
        .unwrap();
    // No exemption: 127.0.0.1 is not a public address, so the safety policy refuses it.
    let fetcher = SitemapFetcher::new(&[]).unwrap();
    fetcher.run_pending(&store, || T0).await.unwrap();
    let s = store.sitemap_status(added.id).unwrap();
    assert_eq!(s[0].state, "failed", "{s:?}");
    assert_eq!(s[0].urls_queued, 0);
}

#[tokio::test]
async fn the_server_fetches_sitemaps_on_its_own() {
    let (site, _dir, store) = setup().await;
    let config = Config {
        sitemap_interval_secs: 1,
        fetch_allow_addrs: vec![site],
        ..Config::default()
    };
    let state = AppState::new(
        store.clone(),
        Identity::from_key(gleaner_protocol::SecretKey::from_bytes(&[200; 32])),
        config,
        Clock::manual(T0),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _handle = server::spawn(listener, state).unwrap();
    let added = store
        .add_crawl_request("lab", &request(site, &["/sitemap-a.xml"], 10), T0)
        .unwrap();
    let mut status = Vec::new();
    for _ in 0..100 {
        status = store.sitemap_status(added.id).unwrap();
        if status.iter().all(|s| s.state != "queued") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].state.as_str(), status[0].urls_queued),
        ("done", 3),
        "{status:?}"
    );
}
