//! Input guard run before parsing: one scan of the raw HTML (a byte search for `<`) that
//! keeps the parser's work bounded and drops what no later pass reads.
//!
//! **Nesting.** html5ever's tree builder does scope checks that walk the stack of open
//! elements, so a document nested 100,000 deep costs O(depth²) — about a minute. The scan
//! tracks an estimate of the nesting depth and drops the start tags (not their text) that would
//! nest deeper than [`MAX_DEPTH`]. Real pages stay far below that depth.
//!
//! The estimate counts start tags of elements that need an end tag and subtracts end tags.
//! Void elements, elements whose end tag is optional (`p`, `li`, `td`…; the parser closes them
//! itself) and self-closing tags do not count; the bodies of raw-text elements (`script`,
//! `style`, `textarea`…) and comments are skipped so that markup inside them is not counted.
//!
//! **Script and style bodies.** Inline scripts and style sheets are about half the bytes of a
//! typical page (WCXB: 26 % and 25 %), and the tokenizer walks every byte of them, yet the
//! cleaner never reads them: both elements are skipped whole when the arena is built. Their
//! bodies are cut out here, leaving `<script …></script>`, so that the parse sees the same
//! elements in the same places. Kept: JSON-LD scripts (the page-type guess reads them) and
//! any script whose body holds `<!--` (the tokenizer's escaped states can move where such a
//! script ends; the parser gets it unchanged). Start tags are read with their quoted
//! attribute values, as the tokenizer reads them, so a `<script` inside an attribute value is
//! not taken for a tag.

use std::borrow::Cow;

use super::{hints, text};

/// Deepest nesting passed to the parser. Real pages rarely exceed 60 levels and almost never
/// 200; at 256 the parser's scope checks stay cheap even for megabytes of siblings.
pub(crate) const MAX_DEPTH: u32 = 256;

/// Elements that never have content.
fn is_void(name: &[u8]) -> bool {
    matches!(
        name,
        b"area"
            | b"base"
            | b"br"
            | b"col"
            | b"embed"
            | b"hr"
            | b"img"
            | b"input"
            | b"link"
            | b"meta"
            | b"source"
            | b"track"
            | b"wbr"
            | b"param"
            | b"keygen"
            | b"frame"
            | b"basefont"
            | b"bgsound"
            | b"image"
    )
}

/// Elements whose end tag may be omitted: the parser closes them when a sibling starts.
fn is_optional_end(name: &[u8]) -> bool {
    matches!(
        name,
        b"p" | b"li"
            | b"dt"
            | b"dd"
            | b"tr"
            | b"td"
            | b"th"
            | b"option"
            | b"optgroup"
            | b"thead"
            | b"tbody"
            | b"tfoot"
            | b"colgroup"
            | b"rp"
            | b"rt"
            | b"html"
            | b"head"
            | b"body"
    )
}

/// Elements whose content is raw text up to their own end tag.
fn is_raw_text(name: &[u8]) -> bool {
    matches!(
        name,
        b"script"
            | b"style"
            | b"textarea"
            | b"title"
            | b"xmp"
            | b"iframe"
            | b"noembed"
            | b"noframes"
            | b"noscript"
    )
}

/// Position of the first `</name` (ASCII case-insensitive) at or after `from`.
fn find_end_tag(b: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut i = from;
    while let Some(off) = memchr::memchr(b'<', b.get(i..)?) {
        let lt = i + off;
        let rest = &b[lt + 1..];
        if rest.first() == Some(&b'/')
            && rest.len() > name.len()
            && rest[1..=name.len()].eq_ignore_ascii_case(name)
        {
            return Some(lt);
        }
        i = lt + 1;
    }
    None
}

