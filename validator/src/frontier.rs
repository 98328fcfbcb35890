//! Frontier logic without I/O: URL normalisation (WHATWG, `url` crate), the registered domain a URL
//! belongs to (public-suffix list, `psl` crate) for network-wide politeness, and crawl scopes.

use gleaner_protocol::MAX_URL_BYTES;
use url::{Host, Url};

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("URL is longer than {MAX_URL_BYTES} bytes")]
    TooLong,
    #[error("URL does not parse: {0}")]
    Parse(String),
    #[error("scheme {0} is not http or https")]
    Scheme(String),
    #[error("URL has no host")]
    NoHost,
    #[error("URL carries credentials")]
    Credentials,
}

impl UrlError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            UrlError::TooLong => "url_too_long",
            UrlError::Parse(_) => "url_invalid",
            UrlError::Scheme(_) => "url_scheme",
            UrlError::NoHost => "url_no_host",
            UrlError::Credentials => "url_credentials",
        }
    }
}

/// Outlinks of one record considered for the frontier (its first ones): enough to follow a site's
/// structure, few enough that one page cannot flood the queue. The protocol's
/// [`gleaner_protocol::OUTLINKS_READ`], which is also as many as nodes send.
pub const MAX_OUTLINKS_FOLLOWED: usize = gleaner_protocol::OUTLINKS_READ;

/// A normalised http(s) URL and its politeness key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalUrl {
    /// WHATWG serialisation: lower-case scheme and host, default port and fragment dropped,
    /// percent-encoding normalised.
    pub url: String,
    /// Registered domain (eTLD+1), or the host itself for IP addresses and hosts without a
    /// known suffix.
    pub domain: String,
}

/// Normalises `raw` (see [`NormalUrl`]).
pub fn normalize(raw: &str) -> Result<NormalUrl, UrlError> {
    if raw.len() > MAX_URL_BYTES {
        return Err(UrlError::TooLong);
    }
    match already_normal(raw) {
        Some(normal) => Ok(normal),
        None => parse_and_normalize(raw),
    }
}

