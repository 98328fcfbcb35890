//! Page metadata: title, meta robots and outlinks.

use std::collections::HashSet;

use serde::Serialize;
use url::Url;

use super::dom::{Dom, Facts};
use super::text;

/// `<meta name="robots">` / `<meta name="googlebot">` directives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MetaRobots {
    pub noindex: bool,
    pub nofollow: bool,
}

/// At most this many outlinks are kept: enough for crawl discovery, bounded for giant
/// link farms.
pub const MAX_OUTLINKS: usize = 1000;

/// A title longer than this (characters) is cut: real titles are far shorter, and the
/// record should not carry a megabyte of attribute junk.
const MAX_TITLE_CHARS: usize = 300;

/// Parse robots directives.
pub(crate) fn robots(facts: &Facts<'_>) -> MetaRobots {
    let mut r = MetaRobots::default();
    for (k, v) in &facts.metas {
        if k != "robots" && k != "googlebot" {
            continue;
        }
        for d in v.split([',', ' ']).map(str::trim).filter(|d| !d.is_empty()) {
            if d.eq_ignore_ascii_case("noindex") {
                r.noindex = true;
            } else if d.eq_ignore_ascii_case("nofollow") {
                r.nofollow = true;
            } else if d.eq_ignore_ascii_case("none") {
                r.noindex = true;
                r.nofollow = true;
            }
        }
    }
    r
}

fn meta<'a>(facts: &Facts<'a>, key: &str) -> Option<&'a str> {
    facts.metas.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

fn cap_chars(s: String) -> String {
    let cut = text::cut_chars(&s, MAX_TITLE_CHARS);
    if cut.len() == s.len() {
        s
    } else {
        cut.trim_end().to_string()
    }
}

/// The title, by trust: `og:title`, the first `<h1>`, `<title>`. Also returns the arena index of
/// the first `<h1>` when its text is the title (so the text can leave it out).
pub(crate) fn title(dom: &Dom<'_>) -> (String, Option<usize>) {
    let h1 = dom
        .items
        .iter()
        .position(|it| it.heading == 1 && !it.removed_hidden());
    let h1_text = h1
        .map(|i| text::inline_text(dom, i))
        .filter(|t| !t.is_empty());
    let og = meta(&dom.facts, "og:title")
        .or_else(|| meta(&dom.facts, "twitter:title"))
        .map(text::normalise_inline)
        .filter(|t| !t.is_empty());
    let tag = dom
        .facts
        .title_tag
        .map(text::normalise_inline)
        .filter(|t| !t.is_empty());
    let title = og.or_else(|| h1_text.clone()).or(tag).unwrap_or_default();
    let h1_is_title = match &h1_text {
        Some(h) => similar(h, &title),
        None => false,
    };
    (cap_chars(title), if h1_is_title { h1 } else { None })
}

/// Same title up to case, or one contains the other (og:title often adds " | Site").
fn similar(a: &str, b: &str) -> bool {
    let a = a.to_lowercase();
    let b = b.to_lowercase();
    !a.is_empty() && !b.is_empty() && (a.contains(&b) || b.contains(&a))
}

impl super::dom::Item<'_> {
    fn removed_hidden(&self) -> bool {
        self.hint.hidden
    }
}

/// Absolute http(s) links, fragment removed, deduplicated, capped.
pub(crate) fn outlinks(facts: &Facts<'_>, base_url: Option<&str>) -> Vec<String> {
    let page = base_url.and_then(|u| Url::parse(u).ok());
    let base = match (facts.base_href, &page) {
        (Some(h), Some(p)) => p.join(h.trim()).ok().or_else(|| page.clone()),
        (Some(h), None) => Url::parse(h.trim()).ok(),
        (None, p) => p.clone(),
    };
    let mut seen_raw: HashSet<&str> = HashSet::with_capacity(facts.hrefs.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(facts.hrefs.len());
    let mut out = Vec::new();
    for &href in &facts.hrefs {
        if out.len() >= MAX_OUTLINKS {
            break;
        }
        let href = href.trim();
        if href.is_empty() || href.starts_with('#') || !seen_raw.insert(href) {
            continue;
        }
        let parsed = match &base {
            Some(b) => b.join(href),
            None => Url::parse(href),
        };
        let Ok(mut u) = parsed else { continue };
        if u.scheme() != "http" && u.scheme() != "https" {
            continue;
        }
        u.set_fragment(None);
        let s = String::from(u);
        if seen.insert(s.clone()) {
            out.push(s);
        }
    }
    out
}
