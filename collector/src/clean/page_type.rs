//! Page-type guess from generic page features: structured data (`JSON-LD @type`, `og:type`),
//! URL path words, and DOM counts (code blocks, price markup, article elements).
//!
//! The guess is cheap and coarse; extraction uses it only to decide whether comments are
//! content (forums) and whether link lists are content (listings, collections).

use serde::{Deserialize, Serialize};

use super::dom::Dom;

/// What kind of page this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageType {
    Article,
    Forum,
    Product,
    Listing,
    Documentation,
    Service,
    Collection,
    Other,
}

/// Count of `<pre>`/`<code>` elements from which a page reads as documentation.
const DOC_CODE_BLOCKS: u32 = 4;

/// Count of `<article>` elements from which a page is a list of teasers, not one article.
const LISTING_ARTICLES: u32 = 4;

/// Guess the page type.
pub(crate) fn guess(dom: &Dom<'_>, base_url: Option<&str>) -> PageType {
    let facts = &dom.facts;
    let mut ld = String::new();
    for j in &facts.json_ld {
        ld.push_str(&j.to_ascii_lowercase());
    }
    let has_ld = |t: &str| {
        ld.contains(&format!("\"@type\":\"{t}\"")) || ld.contains(&format!("\"@type\": \"{t}\""))
    };
    let og_type = facts
        .metas
        .iter()
        .find(|(k, _)| k == "og:type")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let path = base_url
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.path().to_ascii_lowercase())
        .unwrap_or_default();
    let path_has = |words: &[&str]| words.iter().any(|w| path.contains(w));

    if has_ld("discussionforumposting")
        || has_ld("qapage")
        || path_has(&[
            "/forum",
            "/thread",
            "/t/",
            "/topic",
            "/questions/",
            "/community",
            "/discussion",
        ])
    {
        return PageType::Forum;
    }
    if has_ld("product")
        || og_type.contains("product")
        || path_has(&["/product/", "/products/", "/p/", "/dp/", "/item/"])
    {
        return PageType::Product;
    }
    if has_ld("techarticle")
        || has_ld("apireference")
        || path_has(&[
            "/docs",
            "/documentation",
            "/api/",
            "/reference/",
            "/manual",
            "/guide/",
            "/kb/",
            "/help/",
        ])
        || facts.code_blocks >= DOC_CODE_BLOCKS
    {
        return PageType::Documentation;
    }
    if has_ld("collectionpage")
        || path_has(&[
            "/collections/",
            "/collection/",
            "/category/",
            "/shop/",
            "/c/",
        ])
    {
        return PageType::Collection;
    }
    if has_ld("itemlist") || facts.articles >= LISTING_ARTICLES {
        return PageType::Listing;
    }
    if has_ld("newsarticle")
        || has_ld("blogposting")
        || has_ld("article")
        || og_type == "article"
        || facts.articles > 0
    {
        return PageType::Article;
    }
    if has_ld("service") || path_has(&["/services", "/service/", "/pricing", "/plans"]) {
        return PageType::Service;
    }
    if facts.price_hints > 0 || facts.cart_hints > 0 {
        return PageType::Product;
    }
    PageType::Other
}
