//! Text output: walk a subtree of the arena and write normalised text with paragraph and
//! line breaks at block boundaries.
//!
//! Breaks are *pending* until the next visible character, so nested blocks collapse into one
//! break, the strongest wins (paragraph over line over space), and nothing trails. Words from
//! adjacent blocks are therefore never glued.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::dom::{Dom, Kind};
use super::hints::Display;

/// A break waiting to be written before the next visible character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    None,
    Space,
    Line,
    Para,
}

/// Characters dropped from text: soft hyphen and zero-width characters (invisible, and they
/// split words for tokenisers).
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

/// Writes normalised text.
pub(crate) struct Writer {
    out: String,
    pending: Pending,
    /// Byte offset where the current paragraph starts, and where the separator before it
    /// starts (equal for the first paragraph).
    para_start: usize,
    sep_start: usize,
    /// A paragraph of at least this many bytes that repeats an earlier one is dropped
    /// (0: keep all). Responsive pages carry the same block twice, for mobile and desktop.
    dedup_min: usize,
    /// Hashes of the paragraphs written so far (only when `dedup_min > 0`).
    seen: HashSet<u64>,
}

impl Writer {
    pub(crate) fn new(capacity: usize) -> Self {
        Writer {
            out: String::with_capacity(capacity),
            pending: Pending::None,
            para_start: 0,
            sep_start: 0,
            dedup_min: 0,
            seen: HashSet::new(),
        }
    }

    /// Drop repeated paragraphs of at least `min` bytes (0: keep all).
    pub(crate) fn dedup(mut self, min: usize) -> Self {
        self.dedup_min = min;
        self
    }

    /// The current paragraph is complete: drop it when it repeats an earlier one.
    fn end_paragraph(&mut self) {
        if self.dedup_min == 0 {
            return;
        }
        let Some(p) = self.out.get(self.para_start..) else {
            return;
        };
        if p.len() < self.dedup_min {
            return;
        }
        let mut h = std::hash::DefaultHasher::new();
        p.hash(&mut h);
        if !self.seen.insert(h.finish()) {
            self.out.truncate(self.sep_start);
        }
    }

    fn brk(&mut self, p: Pending) {
        if p > self.pending {
            self.pending = p;
        }
    }

    fn flush_pending(&mut self) {
        if self.pending == Pending::Para {
            self.end_paragraph();
        }
        if !self.out.is_empty() {
            match self.pending {
                Pending::None => {}
                Pending::Space => self.out.push(' '),
                Pending::Line => self.out.push('\n'),
                Pending::Para => {
                    self.sep_start = self.out.len();
                    self.out.push_str("\n\n");
                }
            }
        }
        if self.pending == Pending::Para || self.out.is_empty() {
            self.para_start = self.out.len();
            if self.out.is_empty() {
                self.sep_start = 0;
            }
        }
        self.pending = Pending::None;
    }

    /// Flowing text: whitespace runs become one space.
    fn text(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() {
                self.brk(Pending::Space);
            } else if !is_invisible(c) && !c.is_control() {
                self.flush_pending();
                self.out.push(c);
            }
        }
    }

    /// Preformatted text: newlines kept, other whitespace runs become one space.
    fn pre(&mut self, s: &str) {
        for c in s.chars() {
            if c == '\n' {
                self.brk(Pending::Line);
            } else if c.is_whitespace() {
                self.brk(Pending::Space);
            } else if !is_invisible(c) && !c.is_control() {
                self.flush_pending();
                self.out.push(c);
            }
        }
    }

    /// Bytes written so far (pending breaks not included).
    fn len(&self) -> usize {
        self.out.len()
    }

    /// Forget everything written from byte `at` on (a paragraph boundary recorded with
    /// [`Writer::len`]); the next text starts a new paragraph.
    fn truncate(&mut self, at: usize) {
        if at >= self.out.len() {
            return;
        }
        self.out.truncate(at);
        self.para_start = self.para_start.min(at);
        self.sep_start = self.sep_start.min(at);
        self.brk(Pending::Para);
    }

    pub(crate) fn finish(mut self) -> String {
        self.end_paragraph();
        self.out
    }
}

/// Options for one text walk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Emit {
    /// Skip blocks that are mostly link text (link lists inside the content).
    pub drop_link_blocks: bool,
    /// A block with at least this share of link text is a link list (table of contents, tag
    /// list, "read more" list), not prose.
    pub link_block_density: f64,
    /// Arena index of an element to leave out (the heading used as the title).
    pub skip: Option<usize>,
    /// See [`Writer::dedup`].
    pub dedup_min: usize,
    /// Leave out a heading when everything after it in its parent was dropped ("Related
    /// posts" over a dropped link list).
    pub drop_orphan_headings: bool,
}

/// A heading written by [`emit`], waiting to see whether its section keeps any text.
#[derive(Debug, Clone, Copy)]
struct Heading {
    /// End of the heading's own subtree and of its parent's.
    end: usize,
    parent_end: usize,
    /// Output length before the heading and after it.
    mark: usize,
    after: Option<usize>,
    /// Something after the heading in its parent was dropped.
    dropped: bool,
}

impl Heading {
    /// The heading's section is over (or another heading starts): drop the heading when
    /// nothing was written after it and something was dropped.
    fn settle(self, w: &mut Writer) {
        if self.dropped && self.after == Some(w.len()) {
            w.truncate(self.mark);
        }
    }
}

