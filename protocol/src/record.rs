//! `Record`: what one fetched page becomes, signed by the node that fetched it.

use serde::{Deserialize, Serialize};

use crate::{Canon, Digest, Outlinks, ProtocolError, PublicKey, SecretKey, Signature};

/// Domain tag of a record's signing bytes.
pub const RECORD_DOMAIN: &str = "gleaner/record/v1";

/// Longest URL accepted (bytes). Browsers and CDNs cap around 8 KiB; longer ones are abuse.
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Longest title (bytes). Real titles are short; this bounds junk.
pub const MAX_TITLE_BYTES: usize = 2 * 1024;
/// Longest cleaned text (bytes). The node's body cap is 5 MiB of HTML; main text is a fraction.
pub const MAX_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Longest short metadata field (content type, charset, lease id, language).
pub const MAX_SHORT_FIELD_BYTES: usize = 256;
/// Most outlinks a record carries. Pages with more links are mostly link farms; the frontier needs
/// a sample, not all of them.
pub const MAX_OUTLINKS: usize = 1_000;
/// Outlinks a validator reads of a record: its first ones, up to this many (the frontier's budget
/// for one page). Nodes send no more, since no validator would read them: the links are most of a
/// record's bytes on link-heavy pages (~115 a page, ~9 KB, on the WCXB pages) and every one costs
/// the consumer's upload and the validator's decoding, digest and storage. A validator still
/// accepts up to [`MAX_OUTLINKS`], as nodes before this limit sent.
pub const OUTLINKS_READ: usize = 100;
/// Earliest plausible fetch time (2024-01-01T00:00:00Z, in Unix milliseconds): Gleaner did not exist
/// before, so earlier times are forged or broken clocks.
pub const MIN_FETCH_TIME_MS: i64 = 1_704_067_200_000;

/// How robots.txt treated the URL when the node fetched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RobotsVerdict {
    /// robots.txt was fetched (2xx) and allows the URL for Gleaner's user agent.
    Allowed,
    /// robots.txt answered 4xx ("unavailable" in RFC 9309): everything may be fetched.
    Unavailable,
}

impl RobotsVerdict {
    /// The byte that stands for the verdict in signing bytes.
    pub fn code(self) -> u8 {
        match self {
            RobotsVerdict::Allowed => 1,
            RobotsVerdict::Unavailable => 2,
        }
    }
}

/// One fetched page, cleaned, hashed and signed by the node. Verifies on its own, without its batch.
///
/// Times are Unix milliseconds (UTC). Digests are blake3. `signature` is the node's ed25519
/// signature over [`Record::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The validator's lease (job) this record answers.
    pub lease_id: String,
    /// The URL the node was asked to fetch.
    pub url: String,
    /// The URL after redirects (equal to `url` when there were none).
    pub final_url: String,
    /// When the response was received, Unix milliseconds UTC.
    pub fetched_at_ms: i64,
    /// HTTP status code of the final response.
    pub status: u16,
    /// `Content-Type` media type of the final response, lower-cased, without parameters.
    pub content_type: String,
    /// Character encoding the body was decoded with (WHATWG label, lower-cased).
    pub charset: String,
    /// Bytes received on the wire for the body (before content decoding).
    pub wire_bytes: u64,
    /// Bytes of the body after content decoding (what `raw_digest` covers).
    pub body_bytes: u64,
    /// Whether the body was cut at the node's size cap.
    pub truncated: bool,
    /// blake3 of the decoded body bytes (before charset decoding).
    pub raw_digest: Digest,
    /// Cleaned title.
    pub title: String,
    /// Cleaned main text: paragraphs separated by a blank line.
    pub text: String,
    /// Language of the text, ISO 639-1 (`und` when unknown).
    pub lang: String,
    /// blake3 of `text` as UTF-8.
    pub text_digest: Digest,
    /// robots.txt verdict for the URL.
    pub robots: RobotsVerdict,
    /// robots.txt `Crawl-delay` for Gleaner in milliseconds, 0 when none; reported for politeness.
    pub crawl_delay_ms: u32,
    /// Absolute http(s) links found on the page, for the validator's frontier (not part of the
    /// text). On the wire, an array of strings.
    pub outlinks: Outlinks,
    /// [`outlinks_digest`] of `outlinks`.
    pub outlinks_digest: Digest,
    /// The node that fetched the page.
    pub node: PublicKey,
    /// The node's signature over the signing bytes.
    pub signature: Signature,
}

/// The unsigned content of a record, as the node assembles it before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDraft {
    pub lease_id: String,
    pub url: String,
    pub final_url: String,
    pub fetched_at_ms: i64,
    pub status: u16,
    pub content_type: String,
    pub charset: String,
    pub wire_bytes: u64,
    pub body_bytes: u64,
    pub truncated: bool,
    pub raw_digest: Digest,
    pub title: String,
    pub text: String,
    pub lang: String,
    pub robots: RobotsVerdict,
    pub crawl_delay_ms: u32,
    pub outlinks: Vec<String>,
}

