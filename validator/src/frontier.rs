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

/// The registered domain of a host name (`news.example.co.uk` → `example.co.uk`).
pub fn registered_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match psl::domain_str(&host) {
        Some(d) => d.to_string(),
        None => host,
    }
}

/// Whether `domain` (a registered domain) is inside a crawl request's scope.
pub fn in_scope(domain: &str, scope: &[String]) -> bool {
    scope.iter().any(|s| s == domain)
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
}
