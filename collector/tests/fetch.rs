//! The safe fetcher, the address policy and robots.txt, against local fixture servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gleaner_collector::fetch::{FetchConfig, FetchError, Fetcher, NoHooks};
use gleaner_collector::policy::AddressPolicy;
use gleaner_collector::robots::RobotsCache;
use gleaner_protocol::RobotsVerdict;
use gleaner_protocol::api::FailureReason;
use support::*;

fn fetcher(allow: &[SocketAddr], resolver: MapResolver) -> Fetcher {
    let policy = AddressPolicy::new(allow, &["blocked.example".to_string()])
        .with_resolver(Arc::new(resolver));
    Fetcher::new(FetchConfig {
        policy,
        max_body_bytes: 1024 * 1024,
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(1),
        ..FetchConfig::default()
    })
    .unwrap()
}

fn test_names() -> MapResolver {
    MapResolver::default()
        .with("evil.test", &["127.0.0.1"])
        .with("meta.test", &["169.254.169.254"])
        .with("mixed.test", &["93.184.216.34", "127.0.0.1"])
        .with("v6.test", &["::1"])
        .with("mapped.test", &["::ffff:127.0.0.1"])
        .with("private.test", &["10.0.0.5"])
        .with("router.test", &["192.168.1.1"])
        .with("nat64.test", &["64:ff9b::7f00:1"])
        .with("ula.test", &["fd00::1"])
        .with("cgnat.test", &["100.64.1.1"])
        .with("zero.test", &["0.0.0.0"])
        .with("localhost", &["127.0.0.1"])
}

