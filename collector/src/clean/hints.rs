//! Tag and attribute hints: what an element's name, `class`, `id` and `role` say about it.
//!
//! Everything here is a pure function of one element; no allocation except one reusable
//! lower-case buffer owned by the caller.

use scraper::node::Element;

use crate::util::cut;

/// How an element is rendered, as far as line breaks in the text are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Display {
    /// Inline content: text flows on.
    Inline,
    /// Block: paragraph break before and after.
    Block,
    /// One line of a block (list item, table row, definition term): line break before and after.
    Line,
    /// A table cell: its own line, like a list item.
    Cell,
    /// `<br>`: a line break.
    Break,
    /// `<pre>`: block whose whitespace is kept.
    Pre,
}

/// What the tag name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagClass {
    /// Never visible text (script, style, media, form controls): the subtree is skipped entirely.
    Skip,
    /// Structural boilerplate by name (nav, footer, aside, header): removed unless protected.
    Boiler,
    /// An element that marks main content (main, article).
    Main,
    /// Anything else.
    Plain,
}

/// Classify a tag name (html5ever gives lower-case local names).
pub(crate) fn tag_class(name: &str) -> TagClass {
    match name {
        "script" | "style" | "template" | "svg" | "math" | "canvas" | "iframe" | "object"
        | "embed" | "video" | "audio" | "picture" | "img" | "select" | "option" | "button"
        | "input" | "textarea" | "head" | "dialog" | "map" | "link" | "meta" => TagClass::Skip,
        // `noscript` usually says "enable JavaScript"; when it holds the page (server-rendered
        // fallbacks), the protection rules in `select` keep it.
        "nav" | "footer" | "aside" | "header" | "menu" | "noscript" => TagClass::Boiler,
        "main" | "article" => TagClass::Main,
        _ => TagClass::Plain,
    }
}

/// How a tag name renders.
pub(crate) fn display(name: &str) -> Display {
    match name {
        "p" | "div" | "section" | "article" | "main" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
        | "ul" | "ol" | "dl" | "table" | "blockquote" | "figure" | "figcaption" | "form"
        | "header" | "footer" | "nav" | "aside" | "address" | "details" | "summary"
        | "fieldset" | "hr" | "center" | "body" | "html" | "hgroup" | "caption" | "legend"
        | "thead" | "tbody" | "tfoot" | "menu" | "dialog" => Display::Block,
        "li" | "tr" | "dt" | "dd" | "option" => Display::Line,
        "td" | "th" => Display::Cell,
        "br" => Display::Break,
        "pre" | "listing" | "plaintext" | "xmp" => Display::Pre,
        _ => Display::Inline,
    }
}

/// Heading level 1..=6 of a tag name, 0 otherwise.
pub(crate) fn heading_level(name: &str) -> u8 {
    match name {
        "h1" => 1,
        "h2" => 2,
        "h3" => 3,
        "h4" => 4,
        "h5" => 5,
        "h6" => 6,
        _ => 0,
    }
}

/// What `class`, `id` and `role` say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AttrHint {
    /// Looks like boilerplate (navigation, cookie banner, share bar, sidebar, ads...).
    pub negative: bool,
    /// Looks like an overlay that is never the content (cookie/consent banner, modal, popup,
    /// newsletter box, ad): removed even when it is large.
    pub strong: bool,
    /// Looks like a comment section (boilerplate on articles, content on forums).
    pub comment: bool,
    /// Looks like the main content container.
    pub positive: bool,
    /// Hidden by attribute or inline style.
    pub hidden: bool,
    /// Hidden only by the `hidden` attribute: collapsed accordions and inactive tabs, whose
    /// text is part of the page (readers open them), as opposed to `aria-hidden` or
    /// `display:none` (decorative duplicates, templates).
    pub collapsed: bool,
    /// `role=dialog` / `aria-modal`: an overlay even when it holds a heading.
    pub dialog: bool,
    /// Looks like customer reviews (boilerplate on product pages).
    pub review: bool,
    /// Text for screen readers only (`sr-only`, `visually-hidden`, `clipped`, `a-offscreen`):
    /// it repeats visible text ("EUR 12.00" twice) or labels controls, and is never shown.
    pub screen_reader: bool,
    /// A `hidden` class word (`hidden`, `is-hidden`, `hide`, `d-none`) not overridden by a
    /// responsive utility class (`md:block`).
    pub hidden_class: bool,
}

