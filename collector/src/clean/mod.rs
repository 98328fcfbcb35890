//! Main-content extraction (the cleaner). Pure: no I/O, no async runtime.
//!
//! [`clean`] turns one HTML page into its title, main text, language, page type, outlinks and
//! meta-robots directives.
//!
//! Pipeline (one parse, then a few linear passes, no recursion over DOM depth):
//! 0. `guard::prepare`: cut out what no later pass reads (script and style bodies, SVG
//!    bodies, attributes outside `hints::READ_ATTRIBUTES`) and drop start tags nested deeper
//!    than the parser handles cheaply.
//! 1. `dom::build`: parse with `scraper` (html5ever) and flatten the tree into a pre-order
//!    arena with per-subtree text statistics and tag/class hints, collecting `<head>` facts.
//! 2. `page_type::guess`: coarse page type from structured data, URL words and DOM counts.
//! 3. `select::prune` + `select::choose_root`: remove boilerplate subtrees, pick the main
//!    content root.
//! 4. `text::emit`: write the surviving text under the root with paragraph/line breaks; a
//!    paragraph repeating an earlier one (responsive pages carry blocks twice) is written once.
//! 5. Fallback: when that yields too little, a second pass without class/id hints rooted at
//!    `<body>`, dropping link blocks and comment sections when enough text remains (and the
//!    headings left alone above a dropped block), keeping the longer result.
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

use crate::util::cut;

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

/// The extraction thresholds. [`Tuning::DEFAULT`] is what [`clean`] uses; the benchmark
/// harness varies them to measure their effect. Not a stable API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// A subtree holding at least this share of the body's text is never removed by class/id
    /// hints (a "boilerplate" class on it is likely a mislabelled wrapper). 0 disables.
    pub protect_share: f64,
    /// Protection by share applies only to blocks whose link density is below this.
    pub protect_max_link_density: f64,
    /// Keep the text of elements hidden only by the `hidden` attribute (collapsed accordions,
    /// inactive tabs).
    pub keep_collapsed: bool,
    /// Remove customer reviews on product pages.
    pub drop_reviews: bool,
    /// On product pages, link blocks are dropped even when that leaves little text.
    pub product_drops_links: bool,
    /// Descend into a child holding at least this share of the root's non-link text.
    pub descend_share: f64,
    /// Jump to the largest `main`/`article` when it holds this share of the body's text.
    pub main_share: f64,
    /// A first pass yielding fewer non-whitespace characters runs the fallback pass.
    pub min_text_chars: u32,
    /// A block with at least this share of link text is a link list and dropped.
    pub link_block_density: f64,
    /// When dropping link blocks would leave less than this share of the root's text, the
    /// links are the content (a listing, a product grid) and are kept.
    pub link_keep_share: f64,
    /// Leave the `<h1>` that became the title out of the text.
    pub skip_title_h1: bool,
    /// A block with at least this many short links and almost no other text is a menu. 0
    /// disables.
    pub nav_min_links: u32,
    /// A block with several form controls and at most this many characters per control is a
    /// filter panel or form. 0 disables.
    pub control_chars: u32,
    /// Repeated paragraphs of at least this many bytes are written once. 0 disables.
    pub dedup_min: usize,
    /// A hidden element that holds the page's `main`/`article` or `<h1>` and most of its text
    /// (see `protect_share`) is kept: it is the page, hidden until a script reveals it
    /// (anti-flicker, access gates).
    pub keep_hidden_main: bool,
    /// Remove blocks headed "Customers also viewed", "You may also like" and the like.
    pub rec_headings: bool,
    /// A boilerplate class word on an element is ignored when elements of the same tag and
    /// class occur at least this often and together hold `repeat_share` of the body's text:
    /// they are parts of list items. 0 disables.
    pub repeat_min: u32,
    /// See `repeat_min`.
    pub repeat_share: f64,
    /// The fallback pass drops link blocks when that keeps at least `link_keep_share` of its
    /// text (the whole body's menus and link columns), as the first pass does.
    pub fallback_links: bool,
    /// The fallback pass drops comment sections like the first pass (all pages but forums):
    /// a short article whose first pass falls under `min_text_chars` must not gain its
    /// comments from the fallback.
    pub fallback_comments: bool,
    /// When dropping comment sections in the fallback leaves less than this share of its
    /// text, the comments are the content (a thread the type guess missed) and stay.
    pub comment_keep_share: f64,
    /// Remove screen-reader-only text (`sr-only`, `visually-hidden`, `clipped`...) in both
    /// passes, not only as a boilerplate class word in the first.
    pub drop_screen_reader: bool,
    /// In the fallback pass, leave out a heading whose section lost everything after it (a
    /// link list dropped). Not in the first pass: references keep such headings there.
    pub drop_orphan_headings: bool,
    /// `descend_share` on pages not guessed as articles or forums (products, collections,
    /// services, documentation...): their main text is split into sibling sections
    /// (description, details, shipping; intro and grid), so the root stays higher. Articles
    /// and forums keep `descend_share`: their neighbouring blocks are comments and teasers.
    pub descend_share_other: f64,
    /// `keep_hidden_main` also when the hidden element holds most of the body's text outside
    /// links (menus can hold most of a shop page's characters).
    pub hidden_main_plain: bool,
    /// A `hidden` class word (`hidden`, `is-hidden`, `hide`, `d-none`) hides the element like
    /// `display:none`, instead of being one more boilerplate word that a big block overrides:
    /// 0 never, 1 on pages guessed as products or collections (shop themes hide promo bars,
    /// comparison drawers and quick-view panels that way), 2 also on `Other`, 3 always. Not
    /// on articles, services and forums: their collapsed FAQ answers and tabs carry the class
    /// and are content.
    pub hidden_class_hides: u8,
    /// On shop-like pages, a text node that is only a call-to-action label ("Add to cart",
    /// "Quick view", "Choose options", "Sold out") is left out: product cards repeat them.
    pub drop_cta: bool,
    /// An element hidden by style or attribute (not by a class word) that holds half the
    /// body's text outside links is kept even without an `<h1>` or `main` inside (a product
    /// grid hidden until a script runs).
    pub hidden_big: bool,
    /// Use this page type instead of the guess (benchmark diagnosis only).
    pub force_type: Option<PageType>,
}

