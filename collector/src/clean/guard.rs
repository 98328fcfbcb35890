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

/// Position of the `>` that ends the start tag whose attributes begin at `i`, reading quoted
/// attribute values whole (a `>` or `<` inside quotes belongs to the value).
fn start_tag_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match *b.get(i)? {
            b'>' => return Some(i),
            b'=' => {
                i += 1;
                while b.get(i).is_some_and(u8::is_ascii_whitespace) {
                    i += 1;
                }
                match *b.get(i)? {
                    q @ (b'"' | b'\'') => i += 1 + memchr::memchr(q, b.get(i + 1..)?)? + 1,
                    b'>' => return Some(i),
                    _ => {
                        while b
                            .get(i)
                            .is_some_and(|c| !c.is_ascii_whitespace() && *c != b'>')
                        {
                            i += 1;
                        }
                    }
                }
            }
            _ => i += 1,
        }
    }
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
        let Some(gt) = start_tag_end(b, name_end) else {
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
                    !contains_ignore_case(&b[lt..gt], b"ld+json")
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
        let self_closing = gt > 0 && b[gt - 1] == b'/';
        if !is_void(name) && !is_optional_end(name) && !self_closing {
            if depth >= MAX_DEPTH {
                // Drop this start tag: copy what precedes it, skip the tag itself.
                let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
                o.push_str(&html[copied..lt]);
                copied = gt + 1;
            } else {
                depth += 1;
            }
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

/// Does `hay` contain `needle` (lower-case ASCII), ignoring ASCII case?
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_without_scripts_is_untouched() {
        let html =
            "<html><body><div><p>a<p>b<br><img src=x><!-- <script>x</script> --></div></body>";
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
        assert!(matches!(prepare(html), Cow::Borrowed(_)));
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
