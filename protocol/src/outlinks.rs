//! `Outlinks`: the links a record lists, held in one buffer.
//!
//! A record carries a page's links for the validator's frontier: ~115 a page on the WCXB pages
//! the ingest bench uses. As a `Vec<String>` each link is an allocation when a batch is decoded
//! and a free when it is dropped, on every record a validator ingests, though most are never
//! read again. Here they are one string and the end offset of each link in it; decoding appends
//! each JSON string to the buffer as the parser hands it over, without a `String` of its own. On
//! the wire nothing changes: a JSON array of strings, as a `Vec<String>` serialises.

use std::fmt;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A record's links, in order. Serialises as (and deserialises from) an array of strings.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Outlinks {
    /// Every link, one after another.
    buf: String,
    /// The end of each link in `buf`; each link starts where the previous one ends.
    ends: Vec<usize>,
}

impl Outlinks {
    /// No links.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of links.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no links.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Appends `link`.
    pub fn push(&mut self, link: &str) {
        self.buf.push_str(link);
        self.ends.push(self.buf.len());
    }

    /// Removes the last link and returns it.
    pub fn pop(&mut self) -> Option<String> {
        let end = self.ends.pop()?;
        let start = self.ends.last().copied().unwrap_or(0);
        let link = self.buf.get(start..end).map(str::to_owned);
        self.buf.truncate(start);
        link
    }

    /// Removes every link.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Every link one after another, with nothing between them: for a check that one scan of
    /// all of them can clear (a byte no link may hold).
    pub fn joined(&self) -> &str {
        &self.buf
    }

    /// The links in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            buf: &self.buf,
            ends: self.ends.iter(),
            start: 0,
        }
    }
}

/// The links of an [`Outlinks`], in order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    buf: &'a str,
    ends: std::slice::Iter<'a, usize>,
    start: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let end = *self.ends.next()?;
        // Offsets are only ever pushed at the end of a pushed `&str`, so the slice is there.
        let link = self.buf.get(self.start..end).unwrap_or_default();
        self.start = end;
        Some(link)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Outlinks {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Outlinks {
    fn from_iter<I: IntoIterator<Item = S>>(links: I) -> Self {
        let mut out = Outlinks::new();
        for link in links {
            out.push(link.as_ref());
        }
        out
    }
}

impl From<Vec<String>> for Outlinks {
    fn from(links: Vec<String>) -> Self {
        links.iter().collect()
    }
}

impl fmt::Debug for Outlinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Outlinks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Outlinks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(LinksVisitor)
    }
}

/// Links a list that is not empty is sized for before more are read ([`LinksVisitor`]).
const TYPICAL_LINKS: usize = 64;
/// Bytes a link is sized for ([`TYPICAL_LINKS`]).
const TYPICAL_LINK_BYTES: usize = 64;

/// Reads an array of strings into one [`Outlinks`].
struct LinksVisitor;

impl<'de> Visitor<'de> for LinksVisitor {
    type Value = Outlinks;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of link strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Outlinks, A::Error> {
        let mut links = Outlinks::new();
        if seq.next_element_seed(Append(&mut links))?.is_none() {
            return Ok(links);
        }
        // A list that has links mostly has many (~115 of ~70 bytes each on the bench's real pages): room
        // for a typical page's up front instead of growing through a dozen reallocations.
        links.buf.reserve(TYPICAL_LINKS * TYPICAL_LINK_BYTES);
        links.ends.reserve(TYPICAL_LINKS);
        while seq.next_element_seed(Append(&mut links))?.is_some() {}
        Ok(links)
    }
}

/// Deserialises one string straight onto the end of an [`Outlinks`].
struct Append<'l>(&'l mut Outlinks);

impl<'de> DeserializeSeed<'de> for Append<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Append<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a link string")
    }

    fn visit_str<E: serde::de::Error>(self, link: &str) -> Result<(), E> {
        self.0.push(link);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(items: &[&str]) -> Outlinks {
        items.iter().collect()
    }

    #[test]
    fn links_come_back_in_order() {
        let l = links(&["https://a.example/", "", "https://b.example/é?q=1"]);
        assert_eq!(l.len(), 3);
        assert!(!l.is_empty());
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            ["https://a.example/", "", "https://b.example/é?q=1"]
        );
        assert_eq!(l.iter().len(), 3);
        assert_eq!(l.joined(), "https://a.example/https://b.example/é?q=1");
        assert!(Outlinks::new().is_empty());
        assert_eq!(Outlinks::new().iter().next(), None);
    }

    #[test]
    fn pop_and_clear_leave_the_rest_intact() {
        let mut l = links(&["https://a.example/", "https://b.example/ü"]);
        assert_eq!(l.pop().as_deref(), Some("https://b.example/ü"));
        assert_eq!(l.iter().collect::<Vec<_>>(), ["https://a.example/"]);
        l.push("https://c.example/");
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            ["https://a.example/", "https://c.example/"]
        );
        assert_eq!(l.pop().as_deref(), Some("https://c.example/"));
        assert_eq!(l.pop().as_deref(), Some("https://a.example/"));
        assert_eq!(l.pop(), None);
        l.push("x");
        l.clear();
        assert!(l.is_empty());
        assert_eq!(l, Outlinks::new());
    }

    #[test]
    fn the_wire_form_is_an_array_of_strings_as_a_vec_of_strings_has() {
        let v: Vec<String> = vec![
            "https://a.example/".into(),
            "https://b.example/\"q\"\\\u{1}".into(),
            String::new(),
            "https://c.example/日本".into(),
        ];
        let l = Outlinks::from(v.clone());
        let json = serde_json::to_string(&l).expect("serialise");
        assert_eq!(json, serde_json::to_string(&v).expect("serialise"));
        // Escaped strings reach the visitor decoded, plain ones borrowed: both append the same.
        let back: Outlinks = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, l);
        assert_eq!(back.iter().collect::<Vec<_>>(), v);
        let empty: Outlinks = serde_json::from_str("[]").expect("empty");
        assert!(empty.is_empty());
        let from_reader: Outlinks =
            serde_json::from_reader(json.as_bytes()).expect("deserialise from a reader");
        assert_eq!(from_reader, l);
    }

    #[test]
    fn anything_but_an_array_of_strings_is_refused() {
        for bad in [
            "\"https://a.example/\"",
            "[1]",
            "[\"a\", null]",
            "{\"a\": 1}",
            "[\"a\"",
            "[[\"a\"]]",
        ] {
            assert!(
                serde_json::from_str::<Outlinks>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }
}
