//! The address and URL safety policy: which URLs a node may fetch and which socket addresses it may
//! connect to. Enforced by the node; nothing a validator sends reaches this configuration.
//!
//! Rules: `http`/`https` only; ports 80 and 443; no credentials in the URL; no local host names;
//! the user's domain blocklist; and, after DNS resolution, every address must be globally routable
//! (see [`is_public_ip`]). The only exemption is an explicit list of exact socket addresses
//! (`--allow-addr IP:PORT`), for tests and local development.
//!
//! **Architecture invariant:** the fetcher connects only to addresses this module returned for that
//! very hop (they are pinned in the HTTP client), so a second DNS answer cannot swap in another one.

use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use gleaner_protocol::api::FailureReason;
use url::{Host, Url};

/// Ports a node connects to without an explicit exemption: the standard web ports. Other ports are
/// where admin panels, databases and local services live.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// Most redirects followed for one fetch (RFC 9309 asks at least 5 for robots.txt; crawlers use ~5).
pub const MAX_REDIRECTS: usize = 5;

/// Why a URL or an address was refused. `code()` is a stable snake_case reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid URL {url:?}: {why}")]
    InvalidUrl { url: String, why: String },
    #[error("scheme {scheme:?} is not allowed (http and https only): {url}")]
    Scheme { url: String, scheme: String },
    #[error("port {port} is not allowed (80 and 443 only): {url}")]
    Port { url: String, port: u16 },
    #[error("URLs with credentials are not fetched: {url}")]
    Credentials { url: String },
    #[error("host {host} is a local name")]
    LocalName { host: String },
    #[error("domain {host} is on the blocklist ({rule})")]
    BlockedDomain { host: String, rule: String },
    #[error("address {addr} of {host} is not a public address")]
    BlockedAddress { host: String, addr: SocketAddr },
    #[error("could not resolve {host}: {why}")]
    Resolve { host: String, why: String },
}

impl PolicyError {
    /// The job failure reason this refusal is reported as.
    pub fn reason(&self) -> FailureReason {
        match self {
            PolicyError::InvalidUrl { .. } | PolicyError::Scheme { .. } => {
                FailureReason::InvalidUrl
            }
            PolicyError::Credentials { .. } => FailureReason::InvalidUrl,
            PolicyError::Port { .. }
            | PolicyError::LocalName { .. }
            | PolicyError::BlockedAddress { .. } => FailureReason::BlockedAddress,
            PolicyError::BlockedDomain { .. } => FailureReason::BlockedDomain,
            PolicyError::Resolve { .. } => FailureReason::NetworkError,
        }
    }

    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::InvalidUrl { .. } => "invalid_url",
            PolicyError::Scheme { .. } => "bad_scheme",
            PolicyError::Port { .. } => "bad_port",
            PolicyError::Credentials { .. } => "credentials",
            PolicyError::LocalName { .. } => "local_name",
            PolicyError::BlockedDomain { .. } => "blocked_domain",
            PolicyError::BlockedAddress { .. } => "blocked_address",
            PolicyError::Resolve { .. } => "dns_error",
        }
    }
}

/// A DNS resolver. The default is the operating system's; tests map names to chosen addresses.
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// All addresses of `host` (an ASCII domain name), with `port` set.
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// The safety policy's configuration. Built by the node from the user's settings only.
#[derive(Debug, Clone)]
pub struct AddressPolicy {
    allow_addrs: HashSet<SocketAddr>,
    blocklist: Vec<String>,
    resolver: Arc<dyn Resolver>,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy::new(&[], &[])
    }
}

/// A URL that passed the static checks, with the host and port to resolve.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    /// Lower-case host as in the URL (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Set when the host is an IP literal (already checked).
    pub ip: Option<IpAddr>,
}

impl AddressPolicy {
    /// `allow_addrs`: exact socket addresses exempted (tests, local development). `blocklist`:
    /// domains refused together with their subdomains.
    pub fn new(allow_addrs: &[SocketAddr], blocklist: &[String]) -> Self {
        AddressPolicy {
            allow_addrs: allow_addrs.iter().map(|a| canonical_sa(*a)).collect(),
            blocklist: blocklist
                .iter()
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            resolver: Arc::new(SystemResolver),
        }
    }

    /// Replaces the DNS resolver (tests map names to chosen addresses).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Whether this exact socket address may be connected to.
    pub fn addr_allowed(&self, addr: SocketAddr) -> bool {
        let addr = canonical_sa(addr);
        if self.allow_addrs.contains(&addr) {
            return true;
        }
        is_public_ip(addr.ip()) && DEFAULT_PORTS.contains(&addr.port())
    }

    /// Parses `raw` (WHATWG rules: `http://2130706433/` becomes `http://127.0.0.1/`) and checks it.
    pub fn check_str(&self, raw: &str) -> Result<Target, PolicyError> {
        if raw.len() > gleaner_protocol::MAX_URL_BYTES {
            return Err(PolicyError::InvalidUrl {
                url: raw.chars().take(100).collect(),
                why: "too long".into(),
            });
        }
        let url = Url::parse(raw.trim()).map_err(|e| PolicyError::InvalidUrl {
            url: raw.to_string(),
            why: e.to_string(),
        })?;
        self.check_url(url)
    }