/// Position of the first end tag `</name` (ASCII case-insensitive) at or after `from` that the
/// tokenizer would take as the end of a raw-text element `name`: the name is followed by
/// whitespace, `/` or `>`.
fn find_closing_tag(b: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut i = from;
    loop {
        let lt = find_end_tag(b, i, name)?;
        match b.get(lt + 2 + name.len()) {
            Some(c) if c.is_ascii_whitespace() || *c == b'/' || *c == b'>' => return Some(lt),
            _ => i = lt + 1,
        }
    }
}

/// One attribute of a start tag: byte offsets of its start, the end of its name, and its end
/// (past the value, if any).
#[derive(Debug, Clone, Copy)]
struct Attr {
    start: usize,
    name_end: usize,
    end: usize,
}

/// Read the rest of a start tag from `i` (just past its name) as the tokenizer does: quoted
/// values are read whole (a `>` or `<` inside quotes belongs to the value), the first
/// character of a name is part of it even when it is `=`, and a `/` right before the `>`
/// makes the tag self-closing. Returns the position of the `>` and the self-closing flag, and
/// leaves the attributes in `attrs`; `None` when the document ends inside the tag.
fn scan_start_tag(b: &[u8], mut i: usize, attrs: &mut Vec<Attr>) -> Option<(usize, bool)> {
    attrs.clear();
    loop {
        // Before an attribute name: whitespace and stray slashes.
        loop {
            match *b.get(i)? {
                b'>' => return Some((i, false)),
                b'/' if b.get(i + 1) == Some(&b'>') => return Some((i + 1, true)),
                c if c.is_ascii_whitespace() || c == b'/' => i += 1,
                _ => break,
            }
        }
        let start = i;
        i += 1;
        while b
            .get(i)
            .is_some_and(|&c| !(c.is_ascii_whitespace() || matches!(c, b'/' | b'>' | b'=')))
        {
            i += 1;
        }
        let name_end = i;
        let mut j = i;
        while b.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if b.get(j) == Some(&b'=') {
            j += 1;
            while b.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            match *b.get(j)? {
                q @ (b'"' | b'\'') => j += 1 + memchr::memchr(q, b.get(j + 1..)?)? + 1,
                // No value: the `>` ends the tag.
                b'>' => {}
                _ => {
                    while b
                        .get(j)
                        .is_some_and(|c| !c.is_ascii_whitespace() && *c != b'>')
                    {
                        j += 1;
                    }
                }
            }
            i = j;
        }
        attrs.push(Attr {
            start,
            name_end,
            end: i,
        });
    }
}

/// Attributes that reach the parser: the ones the cleaner reads and the ones that change how
/// the tree is built (`type` of an `<input>` in a table; `color`, `face`, `size` of a `<font>`
/// in SVG; `encoding` of MathML's `annotation-xml`).
fn kept_attribute(name: &[u8]) -> bool {
    hints::READ_ATTRIBUTES
        .iter()
        .chain(&["type", "color", "face", "size", "encoding"])
        .any(|k| name.eq_ignore_ascii_case(k.as_bytes()))
}

/// Tag name starting at `start`: ASCII alphanumerics, `-`, `:`, `_`, lower-cased into `buf`.
fn tag_name<'b>(b: &[u8], start: usize, buf: &'b mut [u8; 16]) -> (&'b [u8], usize) {
    let mut end = start;
    let mut n = 0;
    while let Some(&c) = b.get(end) {
        if !(c.is_ascii_alphanumeric() || c == b'-' || c == b':' || c == b'_') {
            break;
        }
        if n < buf.len() {
            buf[n] = c.to_ascii_lowercase();
            n += 1;
        }
        end += 1;
    }
    (&buf[..n], end)
}

