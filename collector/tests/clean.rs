//! Cleaner tests: snapshots over small fixture pages, behaviour checks, hostile inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use gleaner_collector::clean::{MAX_OUTLINKS, PageType, clean};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/clean/{name}.html",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

macro_rules! snapshot_fixture {
    ($test:ident, $name:literal, $url:literal) => {
        #[test]
        fn $test() {
            let cleaned = clean(&fixture($name), Some($url));
            insta::assert_yaml_snapshot!($name, cleaned);
        }
    };
}

snapshot_fixture!(
    snapshot_article,
    "article",
    "https://bread.example/2026/sourdough"
);
snapshot_fixture!(
    snapshot_forum,
    "forum",
    "https://forum.example/t/store-pasta/42"
);
snapshot_fixture!(
    snapshot_product,
    "product",
    "https://shop.example/p/skillet-26"
);
snapshot_fixture!(snapshot_docs, "docs", "https://widget.example/docs/config");
snapshot_fixture!(snapshot_listing, "listing", "https://trails.example/lyon");
snapshot_fixture!(
    snapshot_tables_lists,
    "tables_lists",
    "https://rail.example/timetable"
);
snapshot_fixture!(
    snapshot_german,
    "german",
    "https://reise.example/schwarzwald"
);
snapshot_fixture!(
    snapshot_shop_guide,
    "shop_guide",
    "https://outdoor.example/expert-advice/tents"
);
snapshot_fixture!(
    snapshot_service,
    "service",
    "https://flowfix.example/emergency"
);

#[test]
fn article_keeps_content_and_drops_boilerplate() {
    let c = clean(
        &fixture("article"),
        Some("https://bread.example/2026/sourdough"),
    );
    assert!(c.text.contains("wild yeast and lactic acid bacteria"));
    assert!(c.text.contains("Time and temperature"));
    for junk in [
        "cookies",
        "Tweet",
        "Rye bread basics",
        "Great post",
        "Subscribe",
        "All rights reserved",
        "Recipes",
    ] {
        assert!(!c.text.contains(junk), "{junk:?} leaked into {:?}", c.text);
    }
    assert_eq!(c.page_type, PageType::Article);
    assert_eq!(c.lang, "en");
}

#[test]
fn menus_dialogs_duplicates_and_filters_go_collapsed_sections_stay() {
    let c = clean(
        &fixture("shop_guide"),
        Some("https://outdoor.example/expert-advice/tents"),
    );
    // A mega-menu outside <nav>, holding most of the page's text, is still a menu.
    for junk in ["Sleeping Pads", "Quickdraws", "Crampons"] {
        assert!(!c.text.contains(junk), "{junk:?} leaked into {:?}", c.text);
    }
    // A dialog is an overlay even though it holds an <h1>, and the title is the page's.
    assert!(!c.text.contains("binding arbitration"), "{:?}", c.text);
    assert_eq!(c.title, "How to choose a tent");
    // A filter panel is a form, not prose.
    assert!(!c.text.contains("Price under 200"), "{:?}", c.text);
    // The same paragraph for mobile and desktop is written once.
    assert_eq!(
        c.text.matches("A tent is your home").count(),
        1,
        "{:?}",
        c.text
    );
    // `overflow-hidden` clips, it does not hide.
    assert!(c.text.contains("Capacity ratings assume snug sleepers"));
    // A collapsed accordion (heading button + `hidden` panel) is part of the page.
    assert!(c.text.contains("How heavy should a backpacking tent be?"));
    assert!(c.text.contains("under two kilograms per person"));
}

#[test]
fn forum_keeps_the_posts() {
    let c = clean(
        &fixture("forum"),
        Some("https://forum.example/t/store-pasta/42"),
    );
    assert_eq!(c.page_type, PageType::Forum);
    for post in ["big batch of fettuccine", "Freeze it", "Drying works too"] {
        assert!(c.text.contains(post), "{post:?} missing from {:?}", c.text);
    }
}