impl Tuning {
    /// Values measured on the WCXB development split (see `benches/clean.rs`).
    pub const DEFAULT: Tuning = Tuning {
        protect_share: 0.5,
        protect_max_link_density: 0.5,
        keep_collapsed: true,
        drop_reviews: true,
        product_drops_links: false,
        descend_share: 0.8,
        main_share: 0.4,
        min_text_chars: 600,
        link_block_density: 0.7,
        link_keep_share: 0.5,
        skip_title_h1: true,
        nav_min_links: 10,
        control_chars: 40,
        dedup_min: 20,
        keep_hidden_main: true,
        force_type: None,
        rec_headings: true,
        repeat_min: 4,
        repeat_share: 0.1,
        fallback_links: true,
        fallback_comments: true,
        comment_keep_share: 0.5,
        drop_screen_reader: true,
        drop_orphan_headings: true,
        descend_share_other: 0.95,
        hidden_main_plain: true,
        hidden_class_hides: 1,
        drop_cta: true,
        hidden_big: true,
    };
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning::DEFAULT
    }
}

/// Extract the main content of `html`. `base_url` (the page's URL) resolves relative links.
pub fn clean(html: &str, base_url: Option<&str>) -> Cleaned {
    clean_tuned(html, base_url, &Tuning::DEFAULT)
}

/// Parse with scripting disabled, so that `<noscript>` content (often the whole server-rendered
/// page on JavaScript-heavy sites) is parsed as markup rather than as one text blob.
fn parse(html: &str) -> scraper::Html {
    use html5ever::tendril::TendrilSink;
    let mut opts = html5ever::ParseOpts::default();
    opts.tree_builder.scripting_enabled = false;
    html5ever::driver::parse_document(
        scraper::HtmlTreeSink::new(scraper::Html::new_document()),
        opts,
    )
    .one(html)
}

