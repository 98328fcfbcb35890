//! Boilerplate decisions and main-content root selection.
//!
//! 1. **Prune.** Top-down over the arena, an element is removed when its tag (`nav`, `footer`,
//!    `aside`, `header`), ARIA role, or `class`/`id` words say boilerplate, or it is hidden
//!    (elements hidden only by the `hidden` attribute — collapsed accordions, inactive tabs —
//!    stay) — unless it is *protected*: it contains the page's `<h1>` or a `main`/`article`
//!    element (page wrappers with classes like `has-sidebar` must survive), or it holds most of
//!    the page's text and is not mostly links (a mega-menu can hold most of a page's text).
//!    Dialogs (`role=dialog`, `aria-modal`) go even when they hold an `<h1>`. Comment sections
//!    are removed only when comments are not the content, customer reviews on product pages.
//!    Screen-reader-only text (`sr-only`, `visually-hidden`, `clipped`) repeats what is shown
//!    and goes in both passes.
//!    In the hint-driven pass, two structural rules also apply: menus outside `<nav>` (many
//!    short links and almost no other text) and filter panels (several form controls, little
//!    text per control) are removed. A hidden element that holds the page's `<h1>` or `main`
//!    and most of its text is the page hidden until a script runs, and stays. A boilerplate
//!    class word repeated on many elements of one template that together hold a good share of
//!    the text ("meta" under every entry) marks parts of list items and is ignored. A block
//!    headed "Customers also viewed", "You may also like" and the like is removed. On pages
//!    guessed as products or collections a `hidden` class word hides like `display:none`;
//!    on shop-like pages, text that is only a call-to-action label ("Add to cart") goes.
//! 2. **Re-count.** Bottom-up, the text statistics of what survives (`good`).
//! 3. **Root.** Start at `<body>`; jump to the largest `main`/`article` if it holds most of
//!    the surviving text; then descend while one child holds nearly all of its parent's
//!    non-link text. Everything that survives under the root is the main content.

use super::dom::{Dom, Item, NO_PARENT};
use super::hints::TagClass;

/// Tuning knobs for one extraction attempt, built by the caller from the page type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Remove comment sections (articles) or keep them (forums).
    pub drop_comments: bool,
    /// Apply class/id/role hints (the fallback pass turns them off).
    pub use_attr_hints: bool,
    /// See [`super::Tuning::protect_share`].
    pub protect_share: f64,
    /// Remove customer reviews (product pages).
    pub drop_reviews: bool,
    /// See [`super::Tuning::keep_collapsed`].
    pub keep_collapsed: bool,
    /// See [`super::Tuning::protect_max_link_density`].
    pub protect_max_link_density: f64,
    /// See [`super::Tuning::nav_min_links`].
    pub nav_min_links: u32,
    /// See [`super::Tuning::control_chars`].
    pub control_chars: u32,
    /// See [`super::Tuning::keep_hidden_main`].
    pub keep_hidden_main: bool,
    /// See [`super::Tuning::rec_headings`].
    pub rec_headings: bool,
    /// See [`super::Tuning::repeat_min`].
    pub repeat_min: u32,
    /// See [`super::Tuning::repeat_share`].
    pub repeat_share: f64,
    /// See [`super::Tuning::drop_screen_reader`].
    pub drop_screen_reader: bool,
    /// See [`super::Tuning::hidden_main_plain`].
    pub hidden_main_plain: bool,
    /// See [`super::Tuning::hidden_class_hides`].
    pub hidden_class_hides: bool,
    /// The page may be a shop page (not guessed as an article, forum or documentation):
    /// call-to-action labels go (`drop_cta`).
    pub shop_rules: bool,
    /// See [`super::Tuning::drop_cta`].
    pub drop_cta: bool,
    /// See [`super::Tuning::hidden_big`].
    pub hidden_big: bool,
}