/// A page whose hint-driven pass keeps too little (each paragraph sits in a wrapper with a
/// boilerplate word, neither holding half the page), so the fallback pass over the whole body
/// decides.
fn short_page(extra: &str) -> String {
    format!(
        r#"<body><div class="post-widget"><p>Our starter doubled overnight at room temperature.</p></div>
        <div class="post-widget"><p>Feed it twice a day and keep it covered; it should smell sour.</p></div>
        {extra}</body>"#
    )
}

#[test]
fn fallback_drops_comments_unless_they_are_the_page() {
    let few = r#"<section class="comments-area"><div class="comment"><p>Great post, thanks!</p></div></section>"#;
    let c = clean(&short_page(few), Some("https://bread.example/starter"));
    assert!(c.text.contains("doubled overnight"), "{:?}", c.text);
    assert!(!c.text.contains("Great post"), "{:?}", c.text);
    // Comments holding most of the text are a thread the type guess missed: they stay.
    let many: String = (0..12)
        .map(|i| format!(r#"<div class="comment"><p>Reply {i}: mine took three days to get going, then it was fine.</p></div>"#))
        .collect();
    let thread = format!(r#"<section class="comments-area">{many}</section>"#);
    let c = clean(&short_page(&thread), Some("https://bread.example/starter"));
    assert!(c.text.contains("Reply 11: mine took"), "{:?}", c.text);
}

#[test]
fn screen_reader_text_is_not_written_twice() {
    let html = r#"<body><main><h1>Chain 520</h1><p>A gold O-ring chain for road bikes, 104 links,
        riveted master link included, ready to fit.</p>
        <div><span>EUR 163.12<span class="clipped">EUR 163.12</span></span></div>
        <p>Ships in two days.<span class="sr-only"> (opens in a new window)</span></p></main></body>"#;
    let c = clean(html, Some("https://shop.example/p/chain"));
    assert_eq!(c.text.matches("EUR 163.12").count(), 1, "{:?}", c.text);
    assert!(!c.text.contains("new window"), "{:?}", c.text);
}

#[test]
fn fallback_drops_a_heading_whose_section_was_dropped() {
    let extra = r#"<section><h2>More from the bread blog</h2><ul><li><a href="/rye">Rye bread basics</a></li>
        <li><a href="/f">Easy focaccia</a></li></ul></section>
        <div><h2>Timing</h2></div><div><p>A warm kitchen shortens every step of the bake.</p></div>"#;
    let c = clean(&short_page(extra), Some("https://bread.example/starter"));
    assert!(c.text.contains("doubled overnight"), "{:?}", c.text);
    assert!(!c.text.contains("More from the bread blog"), "{:?}", c.text);
    assert!(!c.text.contains("Rye bread"), "{:?}", c.text);
    // A heading alone in its wrapper, its text in the next block, stays.
    assert!(c.text.contains("Timing\n\nA warm kitchen"), "{:?}", c.text);
}

#[test]
fn no_glued_words_at_block_boundaries() {
    let html = "<body><div>alpha</div><div>beta</div><p>gamma</p><ul><li>delta</li><li>epsilon</li></ul>\
                <table><tr><td>zeta</td><td>eta</td></tr></table>theta<br>iota<h2>kappa</h2>lambda</body>";
    let c = clean(html, None);
    let words: Vec<&str> = c.text.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
            "lambda"
        ]
    );
    assert!(c.text.contains("alpha\n\nbeta"), "{:?}", c.text);
    assert!(c.text.contains("delta\nepsilon"), "{:?}", c.text);
    assert!(c.text.contains("zeta\neta"), "{:?}", c.text);
    assert!(c.text.contains("theta\niota"), "{:?}", c.text);
}

#[test]
fn inline_elements_do_not_split_words_and_whitespace_is_normalised() {
    let c = clean("<p>  un<b>break</b>able \n\t words  <i>here</i> </p>", None);
    assert_eq!(c.text, "unbreakable words here");
}

#[test]
fn soft_hyphens_and_zero_width_characters_are_removed() {
    let c = clean(
        "<p>ex\u{AD}traor\u{AD}dinary zero\u{200B}width\u{200C}joiner\u{FEFF}s and\u{2060}more</p>",
        None,
    );
    assert_eq!(c.text, "extraordinary zerowidthjoiners andmore");
}

#[test]
fn title_precedence_og_then_h1_then_title() {
    let og = r#"<head><title>Tag title</title><meta property="og:title" content="OG title"></head><body><h1>H1 title</h1></body>"#;
    assert_eq!(clean(og, None).title, "OG title");
    let h1 =
        "<head><title>Tag title</title></head><body><h1>H1  <span>title</span></h1><p>x</p></body>";
    assert_eq!(clean(h1, None).title, "H1 title");
    let tag = "<head><title> Tag\n title </title></head><body><p>x</p></body>";
    assert_eq!(clean(tag, None).title, "Tag title");
    assert_eq!(clean("<p>x</p>", None).title, "");
}

#[test]
fn outlinks_are_resolved_deduplicated_and_absent_from_text() {
    let html = r##"<body><p>Read <a href="/a#top">this</a> and <a href="/a">that</a>, <a href="b?x=1">more</a>,
        <a href="https://other.example/c">elsewhere</a>, <a href="mailto:x@example.com">mail</a>,
        <a href="javascript:void(0)">js</a>, <a href="#frag">anchor</a>.</p></body>"##;
    let c = clean(html, Some("https://site.example/dir/page.html"));
    assert_eq!(
        c.outlinks,
        [
            "https://site.example/a",
            "https://site.example/dir/b?x=1",
            "https://other.example/c"
        ]
    );
    for l in &c.outlinks {
        assert!(!c.text.contains(l.as_str()));
    }
    assert!(!c.text.contains("href"));
    // <base href> wins over the page URL.
    let based =
        r#"<head><base href="https://cdn.example/root/"></head><body><a href="x">x</a></body>"#;
    assert_eq!(
        clean(based, Some("https://site.example/")).outlinks,
        ["https://cdn.example/root/x"]
    );
    // Without any base only absolute links survive.
    assert_eq!(clean(html, None).outlinks, ["https://other.example/c"]);
}

#[test]
fn outlinks_are_capped() {
    let html: String = (0..MAX_OUTLINKS + 500)
        .map(|i| format!("<a href=\"/p{i}\">p</a> "))
        .collect();
    assert_eq!(
        clean(&html, Some("https://site.example/")).outlinks.len(),
        MAX_OUTLINKS
    );
}

#[test]
fn meta_robots_is_parsed() {
    let c = clean(
        r#"<head><meta name="robots" content="NOINDEX, follow"></head><p>x</p>"#,
        None,
    );
    assert!(c.robots.noindex && !c.robots.nofollow);
    let c = clean(
        r#"<head><meta name="googlebot" content="nofollow"></head><p>x</p>"#,
        None,
    );
    assert!(!c.robots.noindex && c.robots.nofollow);
    let c = clean(
        r#"<head><meta name="robots" content="none"></head><p>x</p>"#,
        None,
    );
    assert!(c.robots.noindex && c.robots.nofollow);
    let c = clean(
        r#"<head><meta name="description" content="noindex"></head><p>x</p>"#,
        None,
    );
    assert!(!c.robots.noindex && !c.robots.nofollow);
}

#[test]
fn language_is_detected_or_und() {
    let c = clean(&fixture("german"), None);
    assert_eq!(c.lang, "de");
    assert!(c.lang_score > 0.5 && c.lang_score <= 1.0);
    let c = clean("<p>?</p>", None);
    assert_eq!(c.lang, "und");
    assert_eq!(c.lang_score, 0.0);
}

#[test]
fn empty_and_text_only_inputs() {
    let c = clean("", None);
    assert_eq!(c.text, "");
    assert_eq!(c.lang, "und");
    assert_eq!(clean("just some words", None).text, "just some words");
}

/// Generous bound for hostile inputs in an unoptimised test build on a busy machine; the
/// point is "bounded", not a benchmark.
const HOSTILE_BUDGET: Duration = Duration::from_secs(20);

fn hostile(name: &str, html: &str) {
    let t = Instant::now();
    let c = clean(html, Some("https://hostile.example/"));
    let took = t.elapsed();
    assert!(took < HOSTILE_BUDGET, "{name} took {took:?}");
    assert!(c.text.len() <= html.len(), "{name}");
}

#[test]
fn hostile_deep_nesting() {
    let depth = 100_000;
    for tag in ["div", "span", "b", "a", "li", "table"] {
        let html = format!(
            "{}deep text{}",
            format!("<{tag}>").repeat(depth),
            format!("</{tag}>").repeat(depth)
        );
        hostile(tag, &html);
        // And without any closing tag.
        hostile(tag, &format!("<{tag}>").repeat(depth));
    }
}

#[test]
fn hostile_megabytes_without_closing_tags() {
    let five_mb = 5 * 1024 * 1024;
    let words = "lorem ipsum dolor sit amet ".repeat(five_mb / 27);
    for open in [
        "<p>",
        "<div>",
        "<script>",
        "<style>",
        "<textarea>",
        "<title>",
        "<!--",
        "<a href=\"",
        "<table><tr><td>",
    ] {
        hostile(open, &format!("<html><body>{open}{words}"));
    }
    let paragraphs = "<p>one more paragraph without its end ".repeat(five_mb / 38);
    hostile("many <p>", &paragraphs);
}

#[test]
fn hostile_giant_attribute() {
    let mb = "x".repeat(1024 * 1024);
    let html = format!(
        r#"<html><head><title>{mb}</title><meta property="og:title" content="{mb}"></head><body class="{mb}"><div id="{mb}" style="{mb}"><a href="/{mb}">link</a><p title="{mb}">body text</p></div></body></html>"#
    );
    hostile("giant attribute", &html);
    let c = clean(&html, Some("https://hostile.example/"));
    assert!(c.title.chars().count() <= 300);
    assert!(c.text.contains("body text"));
}

#[test]
fn hostile_garbage_bytes_lossily_decoded() {
    // Deterministic pseudo-random bytes (xorshift), with some markup characters mixed in.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::with_capacity(2 * 1024 * 1024);
    for _ in 0..bytes.capacity() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push(match x % 16 {
            0 => b'<',
            1 => b'>',
            2 => b'/',
            _ => (x >> 8) as u8,
        });
    }
    let html = String::from_utf8_lossy(&bytes);
    hostile("garbage", &html);
}