/// Only this many bytes of an attribute are inspected: a class list longer than this is
/// either generated garbage or an attack, and hints beyond it are noise. Keeps giant
/// attributes from costing time.
const MAX_HINT_BYTES: usize = 256;

/// Whole-token boilerplate words (tokens are the alphanumeric runs of class and id).
const NEGATIVE_TOKENS: &[&str] = &[
    "nav",
    "navbar",
    "navigation",
    "menu",
    "menubar",
    "submenu",
    "megamenu",
    "footer",
    "masthead",
    "sidebar",
    "widget",
    "widgets",
    "breadcrumb",
    "breadcrumbs",
    "crumbs",
    "cookie",
    "cookies",
    "consent",
    "gdpr",
    "share",
    "sharing",
    "social",
    "socials",
    "related",
    "recommended",
    "newsletter",
    "subscribe",
    "subscription",
    "signup",
    "popup",
    "modal",
    "overlay",
    "ad",
    "ads",
    "advert",
    "advertisement",
    "sponsor",
    "sponsored",
    "promo",
    "skip",
    "pagination",
    "pager",
    "toolbar",
    "offcanvas",
    "drawer",
    "dropdown",
    "search",
    "login",
    "print",
    "tags",
    "tagcloud",
    "visually",
    "sr",
    "screen",
    "disclaimer",
    "copyright",
    "legal",
    "byline",
    "meta",
    "author",
    "topbar",
    "utility",
    "cta",
    "header",
    "banner",
];

/// Substrings that mark boilerplate even inside concatenated class names ("sharebar",
/// "cookieNotice"). Only words that are unambiguous as substrings.
const NEGATIVE_SUBSTRINGS: &[&str] = &[
    "cookie",
    "consent",
    "gdpr",
    "breadcrumb",
    "newsletter",
    "sidebar",
    "navbar",
    "sharing",
    "social",
    "advert",
    "sponsor",
    "related",
    "popup",
    "subscribe",
    "recommend",
    "footer",
];

/// Substrings marking overlays and ads that are never content, however much text they hold.
const STRONG_SUBSTRINGS: &[&str] = &[
    "cookie",
    "consent",
    "gdpr",
    "modal",
    "popup",
    "newsletter",
    "advert",
    "onetrust",
];

/// Substrings of `class`/`id` marking text for screen readers only.
const SCREEN_READER_SUBSTRINGS: &[&str] = &[
    "sr-only",
    "sr_only",
    "visually-hidden",
    "visuallyhidden",
    "screen-reader",
    "screenreader",
    "offscreen",
    "element-invisible",
    "show-for-sr",
];

/// Whole `class` words marking text for screen readers only.
const SCREEN_READER_WORDS: &[&str] = &["clipped", "u-hidden", "assistive-text"];

/// Tokens and substrings marking comment sections.
const COMMENT_SUBSTRINGS: &[&str] = &["comment", "disqus", "respond", "replies"];

/// Tokens that mark main content.
const POSITIVE_SUBSTRINGS: &[&str] = &[
    "article",
    "content",
    "entry",
    "post-body",
    "postbody",
    "story",
    "prose",
    "markdown",
    "main",
    "text",
    "body",
];

/// ARIA roles that mark boilerplate.
fn negative_role(role: &str) -> bool {
    matches!(
        role.trim().to_ascii_lowercase().as_str(),
        "navigation"
            | "banner"
            | "contentinfo"
            | "complementary"
            | "menu"
            | "menubar"
            | "dialog"
            | "alertdialog"
            | "search"
            | "toolbar"
            | "tablist"
    )
}