/// Decide which elements are boilerplate; fills `removed` and `good` on every item.
pub(crate) fn prune(dom: &mut Dom<'_>, cfg: Config) {
    let body_chars = dom
        .facts
        .body
        .and_then(|b| dom.items.get(b as usize))
        .map_or(0, |b| b.raw.chars);
    let protect_chars = if cfg.protect_share > 0.0 {
        (f64::from(body_chars) * cfg.protect_share) as u32
    } else {
        u32::MAX
    };
    // The same share of the body's text outside links (a page whose menus hold most of its
    // characters).
    let body_plain = dom
        .facts
        .body
        .and_then(|b| dom.items.get(b as usize))
        .map_or(0, |b| b.raw.plain());
    let protect_plain = if cfg.protect_share > 0.0 && cfg.hidden_main_plain {
        (f64::from(body_plain) * cfg.protect_share) as u32
    } else {
        u32::MAX
    };
    let repeated = repeated_templates(&dom.items, body_chars, cfg);
    let items = &mut dom.items;
    for i in 0..items.len() {
        let parent_removed = match items[i].parent {
            NO_PARENT => false,
            p => items[p as usize].removed,
        };
        let it = &items[i];
        let removed = parent_removed
            || (cfg.drop_cta && cfg.shop_rules && is_cta(it))
            || is_js_notice(it)
            || is_boilerplate(it, cfg, (protect_chars, protect_plain), &repeated)
            || (cfg.use_attr_hints
                && !it.has_h1
                && !it.has_main
                && matches!(it.kind, super::dom::Kind::Elem(_))
                && (is_nav_block(it, cfg) || is_control_block(it, cfg)));
        items[i].removed = removed;
    }
    if cfg.rec_headings {
        drop_recommendations(dom, body_chars);
    }
    recount(&mut dom.items);
}

/// Headings that introduce recommendations rather than content ("Customers also viewed",
/// "You may also like", "Related products"): lower-case phrases.
const RECOMMENDATION_PHRASES: &[&str] = &[
    "also viewed",
    "also bought",
    "also purchased",
    "also like",
    "also love",
    "also enjoy",
    "similar items",
    "similar products",
    "related products",
    "related items",
    "recently viewed",
    "frequently bought",
    "seller's other items",
    "more from this seller",
    "complete the look",
    "you might like",
    "recommended for you",
    "more to explore",
    "more to consider",
];

