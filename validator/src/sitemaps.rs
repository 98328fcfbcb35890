//! Sitemaps named by crawl requests, fetched by the validator itself.
//!
//! A crawl request may name sitemaps (`<urlset>` or `<sitemapindex>`, plain or gzip). The
//! validator fetches them with the node's own safe fetcher ([`gleaner_collector::Fetcher`]:
//! GET only, no cookies, public addresses only, checked after DNS and on every redirect, size
//! and time caps), robots.txt asked before every hop (`crate::fetching`), and feeds the listed pages into the
//! frontier within the request's scope and page budget ([`Store::sitemap_fetched`]). Index
//! files queue their child sitemaps, [`MAX_SITEMAP_DEPTH`] levels deep. Pages are then fetched by
//! nodes like any seed; the validator never fetches pages for the dataset itself.
//!
//! Limits follow sitemaps.org: at most 50,000 `<loc>`s and 50 MB uncompressed per file.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use gleaner_collector::fetch::Purpose;
use quick_xml::events::Event;
use url::Url;

use crate::fetching::{ValidatorFetcher, is_robots};
pub use crate::store::{SitemapApplied, SitemapJob, SitemapOutcome, SitemapStatus};
use crate::store::{Store, StoreError};

/// Most `<loc>`s read from one sitemap file (sitemaps.org's limit).
pub const MAX_LOCS: usize = 50_000;
/// Largest sitemap accepted, uncompressed (sitemaps.org's limit).
pub const MAX_SITEMAP_BYTES: u64 = 50 * 1024 * 1024;
/// Longest `<loc>` kept; longer ones are skipped (the frontier refuses them anyway).
const MAX_LOC_BYTES: usize = 2_048;
/// Sitemaps fetched per pass of [`SitemapFetcher::run_pending`].
pub const SITEMAPS_PER_PASS: usize = 16;
pub use crate::store::{MAX_CHILD_SITEMAPS, MAX_SITEMAP_DEPTH};

/// Why a sitemap yielded nothing: a stable reason code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SitemapError {
    pub code: &'static str,
    pub message: String,
}

impl SitemapError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        SitemapError {
            code,
            message: message.into(),
        }
    }
}

/// The `<loc>`s of one sitemap file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// From a `<urlset>`: pages.
    pub pages: Vec<String>,
    /// From a `<sitemapindex>`: more sitemaps.
    pub sitemaps: Vec<String>,
}