/// Every attribute the cleaner reads, here and in `dom`/`select`; the pre-parse guard drops
/// all others from start tags. A new attribute read anywhere must be added here.
pub(crate) const READ_ATTRIBUTES: &[&str] = &[
    "class",
    "id",
    "role",
    "style",
    "hidden",
    "aria-hidden",
    "aria-modal",
    "href",
    "itemprop",
    "action",
    "lang",
    "type",
    "name",
    "property",
    "content",
];

/// The attributes the cleaner reads (all in [`READ_ATTRIBUTES`]), gathered in one pass over an
/// element's attribute list: `Element::attr` interns its argument and binary-searches the list
/// on every call, and the arena build asked for a dozen attributes per element.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Attrs<'a> {
    pub class: Option<&'a str>,
    pub id: Option<&'a str>,
    pub role: Option<&'a str>,
    pub style: Option<&'a str>,
    pub hidden: bool,
    pub aria_hidden: Option<&'a str>,
    pub aria_modal: Option<&'a str>,
    pub href: Option<&'a str>,
    pub itemprop: Option<&'a str>,
    pub action: Option<&'a str>,
}

impl<'a> Attrs<'a> {
    pub(crate) fn of(el: &'a Element) -> Self {
        let mut a = Attrs::default();
        for (name, value) in el.attrs() {
            match name {
                "class" => a.class = Some(value),
                "id" => a.id = Some(value),
                "role" => a.role = Some(value),
                "style" => a.style = Some(value),
                "hidden" => a.hidden = true,
                "aria-hidden" => a.aria_hidden = Some(value),
                "aria-modal" => a.aria_modal = Some(value),
                "href" => a.href = Some(value),
                "itemprop" => a.itemprop = Some(value),
                "action" => a.action = Some(value),
                _ => {}
            }
        }
        a
    }
}

/// Which word lists a substring belongs to (bits of `Matcher::substring_hits`).
const HIT_COMMENT: u16 = 1;
const HIT_REVIEW: u16 = 1 << 1;
const HIT_SCREEN_READER: u16 = 1 << 2;
const HIT_RESPONSIVE: u16 = 1 << 3;
const HIT_RESULTS: u16 = 1 << 4;
const HIT_NEGATIVE: u16 = 1 << 5;
const HIT_STRONG: u16 = 1 << 6;
const HIT_POSITIVE: u16 = 1 << 7;
const HIT_SHOWN: u16 = 1 << 8;