/// Is arena item `i` a link-list block to drop?
fn is_link_block(dom: &Dom<'_>, i: usize, density: f64) -> bool {
    let it = &dom.items[i];
    matches!(
        it.tag,
        "ul" | "ol" | "div" | "section" | "table" | "p" | "dl" | "li" | "tr"
    ) && it.good.chars > 0
        && it.good.link_density() >= density
}

/// Write the surviving text of the subtree rooted at `root`.
pub(crate) fn emit(dom: &Dom<'_>, root: usize, opts: Emit) -> String {
    let items = &dom.items;
    let Some(r) = items.get(root) else {
        return String::new();
    };
    let end = r.end as usize;
    let mut w = Writer::new((r.good.chars as usize).saturating_mul(2) + 16).dedup(opts.dedup_min);
    // Open elements as (end index, display): closing emits the trailing break.
    let mut open: Vec<(usize, Display)> = Vec::with_capacity(32);
    let mut pre_depth = 0usize;
    let mut heading: Option<Heading> = None;
    let mut i = root;
    while i < end {
        while let Some(&(e, d)) = open.last() {
            if e > i {
                break;
            }
            open.pop();
            close(&mut w, d, &mut pre_depth);
        }
        if let Some(h) = heading.as_mut() {
            if h.after.is_none() && i >= h.end {
                h.after = Some(w.len());
            }
            if i >= h.parent_end {
                h.settle(&mut w);
                heading = None;
            }
        }
        let it = &items[i];
        if it.removed
            || opts.skip == Some(i)
            || (opts.drop_link_blocks
                && i != root
                && is_link_block(dom, i, opts.link_block_density))
        {
            if let Some(h) = heading.as_mut()
                && h.after.is_some()
            {
                h.dropped = true;
            }
            if it.display != Display::Inline {
                w.brk(Pending::Para);
            } else {
                w.brk(Pending::Space);
            }
            i = it.end as usize;
            continue;
        }
        match it.kind {
            Kind::Text(s) => {
                if pre_depth > 0 {
                    w.pre(s);
                } else {
                    w.text(s);
                }
            }
            Kind::Elem(_) => {
                if opts.drop_orphan_headings
                    && it.heading > 0
                    && i != root
                    && let Some(p) = items.get(it.parent as usize)
                {
                    if let Some(h) = heading.take() {
                        h.settle(&mut w);
                    }
                    heading = Some(Heading {
                        end: it.end as usize,
                        parent_end: p.end as usize,
                        mark: w.len(),
                        after: None,
                        dropped: false,
                    });
                }
                match it.display {
                    Display::Block | Display::Pre => w.brk(Pending::Para),
                    Display::Line | Display::Cell | Display::Break => w.brk(Pending::Line),
                    Display::Inline => {}
                }
                if it.display == Display::Pre {
                    pre_depth += 1;
                }
                open.push((it.end as usize, it.display));
            }
        }
        i += 1;
    }
    while let Some((_, d)) = open.pop() {
        close(&mut w, d, &mut pre_depth);
    }
    if let Some(mut h) = heading {
        if h.after.is_none() {
            h.after = Some(w.len());
        }
        h.settle(&mut w);
    }
    w.finish()
}

fn close(w: &mut Writer, d: Display, pre_depth: &mut usize) {
    match d {
        Display::Block => w.brk(Pending::Para),
        Display::Pre => {
            *pre_depth = pre_depth.saturating_sub(1);
            w.brk(Pending::Para);
        }
        Display::Line | Display::Cell => w.brk(Pending::Line),
        Display::Break | Display::Inline => {}
    }
}

/// Does `hay` contain `needle`, ignoring ASCII case?
pub(crate) fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The first `max` characters of `s`.
pub(crate) fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Normalise a short string (title, heading): collapse whitespace, drop invisible chars.
pub(crate) fn normalise_inline(s: &str) -> String {
    let mut w = Writer::new(s.len());
    w.text(s);
    w.finish()
}

/// Visible text of one subtree on one line (for headings).
pub(crate) fn inline_text(dom: &Dom<'_>, root: usize) -> String {
    let items = &dom.items;
    let Some(r) = items.get(root) else {
        return String::new();
    };
    let mut w = Writer::new(64);
    for it in &items[root..r.end as usize] {
        match it.kind {
            Kind::Text(s) => w.text(s),
            Kind::Elem(_) => {
                if it.display != Display::Inline {
                    w.brk(Pending::Space);
                }
            }
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::{Pending, Writer};

    fn para(w: &mut Writer, s: &str) {
        w.brk(Pending::Para);
        w.text(s);
    }

    #[test]
    fn repeated_paragraphs_are_written_once_short_ones_are_kept() {
        let mut w = Writer::new(64).dedup(20);
        para(&mut w, "The same long paragraph, twice.");
        para(&mut w, "Short");
        para(&mut w, "The same long paragraph, twice.");
        para(&mut w, "Short");
        para(&mut w, "Another paragraph.");
        assert_eq!(
            w.finish(),
            "The same long paragraph, twice.\n\nShort\n\nShort\n\nAnother paragraph."
        );
    }

    #[test]
    fn a_repeated_last_paragraph_leaves_no_trailing_break() {
        let mut w = Writer::new(64).dedup(20);
        para(&mut w, "The same long paragraph, twice.");
        para(&mut w, "The same long paragraph, twice.");
        assert_eq!(w.finish(), "The same long paragraph, twice.");
    }

    #[test]
    fn without_dedup_everything_is_kept() {
        let mut w = Writer::new(64);
        para(&mut w, "The same long paragraph, twice.");
        para(&mut w, "The same long paragraph, twice.");
        assert_eq!(
            w.finish(),
            "The same long paragraph, twice.\n\nThe same long paragraph, twice."
        );
    }
}
