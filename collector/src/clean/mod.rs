//! Main-content extraction (the cleaner). Pure: no I/O, no async runtime.
//!
//! [`clean`] turns one HTML page into its title, main text, language, page type, outlinks and
//! meta-robots directives.
//!
//! Pipeline (one parse, then a few linear passes, no recursion over DOM depth):
//! 0. [`guard::limit_depth`]: drop start tags nested deeper than the parser handles cheaply.
//! 1. [`dom::build`]: parse with `scraper` (html5ever) and flatten the tree into a pre-order
//!    arena with per-subtree text statistics and tag/class hints, collecting `<head>` facts.
//! 2. [`page_type::guess`]: coarse page type from structured data, URL words and DOM counts.
//! 3. [`select::prune`] + [`select::choose_root`]: remove boilerplate subtrees, pick the main
//!    content root.
//! 4. [`text::emit`]: write the surviving text under the root with paragraph/line breaks.
//! 5. Fallback: when that yields too little, a second pass without class/id hints rooted at
//!    `<body>`, keeping the longer result.
//!
//! **Architecture invariant:** the cleaner never re-serialises HTML and never recurses over the
//! DOM; its cost is bounded by [`MAX_INPUT_BYTES`] of input.

mod dom;
mod guard;
mod hints;
mod lang;
mod meta;
mod page_type;
mod select;
mod text;

use serde::Serialize;

pub use meta::{MAX_OUTLINKS, MetaRobots};
pub use page_type::PageType;

/// The cleaned page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cleaned {
    pub title: String,
    /// Main text; paragraphs separated by "\n\n", lines inside a block by "\n".
    pub text: String,
    /// ISO 639-1 code ("en"), or "und" when unknown.
    pub lang: String,
    /// Detector confidence 0..=1.
    pub lang_score: f64,
    pub page_type: PageType,
    /// Absolute http(s) links in the page, deduplicated, fragment removed, at most
    /// [`MAX_OUTLINKS`]. Not part of `text`.
    pub outlinks: Vec<String>,
    pub robots: MetaRobots,
}

/// Input beyond this many bytes is ignored. Real pages are well under it (the benchmark's
/// largest is about 3 MB); it bounds parse time and memory for hostile input.
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;

/// A first pass yielding fewer non-whitespace characters than this is considered failed, and
/// the fallback pass runs.
const MIN_TEXT_CHARS: u32 = 250;

/// Extract the main content of `html`. `base_url` (the page's URL) resolves relative links.
pub fn clean(html: &str, base_url: Option<&str>) -> Cleaned {
    let html = guard::limit_depth(cut(html, MAX_INPUT_BYTES));
    let doc = scraper::Html::parse_document(&html);
    let mut dom = dom::build(&doc);
    let page_type = page_type::guess(&dom, base_url);

    let cfg = select::Config {
        drop_comments: page_type != PageType::Forum,
        use_attr_hints: true,
    };
    select::prune(&mut dom, cfg);
    let (title, title_h1) = meta::title(&dom);
    let drop_link_blocks = !matches!(page_type, PageType::Listing | PageType::Collection);
    let root = select::choose_root(&dom);
    let mut text = text::emit(
        &dom,
        root,
        text::Emit {
            drop_link_blocks,
            skip: title_h1,
        },
    );

    let root_chars = dom.items.get(root).map_or(0, |r| r.good.chars);
    if root_chars < MIN_TEXT_CHARS {
        let cfg = select::Config {
            drop_comments: false,
            use_attr_hints: false,
        };
        select::prune(&mut dom, cfg);
        let body = dom.facts.body.map_or(0, |b| b as usize);
        let fallback = text::emit(
            &dom,
            body,
            text::Emit {
                drop_link_blocks: false,
                skip: title_h1,
            },
        );
        if fallback.len() > text.len() {
            text = fallback;
        }
    }

    let (lang, lang_score) = lang::detect(&text, &title, &dom.facts);
    let outlinks = meta::outlinks(&dom.facts, base_url);
    let robots = meta::robots(&dom.facts);
    Cleaned {
        title,
        text,
        lang,
        lang_score,
        page_type,
        outlinks,
        robots,
    }
}

/// Cut `s` to at most `max` bytes at a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
