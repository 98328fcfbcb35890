//! The sample website itself: deterministic, realistic, and it counts what it is sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};

use gleaner_e2e::site::{Site, SiteConfig};

async fn get(url: &str) -> (u16, String) {
    let url = url.strip_prefix("http://").unwrap();
    let (host, path) = url
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn serves_pages_robots_and_sitemap_and_counts_hits() {
    let site = Site::start(SiteConfig::default(), IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let (status, robots) = get(&format!("{}/robots.txt", site.origin())).await;
    assert_eq!(status, 200);
    assert!(robots.contains("Disallow: /private/"));
    assert!(robots.contains("Crawl-delay: 0.2"));
    let (_, sitemap) = get(&format!("{}/sitemap.xml", site.origin())).await;
    let urls = site.public_urls();
    assert_eq!(urls.len(), 1 + 24 + 6 + 3 + 3);
    for u in urls.iter().skip(1) {
        assert!(sitemap.contains(u.as_str()), "sitemap lists {u}");
    }
    let article = &site.article_urls()[0];
    let (status, a) = get(article).await;
    assert_eq!(status, 200);
    for boilerplate in [
        "cookie-banner",
        "<nav",
        "<footer",
        "share-bar",
        "Related stories",
    ] {
        assert!(a.contains(boilerplate), "{boilerplate}");
    }
    let text = site.main_text(article).unwrap();
    let first = text.split("\n\n").next().unwrap();
    assert!(
        a.contains(&first.replace('"', "&quot;")),
        "main text is on the page"
    );
    assert!(
        text.split_whitespace().count() > 80,
        "articles are long enough for quality rules"
    );
    // Pages change on every fetch (view counters), but not their main text.
    let (_, b) = get(article).await;
    assert_ne!(a, b);
    assert_eq!(get(&format!("{}/nope", site.origin())).await.0, 404);
    assert_eq!(site.hits().len(), 5);
    assert_eq!(site.page_hits().len(), 3);
    assert!(site.max_requests_per_second() >= 1);
}

#[tokio::test]
async fn same_seed_same_site() {
    let a = Site::start(SiteConfig::default(), IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let b = Site::start(SiteConfig::default(), IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .unwrap();
    let c = Site::start(
        SiteConfig {
            seed: 2,
            ..SiteConfig::default()
        },
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    )
    .await
    .unwrap();
    let path = |s: &Site, u: &str| u.strip_prefix(&s.origin()).unwrap().to_string();
    let ua = &a.article_urls()[3];
    let ub = format!("{}{}", b.origin(), path(&a, ua));
    let uc = format!("{}{}", c.origin(), path(&a, ua));
    assert_eq!(a.main_text(ua), b.main_text(&ub));
    assert_ne!(a.main_text(ua), c.main_text(&uc));
}