/// [`normalize`] by the WHATWG parser: the definition [`already_normal`] must agree with.
fn parse_and_normalize(raw: &str) -> Result<NormalUrl, UrlError> {
    let mut url = Url::parse(raw.trim()).map_err(|e| UrlError::Parse(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme(url.scheme().to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    url.set_fragment(None);
    let domain = match url.host() {
        None => return Err(UrlError::NoHost),
        Some(Host::Domain(d)) => registered_domain(d),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
    };
    let url = String::from(url);
    if url.len() > MAX_URL_BYTES {
        return Err(UrlError::TooLong);
    }
    Ok(NormalUrl { url, domain })
}

/// `raw` normalised without the parser, when it is plainly in the parser's serialisation
/// already: what a node's cleaner sends (it resolves every link with the same parser), so
/// nearly every outlink. `None` whenever the parser could change or refuse a byte of it; then
/// [`parse_and_normalize`] decides. Parsing costs ~0.7 µs a link, and an accepted record
/// brings up to [`MAX_OUTLINKS_FOLLOWED`] of them.
///
/// Plain means: `http://` or `https://` in lower case; a host of lower-case ASCII letters,
/// digits, `-` and `.` in non-empty labels, none of them punycode (`xn--`, which the parser
/// checks), the last one starting with a letter (the parser reads a host ending in a number
/// as an IPv4 address); no port or credentials; then a path and query of the characters the
/// parser copies as they are, with no segment that could be a dot segment (`.`, `%2e`); then
/// perhaps a fragment, dropped. A missing path is the parser's `/`.
fn already_normal(raw: &str) -> Option<NormalUrl> {
    let p = plain(raw)?;
    let url = if p.has_path {
        raw[..p.end].to_string()
    } else {
        let mut url = String::with_capacity(p.end + 1);
        url.push_str(&raw[..p.host.end]);
        url.push('/');
        url.push_str(&raw[p.host.end..p.end]);
        url
    };
    let domain = plain_domain(&raw[p.host]).to_string();
    Some(NormalUrl { url, domain })
}

/// The registered domain of `raw` when `already_normal` would answer for it, without
/// allocating: lets the store pass over links outside a request's scope for nothing.
pub fn plain_registered_domain(raw: &str) -> Option<&str> {
    plain(raw).map(|p| plain_domain(&raw[p.host]))
}

/// The registered domain of a lower-case host without a trailing dot (as [`plain`] accepts
/// them), or the host itself when the public-suffix list knows no suffix for it.
fn plain_domain(host: &str) -> &str {
    psl::domain_str(host).unwrap_or(host)
}

/// Where the parts of a URL in plain form lie (see [`already_normal`]).
struct Plain {
    host: std::ops::Range<usize>,
    /// A path follows the host (else the parser's serialisation adds `/`).
    has_path: bool,
    /// Where the fragment, if any, starts: the normal URL is what comes before.
    end: usize,
}

/// What [`plain`] makes of a byte after the host: copied as it is, a path separator, the
/// query's start, the fragment's start, or anything else (not plain).
const KEPT: u8 = 1;
const SLASH: u8 = 2;
const QUERY: u8 = 3;
const FRAGMENT: u8 = 4;
const PATH_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let kept = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&()*+,;=:@%";
    let mut i = 0;
    while i < kept.len() {
        t[kept[i] as usize] = KEPT;
        i += 1;
    }
    t[b'/' as usize] = SLASH;
    t[b'?' as usize] = QUERY;
    t[b'#' as usize] = FRAGMENT;
    t
};

/// The scan [`already_normal`] describes.
fn plain(raw: &str) -> Option<Plain> {
    let b = raw.as_bytes();
    let host_at = if b.starts_with(b"https://") {
        8
    } else if b.starts_with(b"http://") {
        7
    } else {
        return None;
    };
    let mut at = host_at;
    let mut label_at = at;
    while let Some(&c) = b.get(at) {
        match c {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => {}
            b'.' if at > label_at => label_at = at + 1,
            b'.' => return None,
            _ => break,
        }
        at += 1;
    }
    let host = &raw[host_at..at];
    if !b.get(label_at).is_some_and(u8::is_ascii_lowercase)
        || host.starts_with("xn--")
        || host.contains(".xn--")
    {
        return None;
    }
    let rest_at = at;
    let mut query = false;
    while let Some(&c) = b.get(at) {
        match PATH_BYTES[usize::from(c)] {
            KEPT => {}
            SLASH if !query => {
                let segment = &b[at + 1..];
                if segment.first() == Some(&b'.')
                    || segment
                        .get(..3)
                        .is_some_and(|s| s.eq_ignore_ascii_case(b"%2e"))
                {
                    return None;
                }
            }
            SLASH => {}
            QUERY => query = true,
            FRAGMENT => break,
            _ => return None,
        }
        at += 1;
    }
    // What follows the host: nothing, a path, a query or a fragment (a port or `@` is not plain).
    let has_path = match b.get(rest_at) {
        Some(b'/') => true,
        None | Some(b'?') | Some(b'#') => false,
        Some(_) => return None,
    };
    Some(Plain {
        host: host_at..rest_at,
        has_path,
        end: at,
    })
}

/// The registered domain of a host name (`news.example.co.uk` → `example.co.uk`).
pub fn registered_domain(host: &str) -> String {
    plain_domain(&host.trim_end_matches('.').to_ascii_lowercase()).to_string()
}

/// Whether `domain` (a registered domain) is inside a crawl request's scope, `scope` sorted: a
/// request may have up to 10,000 seeds' domains, and an accepted record offers up to
/// [`MAX_OUTLINKS_FOLLOWED`] links.
pub fn in_scope(domain: &str, sorted_scope: &[String]) -> bool {
    sorted_scope
        .binary_search_by(|s| s.as_str().cmp(domain))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_whatwg() {
        let n = normalize("HTTP://News.Example.CO.UK:80/a/../b?x=1#frag").unwrap();
        assert_eq!(n.url, "http://news.example.co.uk/b?x=1");
        assert_eq!(n.domain, "example.co.uk");
        assert_eq!(
            normalize("https://127.0.0.1:8080/").unwrap().domain,
            "127.0.0.1"
        );
        assert_eq!(normalize("ftp://x.org/").unwrap_err().code(), "url_scheme");
        assert_eq!(
            normalize("http://u:p@x.org/").unwrap_err().code(),
            "url_credentials"
        );
        assert_eq!(normalize("not a url").unwrap_err().code(), "url_invalid");
        let long = format!("http://x.org/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(normalize(&long).unwrap_err().code(), "url_too_long");
    }

    #[test]
    fn scope_membership_in_a_large_sorted_scope() {
        let mut scope: Vec<String> = (0..10_000).map(|i| format!("site{i}.example")).collect();
        scope.sort();
        for i in (0..10_000).step_by(97) {
            assert!(in_scope(&format!("site{i}.example"), &scope));
        }
        for other in [
            "site10000.example",
            "example",
            "",
            "zzz.example",
            "a.example",
        ] {
            assert!(!in_scope(other, &scope), "{other}");
        }
    }

    /// The parser-free path gives exactly what the parser gives wherever it answers, and
    /// answers for the links a node's cleaner sends.
    #[test]
    fn plain_urls_normalise_as_the_parser_would() {
        let plain = [
            "https://example.com/",
            "https://example.com",
            "http://news.example.co.uk/a/b.html?x=1&y=%20z#top",
            "https://www.example.org/wiki/Foo_(bar)?q=a:b@c;d=e,f",
            "https://a-b.example.com/p/?",
            "https://example.com#frag",
            "https://example.com?q",
            "https://example.com/a//b/c.d/",
            "https://blog.example.io/2024/05/post-title/?utm=x#comments",
        ];
        for raw in plain {
            assert_eq!(
                already_normal(raw),
                Some(parse_and_normalize(raw).unwrap()),
                "{raw}"
            );
        }
        // Left to the parser: it changes or refuses something, or could.
        let not_plain = [
            "HTTPS://example.com/",
            "https://Example.com/",
            "https://example.com:443/",
            "https://example.com:8080/",
            "https://u@example.com/",
            "https://xn--bcher-kva.example/",
            "https://example.xn--p1ai/",
            "https://192.168.0.1/",
            "https://example.0x1f/",
            "https://example.com./",
            "https://a..example.com/",
            "https:///example.com/",
            "https://example.com/a/../b",
            "https://example.com/a/./b",
            "https://example.com/%2e%2E/b",
            "https://example.com/.well-known/x",
            "https://example.com/a b",
            " https://example.com/",
            "https://example.com/\tx",
            "https://example.com/a\\b",
            "https://example.com/é",
            "https://example.com/?q='x'",
            "https://example.com/a<b>",
            "https://example.com/{x}",
            "https://exa_mple.com/",
        ];
        for raw in not_plain {
            assert_eq!(already_normal(raw), None, "{raw}");
            assert_eq!(normalize(raw), parse_and_normalize(raw), "{raw}");
        }
    }

    /// Random strings built from the pieces URLs go wrong on: wherever the parser-free path
    /// answers, it answers as the parser does.
    #[test]
    fn the_parser_free_path_never_disagrees_with_the_parser() {
        const PIECES: &[&str] = &[
            "http://",
            "https://",
            "HTTP://",
            "a",
            "z",
            "B",
            "0",
            "7",
            ".",
            "-",
            "xn--",
            "/",
            "?",
            "#",
            "%",
            "%2e",
            "%2E",
            "%41",
            "..",
            ":",
            ":80",
            ":443",
            "@",
            "\\",
            " ",
            "\t",
            "\n",
            "'",
            "\"",
            "<",
            "`",
            "{",
            "|",
            "^",
            "[",
            "]",
            "é",
            "_",
            "~",
            "=",
            "&",
            "0x",
            "com",
            "co.uk",
            "1",
            "255",
            ";",
            "!",
            "$",
            "(",
            "*",
            "+",
            ",",
            "github.io",
            "www.",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut answered, mut tried) = (0, 0);
        for _ in 0..200_000 {
            let mut raw = String::from(if next() % 2 == 0 {
                "https://"
            } else {
                "http://"
            });
            // Half of them on a plain host, so that the tail is what decides.
            if next() % 2 == 0 {
                raw.push_str(
                    ["example.com", "www.a-b.co.uk", "0a.io", "x.github.io"][(next() % 4) as usize],
                );
            }
            for _ in 0..next() % 12 {
                raw.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            tried += 1;
            assert_eq!(
                plain_registered_domain(&raw).map(str::to_string),
                already_normal(&raw).map(|n| n.domain),
                "{raw:?}"
            );
            if let Some(fast) = already_normal(&raw) {
                answered += 1;
                assert_eq!(Ok(fast), parse_and_normalize(&raw), "{raw:?}");
            }
        }
        // The generator reaches the parser-free path often enough to mean something.
        assert!(answered * 20 > tried, "{answered} of {tried}");
    }
}