#[test]
fn repeated_item_parts_stay_recommendations_and_search_results_do_not_go() {
    let entry = |n: u32| {
        format!(
            "<li><div class=\"title\">Paper number {n} on sparse attention</div>\
             <div class=\"meta\">Authors: Ada Lovelace, Alan Turing; pages {n}, figures 4.</div></li>"
        )
    };
    let entries: String = (1..=8).map(entry).collect();
    let html = format!(
        "<html><body><main><h1>Recent papers</h1><ul>{entries}</ul>\
         <div class=\"box\"><h2>Customers also viewed</h2><div>A completely other thing to buy</div>\
         <div>Another thing for sale elsewhere</div></div></main></body></html>"
    );
    let c = clean(&html, Some("https://papers.example/list"));
    assert!(c.text.contains("Authors: Ada Lovelace"), "{}", c.text);
    assert!(c.text.contains("Paper number 8"));
    assert!(!c.text.contains("also viewed"), "{}", c.text);
    assert!(!c.text.contains("Another thing for sale"));

    let html = "<html><body><main><h1>Tents</h1><p>Our tents, tested in storms.</p>\
         <ul class=\"search-result-items\"><li>Dome tent, 2 person, 3.1 kg</li>\
         <li>Tunnel tent, 4 person, 4.5 kg</li></ul></main></body></html>";
    let c = clean(html, Some("https://outdoor.example/c/tents"));
    assert!(c.text.contains("Tunnel tent, 4 person"), "{}", c.text);
}