impl RecordDraft {
    /// Computes the text digest and signs. This is how every record comes into being.
    pub fn sign(self, key: &SecretKey) -> Record {
        let mut record = Record {
            text_digest: Digest::of(self.text.as_bytes()),
            lease_id: self.lease_id,
            url: self.url,
            final_url: self.final_url,
            fetched_at_ms: self.fetched_at_ms,
            status: self.status,
            content_type: self.content_type,
            charset: self.charset,
            wire_bytes: self.wire_bytes,
            body_bytes: self.body_bytes,
            truncated: self.truncated,
            raw_digest: self.raw_digest,
            title: self.title,
            text: self.text,
            lang: self.lang,
            robots: self.robots,
            crawl_delay_ms: self.crawl_delay_ms,
            outlinks_digest: outlinks_digest(&self.outlinks),
            outlinks: Outlinks::from(self.outlinks),
            node: key.public(),
            signature: Signature::from_bytes([0; 64]),
        };
        record.signature = key.sign(&record.signing_bytes());
        record
    }
}

impl Record {
    /// The exact bytes the node signs: domain tag `gleaner/record/v1`, then, in this order,
    /// `lease_id` str, `url` str, `final_url` str, `fetched_at_ms` i64, `status` u16,
    /// `content_type` str, `charset` str, `wire_bytes` u64, `body_bytes` u64, `truncated` bool,
    /// `raw_digest` 32 bytes, `title` str, `text_digest` 32 bytes, `lang` str, `robots` u8
    /// (1 allowed, 2 unavailable), `crawl_delay_ms` u32, `outlinks_digest` 32 bytes, `node` 32 bytes.
    /// See [`crate::canon`] for the encoding of each kind. The text and the outlinks are covered
    /// through their digests, so a dataset row can be verified without the outlinks.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(RECORD_DOMAIN);
        c.str(&self.lease_id)
            .str(&self.url)
            .str(&self.final_url)
            .i64(self.fetched_at_ms)
            .u16(self.status)
            .str(&self.content_type)
            .str(&self.charset)
            .u64(self.wire_bytes)
            .u64(self.body_bytes)
            .bool(self.truncated)
            .digest(&self.raw_digest)
            .str(&self.title)
            .digest(&self.text_digest)
            .str(&self.lang)
            .u8(self.robots.code())
            .u32(self.crawl_delay_ms)
            .digest(&self.outlinks_digest)
            .key(&self.node);
        c.finish()
    }

    /// The record's id: blake3 of its signing bytes. Content-derived, so the same record always has
    /// the same id, and any change to a signed field changes it.
    pub fn id(&self) -> Digest {
        Self::id_of(&self.signing_bytes())
    }

    /// The id of the record whose [`Record::signing_bytes`] are `signing_bytes`, for a caller
    /// that has built them already.
    pub fn id_of(signing_bytes: &[u8]) -> Digest {
        Digest::of_canonical(signing_bytes)
    }

    /// Checks everything that can be checked about a record alone: field limits and shapes, the
    /// text digest, and the node's signature.
    pub fn verify(&self) -> Result<(), ProtocolError> {
        self.check_fields()?;
        self.check_text_digest()?;
        self.node
            .verify(&self.signing_bytes(), &self.signature, "record")
    }

    /// The text digest matches the text and the outlinks digest matches the outlinks.
    pub fn check_text_digest(&self) -> Result<(), ProtocolError> {
        let computed = Digest::of(self.text.as_bytes());
        if computed != self.text_digest {
            return Err(ProtocolError::DigestMismatch {
                what: "text",
                claimed: self.text_digest.to_string(),
                computed: computed.to_string(),
            });
        }
        let computed = outlinks_digest(&self.outlinks);
        if computed != self.outlinks_digest {
            return Err(ProtocolError::DigestMismatch {
                what: "outlinks",
                claimed: self.outlinks_digest.to_string(),
                computed: computed.to_string(),
            });
        }
        Ok(())
    }

    /// Field limits and shapes: lengths, no control characters in single-line fields, http(s)
    /// URLs, a plausible fetch time, a valid key.
    pub fn check_fields(&self) -> Result<(), ProtocolError> {
        self.check_fields_with(self.node.is_valid())
    }

    /// [`Record::check_fields`] given whether `node` is a valid key (`node.is_valid()`), for
    /// callers checking many records of one node: validating a key decompresses it.
    pub(crate) fn check_fields_with(&self, node_is_valid: bool) -> Result<(), ProtocolError> {
        limit("url", &self.url, MAX_URL_BYTES)?;
        limit("final_url", &self.final_url, MAX_URL_BYTES)?;
        limit("title", &self.title, MAX_TITLE_BYTES)?;
        limit("text", &self.text, MAX_TEXT_BYTES)?;
        for (field, value) in [
            ("lease_id", &self.lease_id),
            ("content_type", &self.content_type),
            ("charset", &self.charset),
            ("lang", &self.lang),
        ] {
            limit(field, value, MAX_SHORT_FIELD_BYTES)?;
        }
        for (field, value) in [
            ("lease_id", &self.lease_id),
            ("url", &self.url),
            ("final_url", &self.final_url),
            ("title", &self.title),
            ("content_type", &self.content_type),
            ("charset", &self.charset),
            ("lang", &self.lang),
        ] {
            single_line(field, value)?;
        }
        if self.outlinks.len() > MAX_OUTLINKS {
            return Err(ProtocolError::TooLarge {
                what: "outlinks",
                limit: MAX_OUTLINKS as u64,
                actual: self.outlinks.len() as u64,
            });
        }
        // One scan of all the links clears nearly every record; a link with a suspect byte
        // sends every link through both checks in order, so the first failure is reported.
        let suspect = may_hold_control(self.outlinks.joined().as_bytes());
        for link in self.outlinks.iter() {
            limit("outlinks", link, MAX_URL_BYTES)?;
            if suspect {
                single_line("outlinks", link)?;
            }
        }
        if self.lease_id.is_empty() {
            return Err(invalid("lease_id", "empty"));
        }
        for (field, value) in [("url", &self.url), ("final_url", &self.final_url)] {
            let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(invalid(field, "not an http(s) URL"));
            }
        }
        if !(100..=599).contains(&self.status) {
            return Err(invalid(
                "status",
                &format!("{} is not an HTTP status", self.status),
            ));
        }
        if self.fetched_at_ms < MIN_FETCH_TIME_MS {
            return Err(invalid("fetched_at_ms", "before 2024"));
        }
        if self.body_bytes < self.text.len() as u64 / 8 && !self.text.is_empty() {
            // Cleaned text cannot be much larger than the body it came from.
            return Err(invalid(
                "text",
                "longer than the body it was extracted from",
            ));
        }
        if !node_is_valid {
            return Err(invalid("node", "not a valid ed25519 public key"));
        }
        Ok(())
    }
}