/// Every URL here must be refused by the policy before any connection; the counter proves it for
/// all the loopback ones (they carry the counter's port, which the policy's port check lets
/// through because another address with that port is allowed).
#[tokio::test]
async fn address_policy_refuses_without_connecting() {
    let counter = spawn_counter().await;
    let site = spawn_site(RobotsMode::NotFound).await;
    let c = counter.addr.port();
    // An exemption for another address on the counter's port, so only the address check stands
    // between these URLs and the counter.
    let decoy: SocketAddr = format!("127.0.0.2:{c}").parse().unwrap();
    let f = fetcher(&[site.addr, decoy], test_names());
    let direct: Vec<String> = [
        "http://127.0.0.1:{c}/",
        "http://127.1:{c}/",
        "http://2130706433:{c}/",
        "http://0x7f.1:{c}/",
        "http://0x7f000001:{c}/",
        "http://0177.0.0.1:{c}/",
        "http://[::ffff:127.0.0.1]:{c}/",
        "http://[::ffff:7f00:1]:{c}/",
        "http://[::127.0.0.1]:{c}/",
        "http://[::1]:{c}/",
        "http://[64:ff9b::7f00:1]:{c}/",
        "http://localhost:{c}/",
        "http://localhost.:{c}/",
        "http://LOCALHOST:{c}/",
        "http://app.localhost:{c}/",
        "http://0.0.0.0:{c}/",
        "http://0:{c}/",
        "http://evil.test:{c}/",
        "http://evil.test.:{c}/",
        "http://mixed.test:{c}/",
        "http://v6.test:{c}/",
        "http://mapped.test:{c}/",
        "http://nat64.test:{c}/",
        "http://zero.test:{c}/",
        "http://10.0.0.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.0.0.1/",
        "http://192.0.2.1/",
        "http://192.168.1.1/",
        "http://198.18.0.1/",
        "http://198.51.100.1/",
        "http://203.0.113.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[::]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[fe80::1]/",
        "http://[ff02::1]/",
        "http://[2001:db8::1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://meta.test/",
        "http://private.test/",
        "http://router.test/",
        "http://ula.test/",
        "http://cgnat.test/",
        "http://intranet/",
        "http://printer.local/",
        "https://blocked.example/",
        "https://www.blocked.example/",
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pass@example.com/",
        "http://example.com:22/",
        "not a url",
    ]
    .iter()
    .map(|u| u.replace("{c}", &c.to_string()))
    .collect();
    assert!(direct.len() >= 30);
    for url in &direct {
        let err = f.fetch(url).await.expect_err(url);
        assert!(
            matches!(err, FetchError::Policy(_)),
            "{url}: expected a policy refusal, got {err:?}"
        );
        assert!(
            matches!(
                err.reason(),
                FailureReason::BlockedAddress
                    | FailureReason::BlockedDomain
                    | FailureReason::InvalidUrl
            ),
            "{url}: {err:?}"
        );
    }
    // The same targets as redirect destinations from an allowed site.
    let mut redirected = 0;
    for target in direct.iter().filter(|u| u.starts_with("http")) {
        let url = site.url(&format!("/redirect-to?to={target}"));
        let err = f.fetch(&url).await.expect_err(&url);
        assert!(matches!(err, FetchError::Policy(_)), "{url}: {err:?}");
        redirected += 1;
    }
    assert!(redirected >= 30);
    assert_eq!(
        counter.connections(),
        0,
        "a refused address was connected to"
    );
    // Control: the counter does count a connection the policy allows.
    let f2 = fetcher(&[counter.addr], MapResolver::default());
    let _ = f2.fetch(&format!("http://{}/", counter.addr)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(counter.connections() >= 1);
}

#[tokio::test]
async fn pages_encodings_and_charsets() {
    let site = spawn_site(RobotsMode::NotFound).await;
    let f = fetcher(&[site.addr], MapResolver::default());
    let p = f.fetch(&site.url("/page/1")).await.unwrap();
    assert_eq!(p.status, 200);
    assert_eq!(p.content_type, "text/html");
    assert_eq!(p.charset, "utf-8");
    assert!(p.text.contains("Article 1"));
    assert!(!p.truncated);
    assert_eq!(p.wire_bytes, p.body.len() as u64);

    for path in ["/gzip", "/deflate"] {
        let p = f.fetch(&site.url(path)).await.unwrap();
        assert!(
            p.wire_bytes < p.body.len() as u64 / 3,
            "{path}: {} vs {}",
            p.wire_bytes,
            p.body.len()
        );
        assert!(p.text.contains("river valley"), "{path}");
    }

    let p = f.fetch(&site.url("/latin1")).await.unwrap();
    assert_eq!(p.charset, "windows-1252");
    assert!(p.text.contains("Café"));
    let p = f.fetch(&site.url("/lying-utf8")).await.unwrap();
    assert_ne!(p.charset, "utf-8");
    assert!(p.text.contains("crème"), "{}", &p.text[..200]);

    let p = f.fetch(&site.url("/x-noindex")).await.unwrap();
    assert!(p.x_robots.noindex);
    let p = f.fetch(&site.url("/x-nofollow")).await.unwrap();
    assert!(p.x_robots.nofollow && !p.x_robots.noindex);
}

#[tokio::test]
async fn hostile_responses() {
    let site = spawn_site(RobotsMode::NotFound).await;
    let f = fetcher(&[site.addr], MapResolver::default());
    let reason = |r: Result<_, FetchError>| {
        r.map(|_: gleaner_collector::Fetched| ())
            .unwrap_err()
            .reason()
    };

    // Huge body: cut at the cap and flagged.
    let p = f.fetch(&site.url("/huge")).await.unwrap();
    assert!(p.truncated);
    assert!(p.body.len() as u64 <= 1024 * 1024);
    // Gzip bomb: refused, memory bounded.
    assert_eq!(
        reason(f.fetch(&site.url("/bomb")).await),
        FailureReason::TooLarge
    );
    // Slow drip, stalled body, no headers: time-outs.
    assert_eq!(
        reason(f.fetch(&site.url("/slow")).await),
        FailureReason::Timeout
    );
    assert_eq!(
        reason(f.fetch(&site.url("/stall")).await),
        FailureReason::Timeout
    );
    assert_eq!(
        reason(f.fetch(&site.url("/no-headers")).await),
        FailureReason::Timeout
    );
    // Not HTML.
    for path in ["/binary", "/image", "/untyped-binary"] {
        assert_eq!(
            reason(f.fetch(&site.url(path)).await),
            FailureReason::NotHtml,
            "{path}"
        );
    }
    // Redirects: 5 are followed, 6 are too many, loops stop.
    let p = f.fetch(&site.url("/redirect/4")).await.unwrap();
    assert_eq!(p.redirects, 5);
    assert!(p.final_url.ends_with("/page/0"));
    assert_eq!(
        reason(f.fetch(&site.url("/redirect/5")).await),
        FailureReason::TooManyRedirects
    );
    assert_eq!(
        reason(f.fetch(&site.url("/loop-a")).await),
        FailureReason::TooManyRedirects
    );
    // HTTP errors, with Retry-After.
    match f.fetch(&site.url("/too-many")).await {
        Err(FetchError::Http {
            status: 429,
            retry_after,
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(120)))
        }
        other => panic!("{other:?}"),
    }
    match f.fetch(&site.url("/unavailable")).await {
        Err(FetchError::Http {
            status: 503,
            retry_after,
            ..
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        reason(f.fetch(&site.url("/missing")).await),
        FailureReason::HttpError
    );
    // A closed port: a network error, not a hang.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let f2 = fetcher(&[closed], MapResolver::default());
    assert_eq!(
        reason(f2.fetch(&format!("http://{closed}/")).await),
        FailureReason::NetworkError
    );
}

#[tokio::test]
async fn robots_txt_variants() {
    let robots = RobotsCache::new();
    let check = |site: Site, path: &'static str| {
        let robots = robots.clone();
        async move {
            let f = fetcher(&[site.addr], MapResolver::default());
            let url = url::Url::parse(&site.url(path)).unwrap();
            robots.check(&f, &NoHooks, &url).await
        }
    };
    let rules = "User-agent: *\nDisallow: /\n\nUser-agent: GleanerBot\nAllow: /page/\nDisallow: /private\nCrawl-delay: 3\n";
    let site = spawn_site(RobotsMode::Body(rules.into())).await;
    let d = check(site.clone(), "/page/1").await.unwrap();
    assert_eq!(d.verdict, RobotsVerdict::Allowed);
    assert_eq!(d.crawl_delay, Some(Duration::from_secs(3)));
    let e = check(site.clone(), "/private/1").await.unwrap_err();
    assert_eq!(e.reason(), FailureReason::RobotsDisallowed);
    assert_eq!(site.hits("/robots.txt"), 1, "robots.txt is cached");

    let site = spawn_site(RobotsMode::NotFound).await;
    assert_eq!(
        check(site, "/private/1").await.unwrap().verdict,
        RobotsVerdict::Unavailable
    );

    let site = spawn_site(RobotsMode::ServerError).await;
    assert_eq!(
        check(site, "/page/1").await.unwrap_err().reason(),
        FailureReason::RobotsUnreachable
    );

    let site = spawn_site(RobotsMode::Hangup).await;
    assert_eq!(
        check(site, "/page/1").await.unwrap_err().reason(),
        FailureReason::RobotsUnreachable
    );

    // Huge: the rule past 400 KiB still applies (at least 500 KiB are parsed).
    let site = spawn_site(RobotsMode::Huge).await;
    assert_eq!(
        check(site.clone(), "/private/x")
            .await
            .unwrap_err()
            .reason(),
        FailureReason::RobotsDisallowed
    );
    assert_eq!(
        check(site, "/page/1").await.unwrap().verdict,
        RobotsVerdict::Allowed
    );

    // Unreachable host: nothing listens.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let f = fetcher(&[closed], MapResolver::default());
    let url = url::Url::parse(&format!("http://{closed}/page/1")).unwrap();
    assert_eq!(
        robots.check(&f, &NoHooks, &url).await.unwrap_err().reason(),
        FailureReason::RobotsUnreachable
    );
}
