//! Input guard against pathological nesting, run before parsing.
//!
//! html5ever's tree builder does scope checks that walk the stack of open elements, so a
//! document nested 100,000 deep costs O(depth²) — about a minute. This guard scans the raw
//! HTML once (a byte search for `<`), tracks an estimate of the nesting depth, and drops the
//! start tags (not their text) that would nest deeper than [`MAX_DEPTH`]. Real pages stay far
//! below that depth, so for them the input is returned unchanged and uncopied.
//!
//! The estimate counts start tags of elements that need an end tag and subtracts end tags.
//! Void elements, elements whose end tag is optional (`p`, `li`, `td`…; the parser closes them
//! itself) and self-closing tags do not count; the bodies of raw-text elements (`script`,
//! `style`, `textarea`…) and comments are skipped so that markup inside them is not counted.

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

/// Return `html` with start tags beyond [`MAX_DEPTH`] removed (borrowed when nothing is).
pub(crate) fn limit_depth(html: &str) -> Cow<'_, str> {
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
            i = match memchr::memmem::find(&b[lt + 4..], b"-->") {
                Some(e) => lt + 4 + e + 3,
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
        let Some(gt_off) = memchr::memchr(b'>', &b[name_end..]) else {
            break;
        };
        let gt = name_end + gt_off;
        if name == b"plaintext" {
            break;
        }
        if is_raw_text(name) {
            let name = name.to_vec();
            i = match find_end_tag(b, gt + 1, &name) {
                Some(e) => e + 2,
                None => break,
            };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_markup_is_untouched() {
        let html = "<html><body><div><p>a<p>b<br><img src=x><script>if (a<b) '<div>'</script></div></body>";
        assert!(matches!(limit_depth(html), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_cut_to_max_depth() {
        let html = format!("{}x{}", "<div>".repeat(1000), "</div>".repeat(1000));
        let cut = limit_depth(&html);
        assert_eq!(cut.matches("<div>").count(), MAX_DEPTH as usize);
        assert!(cut.contains('x'));
    }

    #[test]
    fn sibling_blocks_do_not_accumulate() {
        let html = "<div>a</div>".repeat(10_000);
        assert!(matches!(limit_depth(&html), Cow::Borrowed(_)));
    }
}
