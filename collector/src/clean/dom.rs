//! One iterative pass over the parsed tree that flattens it into a pre-order arena.
//!
//! Every later pass (boilerplate decisions, root selection, text output) works on the arena:
//! a `Vec` in document order where each item knows its parent and the index just past its
//! subtree (`end`). That makes "skip this subtree" a jump and "aggregate over children" a
//! reverse loop, with no recursion anywhere, so 100,000-deep nesting costs nothing special.
//!
//! **Invariant:** children come after their parent, and `items[i+1..items[i].end]` is exactly
//! the subtree of `i`.

use ego_tree::NodeRef;
use scraper::node::Element;
use scraper::{Html, Node};

use super::hints::{self, AttrHint, Display, TagClass};
use crate::util::cut;

/// `parent` of the root item.
pub(crate) const NO_PARENT: u32 = u32::MAX;

/// What an arena item is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind<'a> {
    Elem(&'a Element),
    Text(&'a str),
}

/// Per-subtree text statistics.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stats {
    /// Non-whitespace characters of visible text.
    pub chars: u32,
    /// Of which inside `<a>`.
    pub link_chars: u32,
    /// Sentence punctuation (`, . ; ! ?` and CJK equivalents): a sign of prose.
    pub punct: u32,
    /// `<a>` elements.
    pub links: u32,
    /// Form controls (`input`, `select`, `button`, `textarea`): many of them mark a filter
    /// panel or a form, not prose.
    pub controls: u32,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.chars = self.chars.saturating_add(o.chars);
        self.link_chars = self.link_chars.saturating_add(o.link_chars);
        self.punct = self.punct.saturating_add(o.punct);
        self.links = self.links.saturating_add(o.links);
        self.controls = self.controls.saturating_add(o.controls);
    }

    /// Share of the text that sits inside links, 0..=1.
    pub(crate) fn link_density(&self) -> f64 {
        if self.chars == 0 {
            0.0
        } else {
            f64::from(self.link_chars) / f64::from(self.chars)
        }
    }

    /// Text outside links.
    pub(crate) fn plain(&self) -> u32 {
        self.chars.saturating_sub(self.link_chars)
    }
}

/// One element or text node.
#[derive(Debug, Clone)]
pub(crate) struct Item<'a> {
    pub kind: Kind<'a>,
    pub parent: u32,
    /// Index just past this item's subtree.
    pub end: u32,
    /// Lower-case tag name ("" for text).
    pub tag: &'a str,
    pub display: Display,
    pub tag_class: TagClass,
    pub hint: AttrHint,
    /// Heading level 1..=6, 0 when not a heading.
    pub heading: u8,
    /// Raw statistics over the whole subtree.
    pub raw: Stats,
    /// Statistics over the subtree without removed parts (filled by `select`).
    pub good: Stats,
    /// Statistics of this item alone, not its descendants (a link counts itself; an element
    /// counts its skipped form-control children).
    pub own: Stats,
    /// Subtree contains an `<h1>`.
    pub has_h1: bool,
    /// Subtree contains a `main`/`article` element or `role=main`.
    pub has_main: bool,
    /// Removed as boilerplate (filled by `select`).
    pub removed: bool,
    /// For elements whose class/id reads as boilerplate: a hash of the tag and `class`, so
    /// that `select` can tell a one-off block from a part repeated in every item of a list
    /// (a "meta" line under each entry). 0 otherwise.
    pub sig: u32,
}

/// Document-level facts gathered in the same pass.
#[derive(Debug, Default)]
pub(crate) struct Facts<'a> {
    /// `<title>` text.
    pub title_tag: Option<&'a str>,
    /// `(name or property, content)` of `<meta>` elements, lower-cased key.
    pub metas: Vec<(String, &'a str)>,
    /// `<base href>`.
    pub base_href: Option<&'a str>,
    /// `href` of every `<a>` / `<area>` in document order.
    pub hrefs: Vec<&'a str>,
    /// Text of JSON-LD scripts (only the first bytes, for `@type` sniffing).
    pub json_ld: Vec<&'a str>,
    /// `<html lang>`.
    pub html_lang: Option<&'a str>,
    /// Index of the `<body>` item, if any.
    pub body: Option<u32>,
    /// Count of `<pre>`/`<code>` elements.
    pub code_blocks: u32,
    /// Count of `itemprop="price"` / price-like class hits.
    pub price_hints: u32,
    /// Count of forms or buttons mentioning a cart.
    pub cart_hints: u32,
    /// Count of `<article>` elements.
    pub articles: u32,
}