    /// The static checks: scheme, credentials, port, local names, blocklist, IP literals.
    pub fn check_url(&self, mut url: Url) -> Result<Target, PolicyError> {
        let shown = url.to_string();
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(PolicyError::Scheme {
                    url: shown,
                    scheme: other.to_string(),
                });
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PolicyError::Credentials { url: shown });
        }
        url.set_fragment(None);
        let port = url
            .port_or_known_default()
            .ok_or_else(|| PolicyError::InvalidUrl {
                url: shown.clone(),
                why: "no port".into(),
            })?;
        if !DEFAULT_PORTS.contains(&port) && !self.allow_addrs.iter().any(|a| a.port() == port) {
            return Err(PolicyError::Port { url: shown, port });
        }
        let (host, ip) = match url.host() {
            None => {
                return Err(PolicyError::InvalidUrl {
                    url: shown,
                    why: "no host".into(),
                });
            }
            Some(Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
            Some(Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
            Some(Host::Domain(d)) => (d.to_ascii_lowercase(), None),
        };
        if let Some(ip) = ip {
            let addr = SocketAddr::new(ip, port);
            if !self.addr_allowed(addr) {
                return Err(PolicyError::BlockedAddress { host, addr });
            }
        } else {
            let bare = host.trim_end_matches('.');
            if is_local_name(bare) {
                return Err(PolicyError::LocalName { host });
            }
            if let Some(rule) = self
                .blocklist
                .iter()
                .find(|rule| bare == rule.as_str() || bare.ends_with(&format!(".{rule}")))
            {
                return Err(PolicyError::BlockedDomain {
                    host,
                    rule: rule.clone(),
                });
            }
        }
        Ok(Target {
            url,
            host,
            port,
            ip,
        })
    }

    /// Resolves the target's host and checks every address. Any refused address refuses the
    /// whole name (a name mixing public and private answers is a rebinding attempt). The returned
    /// addresses are the only ones the fetcher may connect to for this hop.
    pub async fn resolve(&self, target: &Target) -> Result<Vec<SocketAddr>, PolicyError> {
        if let Some(ip) = target.ip {
            return Ok(vec![SocketAddr::new(ip, target.port)]);
        }
        let addrs = self
            .resolver
            .lookup(&target.host, target.port)
            .await
            .map_err(|e| PolicyError::Resolve {
                host: target.host.clone(),
                why: e.to_string(),
            })?;
        if addrs.is_empty() {
            return Err(PolicyError::Resolve {
                host: target.host.clone(),
                why: "no addresses".into(),
            });
        }
        let mut out = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let addr = SocketAddr::new(addr.ip(), target.port);
            if !self.addr_allowed(addr) {
                return Err(PolicyError::BlockedAddress {
                    host: target.host.clone(),
                    addr,
                });
            }
            out.push(canonical_sa(addr));
        }
        Ok(out)
    }
}

fn canonical_sa(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Names that always mean this machine or the local network, whatever DNS says.
fn is_local_name(host: &str) -> bool {
    const LOCAL_SUFFIXES: [&str; 5] = [".localhost", ".local", ".internal", ".home.arpa", ".lan"];
    host == "localhost" || !host.contains('.') || LOCAL_SUFFIXES.iter().any(|s| host.ends_with(s))
}

/// Whether `ip` is globally routable. Refuses every special-purpose range (loopback, private,
/// shared, link-local incl. cloud metadata, documentation, benchmarking, multicast, reserved,
/// broadcast) and, for IPv6, anything outside global unicast `2000::/3`, documentation, Teredo,
/// ORCHID, and checks the IPv4 address embedded in mapped, compatible, NAT64 and 6to4 forms.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: u32, net: [u8; 4], prefix: u32) -> bool {
    let net = u32::from_be_bytes(net);
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    ip & mask == net & mask
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const BLOCKED: [([u8; 4], u32); 17] = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
        ([255, 255, 255, 255], 32),
        // 192.0.0.0/24 is listed above; the IETF protocol assignments also cover 192.31.196.0/24
        // (AS112) and 192.175.48.0/24, which are anycast DNS sinks, never web servers.
        ([192, 175, 48, 0], 24),
    ];
    let n = u32::from(ip);
    !BLOCKED.iter().any(|(net, p)| in_v4(n, *net, *p))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let bits = u128::from(ip);
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible): judge the IPv4 address.
    if s[0..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        if bits <= 1 {
            return false; // :: and ::1
        }
        return is_public_v4(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    // 64:ff9b::/96 (NAT64): judge the embedded IPv4 address. 64:ff9b:1::/48 is local-use.
    if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        return false;
    }
    // 2002::/16 (6to4): the IPv4 address is in bits 16..48.
    if s[0] == 0x2002 {
        let v4 = ((u32::from(s[1])) << 16) | u32::from(s[2]);
        return is_public_v4(Ipv4Addr::from(v4));
    }
    // Global unicast is 2000::/3; everything else (ULA fc00::/7, link-local fe80::/10, multicast
    // ff00::/8, discard 100::/64, site-local fec0::/10, ...) is refused.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 2001::/32 Teredo, 2001:db8::/32 documentation, 2001:10::/28 and 2001:20::/28 ORCHID,
    // 2001::/23 IETF protocol assignments in general, 3fff::/20 documentation.
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return false;
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return false;
    }
    if s[0] == 0x3fff && s[1] < 0x1000 {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2002:7f00:1::",
            "2001::1",
            "::127.0.0.1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn odd_spellings_are_normalised_then_refused() {
        let p = AddressPolicy::default();
        for raw in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost./",
            "http://LOCALHOST/",
            "http://foo.localhost/",
        ] {
            assert!(p.check_str(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn blocklist_covers_subdomains() {
        let p = AddressPolicy::new(&[], &["Example.COM".to_string()]);
        assert_eq!(
            p.check_str("https://www.example.com/x").unwrap_err().code(),
            "blocked_domain"
        );
        assert!(p.check_str("https://notexample.com/x").is_ok());
    }
}
