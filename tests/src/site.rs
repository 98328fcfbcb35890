//! A sample website for the demo and the end-to-end tests: realistic pages with navigation,
//! headers, footers, cookie banners, share bars, related links and comments; a robots.txt with a
//! `Crawl-delay` and a disallowed area; a sitemap; pages that change on every fetch (rotating ads,
//! timestamps, view counters); a few thin and duplicate pages the validator should refuse.
//!
//! Everything is generated from a seed, so two sites with the same seed are identical. The server
//! records every request it receives, so tests can count requests per second at the site, and spot
//! any request to a path robots.txt disallows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What a generated site contains.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Seed of the generator: same seed, same site.
    pub seed: u64,
    /// Articles (each a real-looking page with boilerplate around the main text).
    pub articles: usize,
    /// Forum threads.
    pub threads: usize,
    /// Thin pages (too short for the quality rules).
    pub thin: usize,
    /// Articles republished under a second URL (exact duplicates of the main text).
    pub duplicates: usize,
    /// `Crawl-delay` in robots.txt, in seconds.
    pub crawl_delay_secs: f64,
    /// Site name shown in the header and titles.
    pub name: String,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            seed: 1,
            articles: 24,
            threads: 6,
            thin: 3,
            duplicates: 3,
            crawl_delay_secs: 0.2,
            name: "The Riverside Gazette".into(),
        }
    }
}

/// One request the site received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub path: String,
    pub user_agent: String,
    pub method: String,
}