/// Only this many bytes of a JSON-LD block are kept for `@type` sniffing: the type is
/// declared near the top and scanning megabytes of embedded data would cost time.
const JSON_LD_SNIFF_BYTES: usize = 4096;

/// The arena plus document facts.
pub(crate) struct Dom<'a> {
    pub items: Vec<Item<'a>>,
    pub facts: Facts<'a>,
}

/// Is `c` sentence punctuation?
fn is_punct(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | ';' | '!' | '?' | '，' | '。' | '、' | '！' | '？' | '؛' | '،'
    )
}

/// Text statistics for one text node.
fn text_stats(s: &str, in_link: bool) -> Stats {
    let mut chars = 0u32;
    let mut punct = 0u32;
    for c in s.chars() {
        if !c.is_whitespace() {
            chars = chars.saturating_add(1);
            if is_punct(c) {
                punct = punct.saturating_add(1);
            }
        }
    }
    Stats {
        chars,
        link_chars: if in_link { chars } else { 0 },
        punct,
        ..Stats::default()
    }
}

/// Handle the elements whose subtree is skipped but which carry document facts.
fn note_skipped<'a>(node: NodeRef<'a, Node>, el: &'a Element, facts: &mut Facts<'a>) {
    match el.name() {
        "head" => {
            // Walk the head's direct children for <title>, <meta>, <base>, JSON-LD.
            for child in node.children() {
                if let Node::Element(c) = child.value() {
                    note_skipped(child, c, facts);
                }
            }
        }
        "title" if facts.title_tag.is_none() => {
            facts.title_tag = node
                .children()
                .find_map(|c| c.value().as_text().map(|t| &**t));
        }
        "meta" => {
            let key = el.attr("property").or_else(|| el.attr("name"));
            if let (Some(k), Some(v)) = (key, el.attr("content")) {
                facts.metas.push((cut(k, 64).to_ascii_lowercase(), v));
            }
        }
        "base" if facts.base_href.is_none() => {
            facts.base_href = el.attr("href");
        }
        "script"
            if el
                .attr("type")
                .is_some_and(|t| t.eq_ignore_ascii_case("application/ld+json")) =>
        {
            if let Some(t) = node.children().find_map(|c| c.value().as_text()) {
                facts.json_ld.push(cut(t, JSON_LD_SNIFF_BYTES));
            }
        }
        _ => {}
    }
}