/// Every substring list above, each pattern once with the lists it is in.
fn substring_table() -> Vec<(&'static str, u16)> {
    let lists: [(&[&'static str], u16); 9] = [
        (COMMENT_SUBSTRINGS, HIT_COMMENT),
        (&["review", "rating"], HIT_REVIEW),
        (SCREEN_READER_SUBSTRINGS, HIT_SCREEN_READER),
        // Utility CSS that shows an element from some screen width on (`hidden md:block`).
        (&[":block", ":flex", ":grid"], HIT_RESPONSIVE),
        // Search results are the content of a search or category page, not a search box.
        (&["result"], HIT_RESULTS),
        (NEGATIVE_SUBSTRINGS, HIT_NEGATIVE),
        (STRONG_SUBSTRINGS, HIT_STRONG),
        (POSITIVE_SUBSTRINGS, HIT_POSITIVE),
        // Responsive classes that show a `d-none`/`hidden` element again from some width on.
        (
            &["d-sm-", "d-md-", "d-lg-", "d-xl-", "show@", "show-for-"],
            HIT_SHOWN,
        ),
    ];
    let mut table: Vec<(&'static str, u16)> = Vec::new();
    for (words, bit) in lists {
        for &w in words {
            match table.iter_mut().find(|(p, _)| *p == w) {
                Some((_, mask)) => *mask |= bit,
                None => table.push((w, bit)),
            }
        }
    }
    table
}

/// All substring lists in one automaton (one scan of the class text instead of one search
/// per word), and the whole-token list sorted for binary search.
struct Matcher {
    /// `None` only if the automaton could not be built; then the table is scanned word by word.
    ac: Option<aho_corasick::AhoCorasick>,
    table: Vec<(&'static str, u16)>,
    tokens: Vec<&'static str>,
}

fn matcher() -> &'static Matcher {
    static M: std::sync::OnceLock<Matcher> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let table = substring_table();
        let ac = aho_corasick::AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(table.iter().map(|(p, _)| p))
            .ok();
        let mut tokens = NEGATIVE_TOKENS.to_vec();
        tokens.sort_unstable();
        Matcher { ac, table, tokens }
    })
}

impl Matcher {
    /// The lists with a word occurring anywhere in `s` (bits `HIT_*`).
    fn substring_hits(&self, s: &str) -> u16 {
        match &self.ac {
            Some(ac) => ac
                .find_overlapping_iter(s)
                .fold(0, |m, hit| m | self.table[hit.pattern().as_usize()].1),
            None => self
                .table
                .iter()
                .filter(|(p, _)| s.contains(p))
                .fold(0, |m, (_, bit)| m | bit),
        }
    }

    fn negative_token(&self, t: &str) -> bool {
        self.tokens.binary_search(&t).is_ok()
    }
}

/// Inspect `class`, `id`, `role`, `hidden`, `aria-hidden` and `style`. `buf` is a scratch
/// buffer reused across calls to avoid an allocation per element.
pub(crate) fn attr_hint(a: &Attrs<'_>, buf: &mut String) -> AttrHint {
    let mut hint = AttrHint::default();
    let aria_hidden = a
        .aria_hidden
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if a.hidden || aria_hidden {
        hint.hidden = true;
        hint.collapsed = !aria_hidden;
    }
    if let Some(style) = a.style {
        let style = cut(style, MAX_HINT_BYTES);
        buf.clear();
        buf.extend(
            style
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| c.to_ascii_lowercase()),
        );
        if buf.contains("display:none") || buf.contains("visibility:hidden") {
            hint.hidden = true;
            hint.collapsed = false;
        }
    }
    if a.role.is_some_and(negative_role) {
        hint.negative = true;
    }
    // A dialog is an overlay (terms of service, size guide, login box), never the page.
    if a.role.is_some_and(|r| {
        let r = r.trim();
        r.eq_ignore_ascii_case("dialog") || r.eq_ignore_ascii_case("alertdialog")
    }) || a
        .aria_modal
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        hint.negative = true;
        hint.strong = true;
        hint.dialog = true;
    }
    buf.clear();
    if let Some(class) = a.class {
        buf.push_str(cut(class, MAX_HINT_BYTES));
    }
    if let Some(id) = a.id {
        buf.push(' ');
        buf.push_str(cut(id, MAX_HINT_BYTES));
    }
    if buf.is_empty() {
        return hint;
    }
    buf.make_ascii_lowercase();
    let s = buf.as_str();
    let m = matcher();
    let hits = m.substring_hits(s);
    hint.comment = hits & HIT_COMMENT != 0;
    hint.review = hits & HIT_REVIEW != 0;
    // Text for screen readers only: a marker anywhere, or one of a few whole class words.
    hint.screen_reader = hits & HIT_SCREEN_READER != 0
        || s.split_ascii_whitespace()
            .any(|w| SCREEN_READER_WORDS.contains(&w));
    // A `hidden` class word hides the element, unless utility CSS shows it from some screen
    // width on (`hidden md:block`); `overflow-hidden` and the like clip, they do not hide.
    let hidden_class = hits & HIT_RESPONSIVE == 0
        && s.split_ascii_whitespace()
            .any(|w| matches!(w, "hidden" | "is-hidden" | "hide" | "d-none"));
    // Bootstrap shows a `d-none` element from some width on with `d-md-block` and the like,
    // other frameworks with `show@medium` or `show-for-medium`.
    hint.hidden_class = hidden_class && hits & HIT_SHOWN == 0;
    let results = hits & HIT_RESULTS != 0;
    if hidden_class
        || hits & HIT_NEGATIVE != 0
        || s.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| m.negative_token(t) && !(results && t == "search"))
    {
        hint.negative = true;
    }
    if hits & HIT_STRONG != 0 {
        hint.strong = true;
        hint.negative = true;
    }
    if hits & HIT_POSITIVE != 0 {
        hint.positive = true;
    }
    hint
}