/// A generated page: its main text is fixed, its boilerplate and dynamic bits are rendered per
/// request.
#[derive(Debug, Clone)]
struct Page {
    title: String,
    kind: PageKind,
    /// Paragraphs of the main text.
    paragraphs: Vec<String>,
    /// Related links (paths) shown in a sidebar.
    related: Vec<String>,
    comments: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageKind {
    Article,
    Thread,
    Thin,
}

struct Inner {
    config: SiteConfig,
    pages: BTreeMap<String, Page>,
    hits: Mutex<Vec<Hit>>,
    views: AtomicU64,
    started: Instant,
}

/// A running sample site on 127.0.0.1. Dropping it stops the server.
pub struct Site {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Site {
    /// Generates the site and serves it on `ip`, port chosen by the OS.
    pub async fn start(config: SiteConfig, ip: std::net::IpAddr) -> std::io::Result<Site> {
        let listener = TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            pages: generate(&config),
            config,
            hits: Mutex::new(Vec::new()),
            views: AtomicU64::new(1_000),
            started: Instant::now(),
        });
        let app = Router::new()
            .route("/robots.txt", get(robots))
            .route("/sitemap.xml", get(sitemap))
            .route("/", get(home))
            .route("/{*path}", get(page))
            .with_state(inner.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let app = app.layer(axum::middleware::from_fn_with_state(
            inner.clone(),
            record_hit,
        ));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Site {
            inner,
            addr,
            stop: Some(stop),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every URL a crawler may fetch (robots allows it): home, articles, threads, thin pages and
    /// duplicates. Sorted.
    pub fn public_urls(&self) -> Vec<String> {
        std::iter::once(format!("{}/", self.origin()))
            .chain(
                self.inner
                    .pages
                    .keys()
                    .map(|p| format!("{}{p}", self.origin())),
            )
            .collect()
    }

    /// URLs of the articles only.
    pub fn article_urls(&self) -> Vec<String> {
        self.inner
            .pages
            .iter()
            .filter(|(p, page)| page.kind == PageKind::Article && p.starts_with("/news/"))
            .map(|(p, _)| format!("{}{p}", self.origin()))
            .collect()
    }

    /// The URL of a path robots.txt disallows.
    pub fn private_url(&self) -> String {
        format!("{}/private/account", self.origin())
    }

    /// The fixed main text of a page (what an honest, perfect cleaner extracts, minus dynamic bits).
    pub fn main_text(&self, url: &str) -> Option<String> {
        let path = url.strip_prefix(&self.origin())?;
        self.inner
            .pages
            .get(path)
            .map(|p| p.paragraphs.join("\n\n"))
    }

    /// Every request received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.inner
            .hits
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// Requests for pages (everything but robots.txt and the sitemap).
    pub fn page_hits(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.path != "/robots.txt" && h.path != "/sitemap.xml")
            .collect()
    }

    /// The smallest gap between two consecutive page requests, over all page requests.
    pub fn min_gap(&self) -> Option<Duration> {
        let mut at: Vec<Instant> = self.page_hits().iter().map(|h| h.at).collect();
        at.sort();
        at.windows(2).map(|w| w[1] - w[0]).min()
    }

    /// The most page requests in any sliding one-second window.
    pub fn max_requests_per_second(&self) -> usize {
        let mut at: Vec<Instant> = self.page_hits().iter().map(|h| h.at).collect();
        at.sort();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..at.len() {
            while at[hi] - at[lo] >= Duration::from_secs(1) {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    /// The configured crawl delay.
    pub fn crawl_delay(&self) -> Duration {
        Duration::from_secs_f64(self.inner.config.crawl_delay_secs)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn record_hit(
    State(inner): State<Arc<Inner>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let hit = Hit {
        at: Instant::now(),
        path: req.uri().path().to_string(),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        method: req.method().to_string(),
    };
    if let Ok(mut hits) = inner.hits.lock() {
        hits.push(hit);
    }
    next.run(req).await
}

async fn robots(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let host = host(&headers);
    let body = format!(
        "# {name}\nUser-agent: *\nDisallow: /private/\nCrawl-delay: {delay}\n\nUser-agent: BadBot\nDisallow: /\n\nSitemap: http://{host}/sitemap.xml\n",
        name = inner.config.name,
        delay = inner.config.crawl_delay_secs,
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

async fn sitemap(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let host = host(&headers);
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for path in inner.pages.keys() {
        body.push_str(&format!("  <url><loc>http://{host}{path}</loc></url>\n"));
    }
    body.push_str("</urlset>\n");
    ([(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string()
}

async fn home(State(inner): State<Arc<Inner>>) -> Response {
    let mut list = String::new();
    for (path, page) in inner
        .pages
        .iter()
        .filter(|(_, p)| p.kind == PageKind::Article)
    {
        list.push_str(&format!(
            "<li class=\"teaser\"><a href=\"{path}\">{}</a><p>{}</p></li>\n",
            escape(&page.title),
            escape(
                page.paragraphs
                    .first()
                    .map(String::as_str)
                    .unwrap_or_default()
            )
        ));
    }
    let body = format!(
        "<section class=\"front\"><h1>Latest from {name}</h1><ul class=\"teasers\">{list}</ul></section>",
        name = escape(&inner.config.name)
    );
    html(&inner, &inner.config.name, &body)
}

async fn page(State(inner): State<Arc<Inner>>, Path(path): Path<String>) -> Response {
    let path = format!("/{path}");
    if path.starts_with("/private/") {
        return html(
            &inner,
            "Your account",
            "<h1>Your account</h1><p>Private area.</p>",
        );
    }
    let Some(page) = inner.pages.get(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let views = inner.views.fetch_add(7, Ordering::Relaxed);
    let secs = inner.started.elapsed().as_secs();
    let mut main = format!("<article><h1>{}</h1>\n", escape(&page.title));
    // The dynamic line: differs on every fetch, as real pages' counters and timestamps do.
    main.push_str(&format!(
        "<p class=\"meta\">Updated {} minutes ago · {} views</p>\n",
        secs / 60 + 1,
        views
    ));
    for p in &page.paragraphs {
        main.push_str(&format!("<p>{}</p>\n", escape(p)));
    }
    main.push_str("</article>\n");
    main.push_str(&format!(
        "<aside class=\"ad-slot\"><a href=\"/ads/{}\">Sponsored: offer number {} — click now!</a></aside>\n",
        views % 5,
        views % 97
    ));
    main.push_str(
        "<div class=\"share-bar\"><a href=\"/share/fb\">Share</a> <a href=\"/share/tw\">Tweet</a> <a href=\"/share/mail\">Email</a></div>\n",
    );
    if !page.related.is_empty() {
        main.push_str("<aside class=\"related\"><h3>Related stories</h3><ul>");
        for r in &page.related {
            main.push_str(&format!(
                "<li><a href=\"{r}\">{}</a></li>",
                escape(&title_of(&inner, r))
            ));
        }
        main.push_str("</ul></aside>\n");
    }
    if !page.comments.is_empty() {
        let class = if page.kind == PageKind::Thread {
            "posts"
        } else {
            "comments"
        };
        main.push_str(&format!("<section class=\"{class}\"><h3>Comments</h3>"));
        for (who, text) in &page.comments {
            main.push_str(&format!(
                "<div class=\"comment\"><span class=\"author\">{}</span><p>{}</p></div>",
                escape(who),
                escape(text)
            ));
        }
        main.push_str("</section>\n");
    }
    html(&inner, &page.title, &main)
}

fn title_of(inner: &Inner, path: &str) -> String {
    inner
        .pages
        .get(path)
        .map(|p| p.title.clone())
        .unwrap_or_default()
}

fn html(inner: &Inner, title: &str, main: &str) -> Response {
    let name = escape(&inner.config.name);
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} | {name}</title>
<meta property="og:title" content="{title}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css"><script src="/static/app.js"></script>
</head><body>
<div id="cookie-consent" class="cookie-banner">We use cookies to improve your experience. <button>Accept all</button> <a href="/privacy">Privacy policy</a></div>
<header class="site-header"><a class="logo" href="/">{name}</a>
<nav class="main-nav"><ul><li><a href="/">Home</a></li><li><a href="/news/">News</a></li><li><a href="/forum/">Forum</a></li><li><a href="/about">About us</a></li><li><a href="/contact">Contact</a></li></ul></nav></header>
<main id="content">
{main}
</main>
<footer class="site-footer"><p>© 2026 {name}. All rights reserved.</p><ul><li><a href="/terms">Terms of use</a></li><li><a href="/privacy">Privacy</a></li><li><a href="/careers">Careers</a></li></ul></footer>
</body></html>"#,
        title = escape(title),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// splitmix64: a tiny, well-known deterministic generator; enough for generating text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const SUBJECTS: &[&str] = &[
    "The city council",
    "A local bakery",
    "The river authority",
    "Our school board",
    "A group of volunteers",
    "The new library",
    "Farmers in the valley",
    "The hospital staff",
    "A young engineer",
    "The football club",
    "Researchers at the university",
    "The mayor",
    "Shop owners on Main Street",
    "The fire brigade",
    "A retired teacher",
    "The museum",
    "Residents of the old quarter",
    "The bus company",
    "A family of beekeepers",
    "The harbour master",
    "The regional court",
    "A small theatre company",
    "Nurses from the clinic",
    "The tourist office",
    "A cycling club",
    "The water utility",
    "Parents at the primary school",
    "The chamber of commerce",
    "A veteran journalist",
    "Two local architects",
];
const VERBS: &[&str] = &[
    "announced",
    "questioned",
    "celebrated",
    "rebuilt",
    "discussed",
    "planned",
    "opened",
    "repaired",
    "funded",
    "delayed",
    "measured",
    "proposed",
    "reviewed",
    "welcomed",
    "explained",
    "organised",
    "restored",
    "criticised",
    "supported",
    "studied",
    "defended",
    "postponed",
    "approved",
    "inspected",
    "documented",
    "challenged",
    "launched",
    "expanded",
    "simplified",
    "rejected",
];
const OBJECTS: &[&str] = &[
    "a plan for the northern bridge",
    "the budget for next year",
    "the flooded cycle path",
    "a festival of winter music",
    "the cost of school meals",
    "new opening hours for the pool",
    "a study of air quality near the station",
    "the restoration of the clock tower",
    "a scheme to plant two thousand trees",
    "the rules for parking in the centre",
    "an exhibition of local photography",
    "the safety of the old pier",
    "a market for regional produce",
    "the route of the new tram line",
    "a programme of evening classes",
    "the future of the town hall",
    "a survey of nesting birds",
    "the price of fresh bread",
    "a shelter for homeless families",
    "the noise from the motorway",
    "a repair fund for village roofs",
    "the timetable of the night buses",
    "an archive of wartime letters",
    "the lighting along the canal",
    "a garden on the hospital roof",
    "the merger of two small schools",
    "a registry of empty shops",
    "the care of ancient oak trees",
    "a new dental practice",
    "the drainage of the lower meadows",
    "an app for reporting potholes",
    "the renovation of the swimming baths",
    "a summer camp for teenagers",
    "the heating of public buildings",
    "a course in first aid",
    "the mapping of old footpaths",
    "a loan scheme for farm machinery",
    "the reopening of the cinema",
    "a competition for young painters",
    "the cleaning of the harbour basin",
    "a shuttle service to the airport",
    "the protection of the marshland",
];
const CLAUSES: &[&str] = &[
    "after months of careful debate",
    "despite strong objections from neighbours",
    "with the help of dozens of residents",
    "because the old arrangement had failed",
    "while critics asked who would pay for it",
    "in a meeting that lasted until midnight",
    "as the weather turned colder",
    "to the surprise of many observers",
    "following a petition signed by hundreds",
    "even though the details remain unclear",
    "so that children can walk to school safely",
    "and the first results are expected in spring",
    "which has divided opinion across the district",
    "after a report found serious problems",
    "at a cost that few had predicted",
    "once the insurance question was settled",
    "before the election campaign began",
    "without waiting for national funding",
    "thanks to an anonymous donation",
    "under pressure from local businesses",
    "with support from the neighbouring towns",
    "although several members abstained",
    "in time for the busy holiday season",
    "after engineers raised fresh doubts",
    "on the advice of an independent panel",
];
const TIMES: &[&str] = &[
    "On Tuesday morning",
    "Late last week",
    "Earlier this month",
    "Over the weekend",
    "In early October",
    "Shortly after noon",
    "During the summer",
    "On Friday evening",
    "Two years ago",
    "Last spring",
    "At the end of January",
    "Within a few hours",
];
const PLACES: &[&str] = &[
    "the market square",
    "the east bank",
    "the old mill district",
    "the harbour front",
    "the station area",
    "the northern suburbs",
    "the hill villages",
    "the university quarter",
    "the industrial estate",
    "the cathedral close",
    "the lakeside park",
    "the western ring road",
];
const QUOTES: &[&str] = &[
    "We have waited a long time for this, and it matters to every family here",
    "It is not perfect, but it is a real step in the right direction",
    "Nobody asked us what we thought, and that is the part that worries me",
    "The numbers simply do not add up, and the public deserves an honest answer",
    "I am proud of what this community has built together over the years",
    "We will keep watching closely to make sure that the promises are kept",
    "Our members want clear answers before anything else is decided",
    "This is the kind of change people notice in their daily lives",
    "We learned a great deal from the mistakes of the previous scheme",
    "Frankly, the timing could hardly have been worse for small traders",
    "Young people here deserve better than empty promises",
    "It took courage to admit that the first design was wrong",
];
const NAMES: &[&str] = &[
    "Maria Lopez",
    "Tom Becker",
    "Aisha Khan",
    "Jonas Berg",
    "Elena Rossi",
    "Samuel Okafor",
    "Hannah Weiss",
    "Lucas Martin",
    "Priya Nair",
    "Oliver Grant",
    "Chloe Dubois",
    "Mateo Silva",
    "Ingrid Holm",
    "Yusuf Demir",
];

/// Deals phrases without replacement within one document, so no phrase repeats in it (as real
/// prose rarely repeats a whole clause); a list is reshuffled only when used up.
struct Deck<'a> {
    items: Vec<&'a str>,
    source: &'a [&'a str],
}

impl<'a> Deck<'a> {
    fn new(source: &'a [&'a str]) -> Self {
        Deck {
            items: Vec::new(),
            source,
        }
    }

    fn deal(&mut self, rng: &mut Rng) -> &'a str {
        if self.items.is_empty() {
            self.items = self.source.to_vec();
        }
        let i = rng.below(self.items.len());
        self.items.swap_remove(i)
    }
}

/// The phrase decks of one document.
struct Writer<'a> {
    subjects: Deck<'a>,
    verbs: Deck<'a>,
    objects: Deck<'a>,
    clauses: Deck<'a>,
    times: Deck<'a>,
    places: Deck<'a>,
    quotes: Deck<'a>,
    names: Deck<'a>,
}

impl Writer<'static> {
    fn new() -> Self {
        Writer {
            subjects: Deck::new(SUBJECTS),
            verbs: Deck::new(VERBS),
            objects: Deck::new(OBJECTS),
            clauses: Deck::new(CLAUSES),
            times: Deck::new(TIMES),
            places: Deck::new(PLACES),
            quotes: Deck::new(QUOTES),
            names: Deck::new(NAMES),
        }
    }

    fn sentence(&mut self, rng: &mut Rng) -> String {
        let lower = |s: &str| {
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_lowercase().chain(c).collect::<String>())
                .unwrap_or_default()
        };
        match rng.below(6) {
            0 => format!(
                "\"{}\", said {}.",
                self.quotes.deal(rng),
                self.names.deal(rng)
            ),
            1 => format!(
                "{}, {} {} {}.",
                self.times.deal(rng),
                lower(self.subjects.deal(rng)),
                self.verbs.deal(rng),
                self.objects.deal(rng)
            ),
            2 => format!(
                "According to {}, {} {} {} {}.",
                self.names.deal(rng),
                lower(self.subjects.deal(rng)),
                self.verbs.deal(rng),
                self.objects.deal(rng),
                self.clauses.deal(rng)
            ),
            3 => format!(
                "{} also {} {} near {}.",
                self.subjects.deal(rng),
                self.verbs.deal(rng),
                self.objects.deal(rng),
                self.places.deal(rng)
            ),
            _ => format!(
                "{} {} {} {}.",
                self.subjects.deal(rng),
                self.verbs.deal(rng),
                self.objects.deal(rng),
                self.clauses.deal(rng)
            ),
        }
    }

    fn paragraph(&mut self, rng: &mut Rng, min_sentences: usize) -> String {
        let sentences = min_sentences + rng.below(2);
        (0..sentences)
            .map(|_| self.sentence(rng))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn title(&mut self, rng: &mut Rng) -> String {
        format!(
            "{} {} {}",
            self.subjects.deal(rng),
            self.verbs.deal(rng),
            self.objects.deal(rng)
        )
    }
}

fn generate(config: &SiteConfig) -> BTreeMap<String, Page> {
    let mut rng = Rng(config.seed);
    let mut pages = BTreeMap::new();
    let article_paths: Vec<String> = (0..config.articles)
        .map(|i| format!("/news/story-{:03}", i + 1))
        .collect();
    for (i, path) in article_paths.iter().enumerate() {
        let mut w = Writer::new();
        let title = w.title(&mut rng);
        let paragraphs = (0..4 + rng.below(3))
            .map(|_| w.paragraph(&mut rng, 3))
            .collect();
        let related = (1..=3)
            .map(|k| article_paths[(i + k * 5) % article_paths.len()].clone())
            .collect();
        let comments = (0..rng.below(4))
            .map(|_| {
                (
                    rng.pick(NAMES).to_string(),
                    format!("{}.", rng.pick(QUOTES)),
                )
            })
            .collect();
        pages.insert(
            path.clone(),
            Page {
                title,
                kind: PageKind::Article,
                paragraphs,
                related,
                comments,
            },
        );
    }
    for i in 0..config.threads {
        let mut w = Writer::new();
        let title = format!(
            "Forum: what do you think about {}?",
            w.objects.deal(&mut rng)
        );
        let posts: Vec<(String, String)> = (0..4 + rng.below(3))
            .map(|_| (w.names.deal(&mut rng).to_string(), w.paragraph(&mut rng, 2)))
            .collect();
        let paragraphs = posts
            .iter()
            .map(|(who, text)| format!("{who} wrote: {text}"))
            .collect();
        pages.insert(
            format!("/forum/thread-{}", i + 1),
            Page {
                title,
                kind: PageKind::Thread,
                paragraphs,
                related: Vec::new(),
                comments: Vec::new(),
            },
        );
    }
    for i in 0..config.thin {
        pages.insert(
            format!("/notes/short-{}", i + 1),
            Page {
                title: format!("Note {}", i + 1),
                kind: PageKind::Thin,
                paragraphs: vec!["Closed today.".to_string()],
                related: Vec::new(),
                comments: Vec::new(),
            },
        );
    }
    for (i, path) in article_paths.iter().take(config.duplicates).enumerate() {
        if let Some(original) = pages.get(path).cloned() {
            pages.insert(format!("/archive/story-{:03}", i + 1), original);
        }
    }
    pages
}

/// A plausible article that no website serves: what a dishonest node invents instead of fetching.
/// It reads like the sample site's pages, so only a comparison with a real fetch can tell.
pub fn fabricated_article(seed: u64) -> (String, String) {
    let mut rng = Rng(seed ^ 0xFAB1_CA7E);
    let mut w = Writer::new();
    let title = w.title(&mut rng);
    let text = (0..5)
        .map(|_| w.paragraph(&mut rng, 3))
        .collect::<Vec<_>>()
        .join("\n\n");
    (title, text)
}