/// A heading (or a short heading-like block) whose text introduces recommendations removes
/// the block it heads: its nearest ancestor holding clearly more text than the heading, when
/// that block is not the page (no `<h1>`, no `main`, under a third of the body's text).
fn drop_recommendations(dom: &mut Dom<'_>, body_chars: u32) {
    let n = dom.items.len();
    let mut i = 0;
    while i < n {
        let it = &dom.items[i];
        if it.removed || it.heading < 2 || it.raw.chars > 60 {
            i += 1;
            continue;
        }
        let t = super::text::inline_text(dom, i).to_lowercase();
        if !RECOMMENDATION_PHRASES.iter().any(|p| t.contains(p)) {
            i += 1;
            continue;
        }
        let own = it.raw.chars;
        let mut a = it.parent;
        let mut target = None;
        while a != NO_PARENT {
            let anc = &dom.items[a as usize];
            if anc.has_h1 || anc.has_main || anc.tag == "body" {
                break;
            }
            if anc.raw.chars > own.saturating_mul(2).saturating_add(20) {
                if anc.raw.chars.saturating_mul(3) < body_chars {
                    target = Some(a as usize);
                }
                break;
            }
            a = anc.parent;
        }
        match target {
            Some(t) => {
                let end = dom.items[t].end as usize;
                for x in &mut dom.items[t..end] {
                    x.removed = true;
                }
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
}

/// Call-to-action labels of product cards, lower case, words separated by one space.
const CTA_LABELS: &[&str] = &[
    "add to cart",
    "add to bag",
    "add to basket",
    "add to compare",
    "compare",
    "add to wishlist",
    "add to wish list",
    "quick view",
    "quick shop",
    "quick add",
    "choose options",
    "select options",
    "show options",
    "view details",
    "view product",
    "view options",
    "learn more",
    "sold out",
    "top rated",
    "new arrival",
    "limited edition",
];

/// Longest [`CTA_LABELS`] entry in non-whitespace characters.
const CTA_MAX_CHARS: u32 = 14;

/// Is `it` a text node holding only a call-to-action label ("Add to cart")?
fn is_cta(it: &Item<'_>) -> bool {
    let super::dom::Kind::Text(t) = it.kind else {
        return false;
    };
    if it.raw.chars == 0 || it.raw.chars > CTA_MAX_CHARS {
        return false;
    }
    CTA_LABELS.iter().any(|label| {
        let mut words = t.split_whitespace();
        label
            .split(' ')
            .all(|w| words.next().is_some_and(|x| x.eq_ignore_ascii_case(w)))
            && words.next().is_none()
    })
}

/// Longest "enable JavaScript" notice, in non-whitespace characters.
const JS_NOTICE_MAX_CHARS: u32 = 100;

/// Is `it` a short text node asking the reader to enable JavaScript ("You need to enable
/// JavaScript to run this app.")? Such `<noscript>` notices are never the page's content;
/// on a client-rendered page they are all the markup holds, and the reference is empty.
fn is_js_notice(it: &Item<'_>) -> bool {
    let super::dom::Kind::Text(t) = it.kind else {
        return false;
    };
    if it.raw.chars < 10 || it.raw.chars > JS_NOTICE_MAX_CHARS {
        return false;
    }
    let has = |word: &str| super::text::contains_ignore_case(t.as_bytes(), word.as_bytes());
    has("javascript") && ["enable", "turn on", "activate"].iter().any(|w| has(w))
}

/// Bottom-up text statistics of what survives (`good`).
fn recount(items: &mut [Item<'_>]) {
    for it in items.iter_mut() {
        it.good = if it.removed {
            Default::default()
        } else {
            it.own
        };
    }
    for i in (0..items.len()).rev() {
        let it = &items[i];
        if it.removed || it.parent == NO_PARENT {
            continue;
        }
        let (own, p) = (it.good, it.parent as usize);
        items[p].good.add(&own);
    }
}

/// A navigation block outside `<nav>` (mega-menus, footer link columns): many links and
/// almost all of its text inside them, each link short.
fn is_nav_block(it: &Item<'_>, cfg: Config) -> bool {
    let s = &it.raw;
    cfg.nav_min_links > 0
        && s.links >= cfg.nav_min_links
        && s.link_density() >= 0.9
        && s.link_chars <= s.links.saturating_mul(NAV_LINK_CHARS)
        && s.punct.saturating_mul(50) <= s.chars
}

/// Average characters per link up to which a link list reads as a menu.
const NAV_LINK_CHARS: u32 = 24;

/// Form controls from which a block with little text per control is a filter panel or form.
const MIN_CONTROLS: u32 = 4;

/// A filter panel or form: several controls and little text per control.
fn is_control_block(it: &Item<'_>, cfg: Config) -> bool {
    let s = &it.raw;
    cfg.control_chars > 0
        && s.controls >= MIN_CONTROLS
        && s.chars <= s.controls.saturating_mul(cfg.control_chars)
}

/// Signatures of boilerplate-looking elements repeated at least `repeat_min` times that
/// together hold at least `repeat_share` of the body's text: parts of every item of a list
/// (a "meta" line, a "subscription" badge), which is the content, not page furniture.
fn repeated_templates(items: &[Item<'_>], body_chars: u32, cfg: Config) -> Vec<u32> {
    let mut sigs: Vec<(u32, u32)> = items
        .iter()
        .filter(|it| it.sig != 0)
        .map(|it| (it.sig, it.raw.chars))
        .collect();
    if cfg.repeat_min == 0 || sigs.len() < cfg.repeat_min as usize {
        return Vec::new();
    }
    sigs.sort_unstable();
    let min_chars = (f64::from(body_chars) * cfg.repeat_share) as u32;
    let mut out = Vec::new();
    let mut k = 0;
    while k < sigs.len() {
        let sig = sigs[k].0;
        let (mut n, mut chars) = (0u32, 0u32);
        while k < sigs.len() && sigs[k].0 == sig {
            n += 1;
            chars = chars.saturating_add(sigs[k].1);
            k += 1;
        }
        if n >= cfg.repeat_min && chars >= min_chars {
            out.push(sig);
        }
    }
    out
}

/// `protect`: the characters, and the characters outside links, from which a block holds
/// most of the page.
fn is_boilerplate(it: &Item<'_>, cfg: Config, protect: (u32, u32), repeated: &[u32]) -> bool {
    let (protect_chars, protect_plain) = protect;
    if matches!(it.kind, super::dom::Kind::Text(_)) {
        return false;
    }
    if matches!(it.tag, "body" | "html") {
        return false;
    }
    // A big element hidden by style or attribute (not by a class word) is the page hidden
    // until a script runs (`hidden_big`); so is one holding the `<h1>` or `main`.
    let hidden_page = (it.has_main || it.has_h1)
        && (it.raw.chars >= protect_chars || it.raw.plain() >= protect_plain)
        || (cfg.hidden_big && it.hint.hidden && it.raw.plain() >= protect_plain);
    if (it.hint.hidden || (cfg.hidden_class_hides && it.hint.hidden_class))
        && !(cfg.keep_collapsed && it.hint.collapsed)
        && !(cfg.keep_hidden_main && hidden_page)
    {
        return true;
    }
    // Screen-reader-only text repeats what is shown; it goes in both passes, unless it
    // holds most of the page (a misused class on a wrapper).
    if cfg.drop_screen_reader
        && it.hint.screen_reader
        && !it.has_main
        && it.raw.chars < protect_chars
    {
        return true;
    }
    // Overlays (cookie banners, modals) go even in the hint-free fallback pass.
    if it.hint.strong
        && it.tag_class != TagClass::Main
        && (!it.has_h1 || it.hint.dialog && !it.has_main)
    {
        return true;
    }
    // A big block is protected only when it is not mostly links: a mega-menu can hold most of
    // a page's text.
    let protected = it.has_h1
        || it.has_main
        || (it.raw.chars >= protect_chars && it.raw.link_density() < cfg.protect_max_link_density);
    if protected {
        return false;
    }
    if it.tag_class == TagClass::Boiler {
        return true;
    }
    if it.tag_class == TagClass::Main {
        return false;
    }
    if it.hint.comment && cfg.drop_comments {
        return true;
    }
    if it.hint.review && cfg.drop_reviews {
        return true;
    }
    if !cfg.use_attr_hints {
        return false;
    }
    // On forums a "comment" container is content even when it also matches a negative word.
    it.hint.negative
        && (cfg.drop_comments || !it.hint.comment)
        && !(it.sig != 0 && repeated.contains(&it.sig))
}

/// Choose the root of the main content: an index into the arena.
///
/// `main_share`: jump to the largest `main`/`article` when it holds this share of the body's
/// non-link text. `descend_share`: descend into a child holding this share of its parent's —
/// high, so that sibling blocks of real content (intro, second column) are not cut off.
pub(crate) fn choose_root(dom: &Dom<'_>, main_share: f64, descend_share: f64) -> usize {
    let items = &dom.items;
    let mut root = dom.facts.body.map_or(0, |b| b as usize);
    let Some(body) = items.get(root) else {
        return 0;
    };
    let body_plain = body.good.plain();
    if body_plain == 0 {
        return root;
    }
    // Largest surviving main/article element.
    let mut best_main: Option<(usize, u32)> = None;
    for (i, it) in items.iter().enumerate().skip(root) {
        if it.removed || it.tag_class != TagClass::Main && !it.has_main_self() {
            continue;
        }
        let p = it.good.plain();
        if best_main.is_none_or(|(_, bp)| p > bp) {
            best_main = Some((i, p));
        }
    }
    if let Some((i, p)) = best_main
        && f64::from(p) >= f64::from(body_plain) * main_share
    {
        root = i;
    }
    // Descend while one child dominates.
    loop {
        let cur = &items[root];
        let cur_plain = cur.good.plain();
        if cur_plain == 0 {
            break;
        }
        let mut best: Option<(usize, u32)> = None;
        let mut child = root + 1;
        while child < cur.end as usize {
            let c = &items[child];
            if !c.removed {
                let p = c.good.plain();
                if best.is_none_or(|(_, bp)| p > bp) {
                    best = Some((child, p));
                }
            }
            child = c.end as usize;
        }
        match best {
            Some((c, p))
                if matches!(items[c].kind, super::dom::Kind::Elem(_))
                    && f64::from(p) >= f64::from(cur_plain) * descend_share =>
            {
                root = c
            }
            _ => break,
        }
    }
    root
}

impl Item<'_> {
    /// This element itself (not a descendant) is `role=main`.
    fn has_main_self(&self) -> bool {
        match self.kind {
            super::dom::Kind::Elem(el) => el
                .attr("role")
                .is_some_and(|r| r.eq_ignore_ascii_case("main")),
            super::dom::Kind::Text(_) => false,
        }
    }
}