/// Return `html` with script and style bodies cut out and start tags beyond [`MAX_DEPTH`]
/// removed (borrowed when nothing is).
pub(crate) fn prepare(html: &str) -> Cow<'_, str> {
    let b = html.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0usize;
    let mut depth = 0u32;
    let mut i = 0usize;
    let mut buf = [0u8; 16];
    let mut attrs: Vec<Attr> = Vec::new();
    while let Some(off) = b.get(i..).and_then(|s| memchr::memchr(b'<', s)) {
        let lt = i + off;
        let next = b.get(lt + 1).copied().unwrap_or(0);
        if b[lt + 1..].starts_with(b"!--") {
            // From the second dash: `<!-->` and `<!--->` are whole (empty) comments.
            i = match memchr::memmem::find(&b[lt + 2..], b"-->") {
                Some(e) => lt + 2 + e + 3,
                None => break,
            };
            continue;
        }
        if next == b'!' || next == b'?' {
            // Doctype or bogus comment: it ends at the first `>`.
            i = match memchr::memchr(b'>', &b[lt + 1..]) {
                Some(e) => lt + 1 + e + 1,
                None => break,
            };
            continue;
        }
        if next == b'/' {
            let (name, end) = tag_name(b, lt + 2, &mut buf);
            if !name.is_empty() && !is_void(name) && !is_optional_end(name) {
                depth = depth.saturating_sub(1);
            }
            i = end;
            continue;
        }
        if !next.is_ascii_alphabetic() {
            i = lt + 1;
            continue;
        }
        let (name, name_end) = tag_name(b, lt + 1, &mut buf);
        let Some((gt, self_closing)) = scan_start_tag(b, name_end, &mut attrs) else {
            break;
        };
        if name == b"plaintext" {
            break;
        }
        let name_ends = b
            .get(name_end)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>');
        if is_raw_text(name) && name_ends {
            let name = name.to_vec();
            let Some(close) = find_closing_tag(b, gt + 1, &name) else {
                break;
            };
            let body = &b[gt + 1..close];
            let unread = match name.as_slice() {
                b"style" => true,
                b"script" => {
                    !text::contains_ignore_case(&b[lt..gt], b"ld+json")
                        && memchr::memmem::find(body, b"<!--").is_none()
                }
                _ => false,
            };
            if unread && !body.is_empty() {
                let o = out.get_or_insert_with(|| String::with_capacity(html.len() / 2));
                o.push_str(&html[copied..=gt]);
                copied = close;
            }
            i = close + 2;
            continue;
        }
        if name == b"svg"
            && name_ends
            && !self_closing
            && let Some(close) = find_closing_tag(b, gt + 1, b"svg")
            && svg_body_is_closed(&b[gt + 1..close])
        {
            if close > gt + 1 {
                let o = out.get_or_insert_with(|| String::with_capacity(html.len() / 2));
                o.push_str(&html[copied..=gt]);
                copied = close;
            }
            i = close + 2;
            continue;
        }
        if !is_void(name) && !is_optional_end(name) && !self_closing {
            if depth >= MAX_DEPTH {
                // Drop this start tag: copy what precedes it, skip the tag itself.
                let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
                o.push_str(&html[copied..lt]);
                copied = gt + 1;
                i = gt + 1;
                continue;
            }
            depth += 1;
        }
        // Attributes nobody reads (`data-*`, `srcset`, `onclick`, ...; a quarter of what is
        // left of a page) are left out, so the tokenizer does not copy them char by char.
        if name_ends
            && attrs
                .iter()
                .any(|a| !kept_attribute(&b[a.start..a.name_end]))
        {
            let o = out.get_or_insert_with(|| String::with_capacity(html.len() / 2));
            o.push_str(&html[copied..name_end]);
            for a in attrs
                .iter()
                .filter(|a| kept_attribute(&b[a.start..a.name_end]))
            {
                o.push(' ');
                o.push_str(html.get(a.start..a.end).unwrap_or_default());
            }
            o.push_str(if self_closing { " />" } else { ">" });
            copied = gt + 1;
        }
        i = gt + 1;
    }
    match out {
        None => Cow::Borrowed(html),
        Some(mut o) => {
            o.push_str(&html[copied..]);
            Cow::Owned(o)
        }
    }
}