/// A page whose text sits in one wrapper: a long description block and a short sibling
/// section (about 10 % of the text).
fn split_sections(head: &str) -> String {
    let paras: String = (1..=10)
        .map(|i| format!("<p>Point {i}: the frame is oak, finished by hand, and every joint is glued and pinned.</p>"))
        .collect();
    format!(
        r#"<html><head>{head}</head><body><div class="wrap"><div class="desc">{paras}</div>
        <div class="extra"><h3>Delivery and returns</h3><p>Free delivery in five days; returns within thirty days.</p></div>
        </div></body></html>"#
    )
}

#[test]
fn shop_pages_keep_sibling_sections_articles_descend_into_the_main_block() {
    // Product (and other non-article) pages: the root stays above a block holding ~90 % of
    // the text, so the delivery section next to the description stays.
    let c = clean(
        &split_sections(""),
        Some("https://shop.example/products/oak-chair"),
    );
    assert_eq!(c.page_type, PageType::Product);
    assert!(c.text.contains("Point 10: the frame"), "{:?}", c.text);
    assert!(
        c.text.contains("Free delivery in five days"),
        "{:?}",
        c.text
    );
    // Articles descend into that block: the sibling is a teaser or a comment box.
    let c = clean(
        &split_sections(r#"<meta property="og:type" content="article">"#),
        Some("https://news.example/2026/oak-chair"),
    );
    assert_eq!(c.page_type, PageType::Article);
    assert!(c.text.contains("Point 10: the frame"), "{:?}", c.text);
    assert!(!c.text.contains("Free delivery"), "{:?}", c.text);
}

#[test]
fn a_hidden_page_wrapper_stays_when_it_holds_most_text_outside_links() {
    // The page is hidden until a script runs; menus hold most of its characters, but the
    // hidden wrapper with the `<h1>` holds most of the text outside links.
    let menu: String = (0..60)
        .map(|i| format!(r#"<li><a href="/c/{i}">Department number {i}</a></li>"#))
        .collect();
    let paras: String = (1..=8)
        .map(|i| {
            format!("<p>Fact {i}: these almond thins are baked twice and stay crisp for weeks.</p>")
        })
        .collect();
    let html = format!(
        r#"<body><div class="menu-list"><ul>{menu}</ul></div>
        <div style="display:none" class="product-wrap"><article><h1>Almond thins</h1>{paras}</article></div></body>"#
    );
    let c = clean(&html, Some("https://shop.example/pr/almond-thins"));
    assert!(
        c.text.contains("Fact 8: these almond thins"),
        "{:?}",
        c.text
    );
    // Without the `<h1>` or `main`/`article`, a hidden block holding half the text outside
    // links is still the page (a product grid revealed by a script)...
    let html = html
        .replace("<article><h1>Almond thins</h1>", "<div>")
        .replace("</article>", "</div>");
    let c = clean(&html, Some("https://shop.example/pr/almond-thins"));
    assert!(c.text.contains("Fact 8"), "{:?}", c.text);
    // ...but a smaller hidden block (a size guide next to the visible description) goes.
    let html = format!(
        r#"<body><main><h1>Almond thins</h1>{paras}</main>
        <div style="display:none"><p>Size guide: one box holds twenty thins.</p></div></body>"#
    );
    let c = clean(&html, Some("https://shop.example/pr/almond-thins"));
    assert!(c.text.contains("Fact 8"), "{:?}", c.text);
    assert!(!c.text.contains("Size guide"), "{:?}", c.text);
}

/// A category page: an intro, product cards with call-to-action labels, and a comparison
/// drawer hidden by a `hidden` class that holds most of the page's text.
fn category_page(drawer_class: &str) -> String {
    let cards: String = (1..=6)
        .map(|i| {
            format!(
                r#"<li class="card"><a href="/products/mug-{i}">Stoneware mug number {i}</a>
                <span class="price">$1{i}.00</span><a class="btn" href="/cart/add/{i}">Add to cart</a>
                <a href="/quick/{i}"> Quick
                 view </a></li>"#
            )
        })
        .collect();
    let specs: String = (1..=12)
        .map(|i| format!("<p>Spec {i}: capacity, glaze, weight and dishwasher rating compared side by side.</p>"))
        .collect();
    format!(
        r#"<html><body><main><h1>Mugs</h1><p>Hand-thrown stoneware mugs, glazed and fired twice in our studio.</p>
        <ul class="grid">{cards}</ul><div class="{drawer_class}">{specs}</div></main></body></html>"#
    )
}

#[test]
fn shop_pages_drop_call_to_action_labels_and_hidden_class_drawers() {
    let c = clean(
        &category_page("compare-drawer hidden"),
        Some("https://shop.example/collections/mugs"),
    );
    assert_eq!(c.page_type, PageType::Collection);
    assert!(c.text.contains("Hand-thrown stoneware"), "{:?}", c.text);
    assert!(c.text.contains("Stoneware mug number 6"), "{:?}", c.text);
    assert!(c.text.contains("$16.00"), "{:?}", c.text);
    assert!(!c.text.contains("Add to cart"), "{:?}", c.text);
    assert!(!c.text.contains("Quick"), "{:?}", c.text);
    // The drawer holds most of the text, but its `hidden` class hides it.
    assert!(!c.text.contains("Spec 12"), "{:?}", c.text);
    // A `hidden` class overridden from some width on (`hidden md:block`) does not hide.
    let c = clean(
        &category_page("compare-drawer hidden md:block"),
        Some("https://shop.example/collections/mugs"),
    );
    assert!(c.text.contains("Spec 12"), "{:?}", c.text);
}

#[test]
fn hidden_class_accordions_stay_on_articles_and_services() {
    // Collapsed FAQ answers carry a `hidden` class that a script removes: on pages not
    // guessed as products or collections they are content.
    let faq: String = (1..=6)
        .map(|i| {
            format!(
                r#"<h3>Question {i}?</h3><div class="answer hidden"><p>Answer {i}: we scope, design and build the app in about three months.</p></div>"#
            )
        })
        .collect();
    let html = format!(
        r#"<html><body><main><h1>App development</h1><p>We build progressive web apps for shops and banks.</p>
        {faq}</main></body></html>"#
    );
    let c = clean(&html, Some("https://agency.example/services/pwa"));
    assert_eq!(c.page_type, PageType::Service);
    assert!(c.text.contains("Answer 6: we scope"), "{:?}", c.text);
}

#[test]
fn enable_javascript_notices_are_not_content() {
    // A client-rendered shop: the markup holds only the `<noscript>` notice.
    let c = clean(
        r#"<html><body><noscript>You need to enable JavaScript to run this app.</noscript>
        <div id="root"></div></body></html>"#,
        Some("https://shop.example/women/clearance"),
    );
    assert_eq!(c.text, "", "{:?}", c.text);
    // Next to real content, the notice goes and the content stays.
    let paras: String = (1..=8)
        .map(|i| format!("<p>Paragraph {i} about glazing stoneware mugs in a wood-fired kiln.</p>"))
        .collect();
    let c = clean(
        &format!(
            r#"<html><body><noscript><p>Please enable JavaScript in your browser.</p></noscript>
            <article><h1>Glazing</h1>{paras}</article></body></html>"#
        ),
        Some("https://blog.example/glazing"),
    );
    assert!(c.text.contains("Paragraph 8"), "{:?}", c.text);
    assert!(!c.text.contains("JavaScript"), "{:?}", c.text);
}