/// Digest of a list of links: blake3 over the canonical encoding with domain tag
/// `gleaner/outlinks/v1`, the count u32, then each link as a str.
pub fn outlinks_digest<I>(links: I) -> Digest
where
    I: IntoIterator,
    I::Item: AsRef<str>,
    I::IntoIter: ExactSizeIterator,
{
    let links = links.into_iter();
    let mut c = Canon::new("gleaner/outlinks/v1");
    c.u32(u32::try_from(links.len()).unwrap_or(u32::MAX));
    for link in links {
        c.str(link.as_ref());
    }
    Digest::of_canonical(&c.finish())
}

fn limit(field: &'static str, value: &str, max: usize) -> Result<(), ProtocolError> {
    if value.len() > max {
        return Err(ProtocolError::TooLarge {
            what: field,
            limit: max as u64,
            actual: value.len() as u64,
        });
    }
    Ok(())
}

fn single_line(field: &'static str, value: &str) -> Result<(), ProtocolError> {
    // The control characters (Cc) are U+0000–U+001F and U+007F–U+009F: in UTF-8, a byte below
    // 0x20, 0x7F, or 0xC2 leading U+0080–U+00BF. A scan of bytes clears nearly every value
    // (a record's ~115 outlinks among them); the rare 0xC2 is decided by decoding.
    if !may_hold_control(value.as_bytes()) {
        return Ok(());
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(invalid(
            field,
            &format!("contains control character U+{:04X}", c as u32),
        ));
    }
    Ok(())
}

/// Whether `bytes` has a byte below 0x20, 0x7F or 0xC2. In blocks of 16 without an early exit
/// inside a block, so that the compiler checks a block at once (a short-circuiting scan went a
/// byte at a time, ~5 instructions a byte over a record's ~10 KB of links and URLs).
fn may_hold_control(bytes: &[u8]) -> bool {
    let suspect = |b: u8| (b < 0x20) | (b == 0x7f) | (b == 0xc2);
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |hit, &b| hit | suspect(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| suspect(b))
}

fn invalid(field: &'static str, why: &str) -> ProtocolError {
    ProtocolError::InvalidField {
        field,
        why: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte scan refuses exactly the characters `char::is_control` calls control.
    #[test]
    fn single_line_fields_refuse_exactly_the_control_characters() {
        let chars = (0..0x1_0000)
            .chain([0x1_F600, 0x10_FFFF])
            .filter_map(char::from_u32);
        for c in chars {
            // Before, inside and after a block of 16 bytes.
            let pad = "a".repeat((c as usize) % 40);
            let value = format!("https://example.com/{pad}{c}x");
            assert_eq!(
                single_line("url", &value).is_err(),
                c.is_control(),
                "U+{:04X}",
                c as u32
            );
        }
    }
}