/// FNV-1a over the tag name and (a bounded prefix of) the `class` attribute; never 0.
fn signature(name: &str, class: Option<&str>) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let class = class.map_or("", |c| cut(c.trim(), 256));
    for b in name.bytes().chain([b' ']).chain(class.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// Flatten the document into the arena.
pub(crate) fn build(html: &Html) -> Dom<'_> {
    let mut items: Vec<Item<'_>> = Vec::with_capacity(1024);
    let mut facts = Facts::default();
    let mut buf = String::new();
    // Stack of arena indices of open elements (pushed on enter, popped on leave).
    let mut open: Vec<u32> = Vec::with_capacity(64);
    let mut link_depth = 0u32;

    let root = html.tree.root();
    let mut cur = match root.first_child() {
        Some(c) => c,
        None => return Dom { items, facts },
    };
    'walk: loop {
        // Enter `cur`; `descend` says whether to visit its children.
        let mut descend = false;
        let parent = open.last().copied().unwrap_or(NO_PARENT);
        match cur.value() {
            Node::Element(el) => {
                let name = el.name();
                let mut tag_class = hints::tag_class(name);
                // An accordion's heading is a button inside a heading: its text is the
                // heading's, not a control label.
                if name == "button" && items.get(parent as usize).is_some_and(|p| p.heading > 0) {
                    tag_class = TagClass::Plain;
                }
                if name == "html" {
                    facts.html_lang = el.attr("lang");
                }
                if tag_class == TagClass::Skip {
                    note_skipped(cur, el, &mut facts);
                    if matches!(name, "input" | "select" | "button" | "textarea")
                        && let Some(p) = items.get_mut(parent as usize)
                    {
                        p.own.controls = p.own.controls.saturating_add(1);
                        p.raw.controls = p.raw.controls.saturating_add(1);
                    }
                } else {
                    let idx = items.len() as u32;
                    let attrs = hints::Attrs::of(el);
                    let hint = hints::attr_hint(&attrs, &mut buf);
                    match name {
                        "a" | "area" => {
                            if let Some(h) = attrs.href {
                                facts.hrefs.push(h);
                            }
                            link_depth += 1;
                        }
                        "body" if facts.body.is_none() => facts.body = Some(idx),
                        "pre" | "code" => facts.code_blocks += 1,
                        "article" => facts.articles += 1,
                        "form" if attrs.action.is_some_and(|a| a.contains("cart")) => {
                            facts.cart_hints += 1;
                        }
                        "title" | "meta" | "base" | "link" => note_skipped(cur, el, &mut facts),
                        _ => {}
                    }
                    if attrs
                        .itemprop
                        .is_some_and(|p| p.eq_ignore_ascii_case("price"))
                    {
                        facts.price_hints += 1;
                    }
                    let is_main = tag_class == TagClass::Main
                        || attrs.role.is_some_and(|r| r.eq_ignore_ascii_case("main"));
                    let heading = hints::heading_level(name);
                    let own = Stats {
                        links: u32::from(matches!(name, "a" | "area")),
                        ..Stats::default()
                    };
                    items.push(Item {
                        kind: Kind::Elem(el),
                        parent,
                        end: idx + 1,
                        tag: name,
                        display: hints::display(name),
                        tag_class,
                        hint,
                        heading,
                        raw: own,
                        good: Stats::default(),
                        own,
                        has_h1: heading == 1,
                        has_main: is_main,
                        removed: false,
                        sig: if hint.negative && !hint.strong && !hint.screen_reader {
                            signature(name, attrs.class)
                        } else {
                            0
                        },
                    });
                    open.push(idx);
                    descend = true;
                }
            }
            Node::Text(t) => {
                let s: &str = t;
                if parent != NO_PARENT && !s.is_empty() {
                    let idx = items.len() as u32;
                    let raw = text_stats(s, link_depth > 0);
                    items.push(Item {
                        kind: Kind::Text(s),
                        parent,
                        end: idx + 1,
                        tag: "",
                        display: Display::Inline,
                        tag_class: TagClass::Plain,
                        hint: AttrHint::default(),
                        heading: 0,
                        raw,
                        good: Stats::default(),
                        own: raw,
                        has_h1: false,
                        has_main: false,
                        removed: false,
                        sig: 0,
                    });
                }
            }
            _ => {}
        }
        if descend && let Some(c) = cur.first_child() {
            cur = c;
            continue;
        }
        // Leave `cur` and every ancestor that has no next sibling.
        loop {
            if descend {
                close(&mut items, &mut open, &mut link_depth);
            }
            if let Some(s) = cur.next_sibling() {
                cur = s;
                continue 'walk;
            }
            match cur.parent() {
                Some(p) if p.id() != root.id() => {
                    cur = p;
                    // The parent was entered (it has children we visited), so it is open
                    // exactly when it is the innermost open arena element.
                    descend = match (p.value(), open.last()) {
                        (Node::Element(e), Some(&o)) => items.get(o as usize).is_some_and(
                            |it| matches!(it.kind, Kind::Elem(x) if std::ptr::eq(x, e)),
                        ),
                        _ => false,
                    };
                }
                _ => break 'walk,
            }
        }
    }
    // Aggregate raw statistics bottom-up: children always follow parents.
    for i in (1..items.len()).rev() {
        let (raw, h1, main, p) = {
            let it = &items[i];
            (it.raw, it.has_h1, it.has_main, it.parent)
        };
        if p != NO_PARENT {
            let parent = &mut items[p as usize];
            parent.raw.add(&raw);
            parent.has_h1 |= h1;
            parent.has_main |= main;
        }
    }
    Dom { items, facts }
}

/// Pop the innermost open element and fix its `end`.
fn close(items: &mut [Item<'_>], open: &mut Vec<u32>, link_depth: &mut u32) {
    if let Some(idx) = open.pop() {
        let len = items.len() as u32;
        if let Some(it) = items.get_mut(idx as usize) {
            it.end = len;
            if matches!(it.tag, "a" | "area") {
                *link_depth = link_depth.saturating_sub(1);
            }
        }
    }
}