/// Parses a sitemap (gzip-compressed or not). Reads at most [`MAX_LOCS`] locations; a file that
/// is neither a `<urlset>` nor a `<sitemapindex>` is an error.
pub fn parse(body: &[u8]) -> Result<Parsed, SitemapError> {
    let xml = if body.starts_with(&[0x1f, 0x8b]) {
        gunzip(body)?
    } else {
        body.to_vec()
    };
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut root: Option<bool> = None; // Some(true): urlset, Some(false): sitemapindex
    let mut in_loc = false;
    let mut loc = String::new();
    let mut out = Parsed::default();
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            SitemapError::new(
                "sitemap_malformed",
                format!(
                    "not well-formed XML at byte {}: {e}",
                    reader.buffer_position()
                ),
            )
        })?;
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                match (root, name.as_ref()) {
                    (None, "urlset") => root = Some(true),
                    (None, "sitemapindex") => root = Some(false),
                    (None, other) => {
                        return Err(SitemapError::new(
                            "sitemap_not_sitemap",
                            format!(
                                "the root element is <{}>, not <urlset> or <sitemapindex>",
                                other
                            ),
                        ));
                    }
                    (Some(_), "loc") => {
                        in_loc = true;
                        loc.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(t) if in_loc => loc.push_str(&t),
            Event::CData(t) if in_loc => loc.push_str(&t),
            Event::GeneralRef(r) if in_loc => match r.resolve_char_ref() {
                Ok(Some(c)) => loc.push(c),
                _ => match &*r {
                    "amp" => loc.push('&'),
                    "lt" => loc.push('<'),
                    "gt" => loc.push('>'),
                    "quot" => loc.push('"'),
                    "apos" => loc.push('\''),
                    // An undefined entity: the URL is unusable; an empty loc is skipped.
                    _ => loc.clear(),
                },
            },
            Event::End(e) if in_loc && e.local_name().as_ref() == "loc" => {
                in_loc = false;
                let url = loc.trim();
                if !url.is_empty() && url.len() <= MAX_LOC_BYTES {
                    match root {
                        Some(true) => out.pages.push(url.to_string()),
                        _ => out.sitemaps.push(url.to_string()),
                    }
                }
                if out.pages.len() + out.sitemaps.len() >= MAX_LOCS {
                    break;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if root.is_none() {
        return Err(SitemapError::new(
            "sitemap_not_sitemap",
            "no <urlset> or <sitemapindex> element",
        ));
    }
    Ok(out)
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, SitemapError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_SITEMAP_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| SitemapError::new("sitemap_malformed", format!("bad gzip: {e}")))?;
    if out.len() as u64 > MAX_SITEMAP_BYTES {
        return Err(SitemapError::new(
            "sitemap_too_large",
            format!("more than {MAX_SITEMAP_BYTES} bytes uncompressed"),
        ));
    }
    Ok(out)
}

/// The validator's sitemap fetcher ([`ValidatorFetcher`]: the node's safe fetcher, robots.txt
/// asked before every hop).
#[derive(Debug, Clone)]
pub struct SitemapFetcher {
    fetcher: ValidatorFetcher,
}

impl SitemapFetcher {
    /// `allow_addrs`: exact socket addresses the fetcher may reach although they are not public
    /// (tests and local development; [`crate::Config::fetch_allow_addrs`]).
    pub fn new(allow_addrs: &[std::net::SocketAddr]) -> Result<Self, SitemapError> {
        let fetcher =
            ValidatorFetcher::new(allow_addrs, MAX_SITEMAP_BYTES, Duration::from_secs(120))
                .map_err(|e| SitemapError::new("sitemap_fetcher", e.to_string()))?;
        Ok(SitemapFetcher { fetcher })
    }

    /// Fetches and parses one sitemap, robots.txt asked before every hop.
    pub async fn fetch(&self, url: &str) -> Result<Parsed, SitemapError> {
        Url::parse(url).map_err(|e| SitemapError::new("sitemap_url", format!("{url}: {e}")))?;
        let fetched = self.fetcher.get(url, Purpose::Sitemap).await.map_err(|e| {
            let code = if is_robots(&e) {
                "sitemap_robots"
            } else {
                "sitemap_fetch"
            };
            SitemapError::new(code, e.to_string())
        })?;
        if fetched.truncated {
            return Err(SitemapError::new(
                "sitemap_too_large",
                format!("more than {MAX_SITEMAP_BYTES} bytes"),
            ));
        }
        parse(&fetched.body)
    }

    /// Fetches up to [`SITEMAPS_PER_PASS`] queued sitemaps and applies them to the frontier.
    /// Returns how many were handled. A failed fetch marks its sitemap failed with the reason; an
    /// `Err` is a store failure, which leaves the sitemap queued for the next pass.
    pub async fn run_pending(
        &self,
        store: &Arc<Store>,
        now_ms: impl Fn() -> i64,
    ) -> Result<usize, SitemapError> {
        let pending = {
            let store = store.clone();
            blocking(move || store.pending_sitemaps(SITEMAPS_PER_PASS)).await?
        };
        let n = pending.len();
        for job in pending {
            let outcome = match self.fetch(&job.url).await {
                Ok(p) => SitemapOutcome::Parsed {
                    pages: p.pages,
                    sitemaps: p.sitemaps,
                },
                Err(e) => {
                    tracing::warn!(url = %job.url, request = job.request_id, code = e.code,
                        message = %e.message, "sitemap failed");
                    SitemapOutcome::Failed {
                        code: e.code.to_string(),
                        message: e.message,
                    }
                }
            };
            let (store, now) = (store.clone(), now_ms());
            let (url, request) = (job.url.clone(), job.request_id);
            let a = blocking(move || store.sitemap_fetched(&job, &outcome, now)).await?;
            tracing::info!(%url, request, found = a.found, queued = a.queued,
                sitemaps = a.sitemaps_queued, "sitemap applied");
        }
        Ok(n)
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SitemapError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| SitemapError::new(e.code(), e.to_string())),
        Err(e) => Err(SitemapError::new("sitemap_task", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_urlset_with_entities_and_cdata() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://a.example/x?p=1&amp;q=2</loc><lastmod>2026-01-01</lastmod></url>
  <url><loc> https://a.example/caf&#xE9; </loc></url>
  <url><loc><![CDATA[https://a.example/c]]></loc></url>
  <url><loc></loc></url>
</urlset>"#;
        let p = parse(xml).unwrap();
        assert_eq!(
            p.pages,
            [
                "https://a.example/x?p=1&q=2",
                "https://a.example/caf\u{e9}",
                "https://a.example/c"
            ]
        );
        assert!(p.sitemaps.is_empty());
    }

    #[test]
    fn reads_an_index_and_gzip() {
        let xml = br#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>https://a.example/s1.xml</loc></sitemap>
<sitemap><loc>https://a.example/s2.xml.gz</loc></sitemap></sitemapindex>"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, xml).unwrap();
        let p = parse(&gz.finish().unwrap()).unwrap();
        assert_eq!(
            p.sitemaps,
            ["https://a.example/s1.xml", "https://a.example/s2.xml.gz"]
        );
        assert!(p.pages.is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_sitemap() {
        for (body, code) in [
            (&b"<html><body>hi</body></html>"[..], "sitemap_not_sitemap"),
            (b"", "sitemap_not_sitemap"),
            (b"<urlset><url><loc>x</url>", "sitemap_malformed"),
            (b"\x1f\x8b\x08\x00garbage", "sitemap_malformed"),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.code, code, "{body:?}: {e}");
        }
    }

    #[test]
    fn stops_at_the_location_limit_and_bounds_gzip_bombs() {
        let mut xml = String::from("<urlset>");
        for i in 0..MAX_LOCS + 10 {
            xml.push_str(&format!("<url><loc>https://a.example/{i}</loc></url>"));
        }
        xml.push_str("</urlset>");
        assert_eq!(parse(xml.as_bytes()).unwrap().pages.len(), MAX_LOCS);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..=(MAX_SITEMAP_BYTES / (1024 * 1024)) {
            std::io::Write::write_all(&mut gz, &zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
        assert_eq!(parse(&bomb).unwrap_err().code, "sitemap_too_large");
    }
}