/// HTML tags that end foreign content when they appear inside `<svg>`: the tree builder
/// closes the `svg` and the tag and its text become part of the page (`</p>` and `</br>` too).
/// `font` only does so with some attributes; it is counted here whatever its attributes.
fn breaks_out_of_svg(name: &[u8]) -> bool {
    matches!(
        name,
        b"b" | b"big"
            | b"blockquote"
            | b"body"
            | b"br"
            | b"center"
            | b"code"
            | b"dd"
            | b"div"
            | b"dl"
            | b"dt"
            | b"em"
            | b"embed"
            | b"font"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
            | b"head"
            | b"hr"
            | b"i"
            | b"img"
            | b"li"
            | b"listing"
            | b"menu"
            | b"meta"
            | b"nobr"
            | b"ol"
            | b"p"
            | b"pre"
            | b"ruby"
            | b"s"
            | b"small"
            | b"span"
            | b"strong"
            | b"strike"
            | b"sub"
            | b"sup"
            | b"table"
            | b"tt"
            | b"u"
            | b"ul"
            | b"var"
    )
}

/// Does the first `</svg` after an `<svg>` start tag end it, with nothing inside that the
/// parser would take out of the SVG? No comment or CDATA section (either may hide that end
/// tag), no nested `<svg>` (its end tag comes first) and no HTML tag that breaks out of foreign
/// content. Then the body is never read (the cleaner skips `svg` whole) and can be cut.
fn svg_body_is_closed(body: &[u8]) -> bool {
    let mut buf = [0u8; 16];
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &body[i..]) {
        let lt = i + off;
        match body.get(lt + 1) {
            Some(b'!') => return false,
            Some(b'/') => {
                let (name, _) = tag_name(body, lt + 2, &mut buf);
                if breaks_out_of_svg(name) {
                    return false;
                }
            }
            Some(_) => {
                let (name, _) = tag_name(body, lt + 1, &mut buf);
                if name == b"svg" || breaks_out_of_svg(name) {
                    return false;
                }
            }
            None => {}
        }
        i = lt + 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_without_scripts_is_untouched() {
        let html = "<html><body><div class=a><p>a<p>b<br><img><!-- <script>x</script> --></div>";
        assert!(matches!(prepare(html), Cow::Borrowed(_)));
    }

    #[test]
    fn script_and_style_bodies_are_cut_and_the_tags_kept() {
        let html = "<head><style media=screen>p { color: red }</style></head><body>\
                    <p>a</p><SCRIPT type=module>if (a<b) document.write('<div>')</SCRIPT><p>b</p>";
        assert_eq!(
            prepare(html),
            "<head><style media=screen></style></head><body>\
             <p>a</p><SCRIPT type=module></SCRIPT><p>b</p>"
        );
    }

    #[test]
    fn json_ld_and_escaped_scripts_are_kept() {
        let ld = r#"<script type="application/LD+JSON">{"@type":"Product"}</script>"#;
        assert!(matches!(prepare(ld), Cow::Borrowed(_)));
        // Inside `<!--` the tokenizer's escaped states decide where the script ends.
        let escaped = "<script><!-- document.write('<script>x</script>') --></script><p>a</p>";
        assert!(matches!(prepare(escaped), Cow::Borrowed(_)));
    }

    #[test]
    fn a_script_tag_inside_an_attribute_value_is_not_a_tag() {
        // A `>` inside quotes does not end the tag either.
        let html = r#"<div title="a>b <script>" lang='x'><p>kept</p></div><i>x</i></script>"#;
        assert_eq!(
            prepare(html),
            "<div lang='x'><p>kept</p></div><i>x</i></script>"
        );
    }

    #[test]
    fn only_an_appropriate_end_tag_closes_a_script() {
        let html = "<script>a = '</scripts>'; b = 1</script ><p>c</p>";
        assert_eq!(prepare(html), "<script></script ><p>c</p>");
        // No end tag: the rest of the document is script; it goes to the parser unchanged.
        let open = "<p>a</p><script>never closed <p>b</p>";
        assert!(matches!(prepare(open), Cow::Borrowed(_)));
    }

    #[test]
    fn comments_and_bogus_comments_hide_tags() {
        // `<!-->` is a whole empty comment, so the script after it is real.
        let html = "<!--><script>x</script><!doctype html><? <script> ?>";
        assert_eq!(
            prepare(html),
            "<!--><script></script><!doctype html><? <script> ?>"
        );
    }

    #[test]
    fn svg_bodies_are_cut_unless_the_parser_would_leave_the_svg_early() {
        let icon =
            r#"<a href=/><svg viewBox="0 0 9 9"><path d="M0 0h9"/><title>x</title></svg>Home</a>"#;
        assert_eq!(
            prepare(icon),
            r#"<a href=/><svg viewBox="0 0 9 9"></svg>Home</a>"#
        );
        // `<p>` breaks out of foreign content: "text" is page text after the svg.
        let breakout = "<svg><p>text</p></svg>";
        assert!(matches!(prepare(breakout), Cow::Borrowed(_)));
        // A comment or a nested svg may hide where the svg really ends.
        let comment = "<svg><!-- </svg> --><g/></svg><p>a</p>";
        assert!(matches!(prepare(comment), Cow::Borrowed(_)));
        // (the inner one is whole and goes).
        let nested = "<svg><svg><g/></svg><g/></svg>";
        assert_eq!(prepare(nested), "<svg><svg></svg><g/></svg>");
        // A self-closing svg has no body: the next svg's end tag is not its end.
        let closed = "<svg/><p>kept</p><svg><g/></svg>";
        assert_eq!(prepare(closed), "<svg/><p>kept</p><svg></svg>");
    }

    #[test]
    fn unread_attributes_are_dropped_and_read_ones_kept_as_written() {
        let html = r#"<DIV data-x='{"a":1}' CLASS="nav main" onclick=go() id=top/><br/><a href=x/ rel=nofollow>a</a>"#;
        assert_eq!(
            prepare(html),
            r#"<DIV CLASS="nav main" id=top/><br/><a href=x/>a</a>"#
        );
        // Every attribute the arena reads reaches the parser, in its place.
        let all: String = hints::READ_ATTRIBUTES
            .iter()
            .map(|a| format!(" {a}=v-{a}"))
            .collect();
        let page = format!("<p data-drop=1{all} srcset=x>text</p>");
        let kept = prepare(&page);
        assert_eq!(kept, format!("<p{all}>text</p>"));
        let doc = scraper::Html::parse_document(&kept);
        let p = doc
            .root_element()
            .descendants()
            .find_map(|n| n.value().as_element().filter(|e| e.name() == "p"))
            .expect("p element");
        for a in hints::READ_ATTRIBUTES {
            assert_eq!(p.attr(a), Some(format!("v-{a}").as_str()), "{a}");
        }
        // Odd input read as the tokenizer reads it: a name starting with `=`, no space after a
        // quoted value, a value after spaces (`data-b`'s value is `id=i`), a missing value.
        let odd = "<p =x data-a=\"1\"class=k hidden data-b= id=i lang=>t</p>";
        assert_eq!(prepare(odd), "<p class=k hidden lang=>t</p>");
    }

    #[test]
    fn deep_nesting_is_cut_to_max_depth() {
        let html = format!("{}x{}", "<div>".repeat(1000), "</div>".repeat(1000));
        let cut = prepare(&html);
        assert_eq!(cut.matches("<div>").count(), MAX_DEPTH as usize);
        assert!(cut.contains('x'));
    }

    #[test]
    fn sibling_blocks_do_not_accumulate() {
        let html = "<div>a</div>".repeat(10_000);
        assert!(matches!(prepare(&html), Cow::Borrowed(_)));
    }
}