/// [`clean`] with explicit thresholds.
#[doc(hidden)]
pub fn clean_tuned(html: &str, base_url: Option<&str>, tuning: &Tuning) -> Cleaned {
    let html = guard::prepare(cut(html, MAX_INPUT_BYTES));
    let doc = parse(&html);
    let mut dom = dom::build(&doc);
    let page_type = tuning
        .force_type
        .unwrap_or_else(|| page_type::guess(&dom, base_url));

    let cfg = hint_pass(tuning, page_type);
    select::prune(&mut dom, cfg);
    let (title, title_h1) = meta::title(&dom);
    let title_h1 = title_h1.filter(|_| tuning.skip_title_h1);
    let emit = text::Emit {
        // On listings and collections the links are the content.
        drop_link_blocks: !matches!(page_type, PageType::Listing | PageType::Collection),
        link_block_density: tuning.link_block_density,
        skip: title_h1,
        dedup_min: tuning.dedup_min,
        drop_orphan_headings: false,
    };
    let root = select::choose_root(&dom, tuning.main_share, descend_share(tuning, page_type));
    // Product pages keep dropping: their link-dense blocks are recommendation grids.
    let mut text = if page_type == PageType::Product && tuning.product_drops_links {
        text::emit(&dom, root, emit)
    } else {
        emit_dropping_links(&dom, root, emit, tuning.link_keep_share)
    };

    // Fallback: the hint-driven pass found too little; take the whole body with only
    // structural boilerplate removed, if that is longer. Its menus and link columns go as in
    // the first pass, unless the links are most of the text (a listing); so do its comment
    // sections, unless they are most of the text (a thread the type guess missed).
    let root_chars = dom.items.get(root).map_or(0, |r| r.good.chars);
    if root_chars < tuning.min_text_chars {
        let keep_comments = select::Config {
            drop_comments: false,
            use_attr_hints: false,
            ..cfg
        };
        if cfg.drop_comments && tuning.fallback_comments {
            select::prune(&mut dom, keep_comments);
            let with_comments = body_chars(&dom);
            select::prune(
                &mut dom,
                select::Config {
                    drop_comments: true,
                    ..keep_comments
                },
            );
            if f64::from(body_chars(&dom)) < f64::from(with_comments) * tuning.comment_keep_share {
                select::prune(&mut dom, keep_comments);
            }
        } else {
            select::prune(&mut dom, keep_comments);
        }
        let body = dom.facts.body.map_or(0, |b| b as usize);
        let fallback_emit = text::Emit {
            drop_link_blocks: emit.drop_link_blocks && tuning.fallback_links,
            drop_orphan_headings: tuning.drop_orphan_headings,
            ..emit
        };
        let fallback = emit_dropping_links(&dom, body, fallback_emit, tuning.link_keep_share);
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

/// Surviving (not removed) text characters under `<body>`.
fn body_chars(dom: &dom::Dom<'_>) -> u32 {
    dom.facts
        .body
        .and_then(|b| dom.items.get(b as usize))
        .map_or(0, |b| b.good.chars)
}

/// The share of its parent's text a child needs for the root to descend into it, on a page
/// of `page_type` (see [`Tuning::descend_share_other`]).
fn descend_share(tuning: &Tuning, page_type: PageType) -> f64 {
    match page_type {
        PageType::Article | PageType::Forum => tuning.descend_share,
        _ => tuning.descend_share_other,
    }
}

/// The boilerplate rules of the first, hint-driven pass for a page of `page_type`.
fn hint_pass(tuning: &Tuning, page_type: PageType) -> select::Config {
    select::Config {
        keep_hidden_main: tuning.keep_hidden_main,
        rec_headings: tuning.rec_headings,
        repeat_min: tuning.repeat_min,
        repeat_share: tuning.repeat_share,
        drop_comments: page_type != PageType::Forum,
        use_attr_hints: true,
        protect_share: tuning.protect_share,
        keep_collapsed: tuning.keep_collapsed,
        drop_reviews: tuning.drop_reviews && page_type == PageType::Product,
        protect_max_link_density: tuning.protect_max_link_density,
        nav_min_links: tuning.nav_min_links,
        control_chars: tuning.control_chars,
        drop_screen_reader: tuning.drop_screen_reader,
        hidden_main_plain: tuning.hidden_main_plain,
        hidden_class_hides: match tuning.hidden_class_hides {
            0 => false,
            1 => matches!(page_type, PageType::Product | PageType::Collection),
            2 => matches!(
                page_type,
                PageType::Product | PageType::Collection | PageType::Other
            ),
            _ => true,
        },
        shop_rules: !matches!(
            page_type,
            PageType::Article | PageType::Forum | PageType::Documentation
        ),
        drop_cta: tuning.drop_cta,
        hidden_big: tuning.hidden_big,
    }
}

/// The text under `at`, its link blocks dropped (when `emit.drop_link_blocks`) unless that keeps
/// less than `keep_share` of the text: then the links are the content (a listing) and stay.
fn emit_dropping_links(dom: &dom::Dom<'_>, at: usize, emit: text::Emit, keep_share: f64) -> String {
    let text = text::emit(dom, at, emit);
    if !emit.drop_link_blocks {
        return text;
    }
    let chars = dom.items.get(at).map_or(0, |r| r.good.chars);
    let kept = text.chars().filter(|c| !c.is_whitespace()).count();
    if (kept as f64) >= f64::from(chars) * keep_share {
        return text;
    }
    text::emit(
        dom,
        at,
        text::Emit {
            drop_link_blocks: false,
            ..emit
        },
    )
}

/// Diagnosis for the benchmark harness: the page type, the chosen root, and for the first text
/// node containing `needle` (case-insensitive) its ancestor chain with each element's hints,
/// statistics and whether it was removed. Not a stable API.
#[doc(hidden)]
pub fn explain(html: &str, base_url: Option<&str>, needle: &str) -> String {
    use std::fmt::Write as _;
    let tuning = Tuning::DEFAULT;
    let html = guard::prepare(cut(html, MAX_INPUT_BYTES));
    let doc = parse(&html);
    let mut dom = dom::build(&doc);
    let page_type = page_type::guess(&dom, base_url);
    let cfg = hint_pass(&tuning, page_type);
    select::prune(&mut dom, cfg);
    let root = select::choose_root(&dom, tuning.main_share, descend_share(&tuning, page_type));
    let mut out = String::new();
    let _ = writeln!(out, "type {page_type:?}, root {root}");
    let needle = needle.to_lowercase();
    let hit = dom.items.iter().position(|it| match it.kind {
        dom::Kind::Text(t) => t.to_lowercase().contains(&needle),
        dom::Kind::Elem(_) => false,
    });
    let Some(mut i) = hit else {
        out.push_str("needle not found\n");
        return out;
    };
    while let Some(it) = dom.items.get(i) {
        let attrs = match it.kind {
            dom::Kind::Elem(el) => format!(
                "class={:?} id={:?}",
                text::cut_chars(el.attr("class").unwrap_or(""), 60),
                el.attr("id").unwrap_or("")
            ),
            dom::Kind::Text(t) => format!("{:?}", text::cut_chars(t, 60)),
        };
        let _ = writeln!(
            out,
            "{i:>6} {:<8} removed={} {:?} {:?} raw={}/{}l/{}p good={}/{}l {attrs}",
            it.tag,
            it.removed,
            it.tag_class,
            it.hint,
            it.raw.chars,
            it.raw.link_chars,
            it.raw.links,
            it.good.chars,
            it.good.link_chars,
        );
        if it.parent == dom::NO_PARENT {
            break;
        }
        i = it.parent as usize;
    }
    out
}
