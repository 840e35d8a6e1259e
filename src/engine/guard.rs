//! The outbound guard: which addresses http steps may reach.
//!
//! A scenario's URL is often a template over data that came from outside
//! (a webhook body, an API answer), so it must not become a way into the
//! machine's own network. Every host is resolved here, every address it
//! resolves to is checked, and the connection is made to the checked
//! addresses only (reqwest connects to what the resolver returns), so a DNS
//! answer cannot change between the check and the connect. A literal IP in
//! the URL, each redirect's target and, when a proxy is configured, the
//! target behind the proxy are checked the same way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

pub use super::proxies::Proxies;
pub use crate::plan::NetworkAllowance as Allowance;

/// Where the daemon's network rules come from: `serve` on a non-loopback
/// address refuses private ranges; `run`, `demo` and a loopback `serve` do
/// not (they are used against local servers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Refuse loopback, private, CGNAT and unique-local addresses.
    pub refuse_private: bool,
    /// Allowed whatever the rules (`serve --allow-network`).
    pub allowed: Vec<IpNet>,
    /// Why private addresses are refused, for the error (`the daemon listens on 0.0.0.0:8080`).
    pub reason: String,
    /// The operator's proxies: the only ones the HTTP client uses.
    pub proxies: Proxies,
}

/// The rule an address breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Cloud metadata and link-local: always refused unless listed.
    Metadata,
    /// Loopback, private, CGNAT, unique-local, unspecified.
    Private,
    /// Multicast, broadcast, documentation ranges: never a server.
    NotUnicast,
}

/// A refused connection: the host, the address and the rule, never retried.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("refused to connect to {host} ({address}): {why}")]
pub struct Refused {
    pub host: String,
    pub address: String,
    pub why: String,
}

/// Redirects beyond this many are refused.
pub const MAX_REDIRECTS: usize = 5;

/// A chain of redirects longer than [`MAX_REDIRECTS`], never retried.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("more than {MAX_REDIRECTS} redirects (the last to {0})")]
pub struct TooManyRedirects(pub String);

/// The policy and one connection's allowance together: what checks an address.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    policy: NetworkPolicy,
    allowance: Allowance,
}

/// Host names that are cloud metadata services whatever they resolve to.
const METADATA_HOSTS: [&str; 2] = ["metadata.google.internal", "metadata.goog"];

impl Guard {
    pub fn new(policy: NetworkPolicy, allowance: Allowance) -> Guard {
        Guard { policy, allowance }
    }

    /// Checks one address of `host`.
    pub fn check(&self, host: &str, address: IpAddr) -> Result<(), Refused> {
        let address = canonical(address);
        let listed = |nets: &[IpNet]| nets.iter().any(|n| n.contains(&address));
        if listed(&self.allowance.networks) || listed(&self.policy.allowed) {
            return Ok(());
        }
        let refuse = |why: String| {
            Err(Refused {
                host: host.to_owned(),
                address: address.to_string(),
                why,
            })
        };
        if is_metadata_host(host) {
            return refuse("a cloud metadata service, always refused (list its address in the connection's `allow_network` to reach it)".to_owned());
        }
        match classify(address) {
            None => Ok(()),
            Some((Rule::Metadata, range)) => refuse(format!(
                "{range} is cloud metadata or link-local, always refused (list it in the connection's `allow_network` to reach it)"
            )),
            Some((Rule::NotUnicast, range)) => refuse(format!("{range} is not a server address")),
            Some((Rule::Private, range)) if self.policy.refuse_private && !self.allowance.private => {
                refuse(format!(
                    "{range} is a private address, refused because {}; allow it with `serve --allow-network {}` or the connection's `allow_private: true`",
                    self.policy.reason,
                    IpNet::from(address)
                ))
            }
            Some((Rule::Private, _)) => Ok(()),
        }
    }

    /// Checks every address a host resolved to: one bad answer refuses the host.
    pub fn check_all(&self, host: &str, addresses: &[SocketAddr]) -> Result<(), Refused> {
        addresses.iter().try_for_each(|a| self.check(host, a.ip()))
    }

    /// Checks a URL's host: a literal IP now, a name by resolving it (used
    /// behind a proxy, which resolves the target itself). A name that does
    /// not resolve is a retryable error, as any DNS failure.
    pub(crate) async fn check_target(&self, url: &reqwest::Url) -> Result<(), super::StepError> {
        let refused = |r: Refused| super::StepError::fatal(r.to_string());
        match host_of(url) {
            Host::Ip(ip) => self.check(&ip.to_string(), ip).map_err(refused),
            Host::Name(name) => {
                let port = url.port_or_known_default().unwrap_or(80);
                let addresses = resolve(name, port).await.map_err(|e| {
                    super::StepError::retryable(format!("{name} does not resolve: {e}"))
                })?;
                self.check_all(name, &addresses).map_err(refused)
            }
            Host::None => Err(refused(no_host(url))),
        }
    }

    /// A literal IP is checked now; a name is checked when it is resolved
    /// (by the resolver, or by `check_target` behind a proxy).
    pub fn check_literal(&self, url: &reqwest::Url) -> Result<(), Refused> {
        match host_of(url) {
            Host::Ip(ip) => self.check(&ip.to_string(), ip),
            Host::Name(_) => Ok(()),
            Host::None => Err(no_host(url)),
        }
    }
}

enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
    None,
}

fn host_of(url: &reqwest::Url) -> Host<'_> {
    match url.host_str() {
        None | Some("") => Host::None,
        Some(host) => match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(host),
        },
    }
}

fn no_host(url: &reqwest::Url) -> Refused {
    Refused {
        host: url.to_string(),
        address: "none".to_owned(),
        why: "the URL has no host".to_owned(),
    }
}

fn is_metadata_host(host: &str) -> bool {
    METADATA_HOSTS.contains(&host.trim_end_matches('.').to_ascii_lowercase().as_str())
}

async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

/// The resolver reqwest connects through: it returns only checked addresses.
pub(crate) struct GuardedResolver {
    pub guard: Arc<Guard>,
    /// Proxy hosts configured by the environment: the operator's, not checked.
    pub proxies: Vec<String>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.guard);
        let trusted = self.proxies.iter().any(|p| p == name.as_str());
        Box::pin(async move {
            let host = name.as_str();
            let addresses = resolve(host, 0).await?;
            if !trusted {
                guard.check_all(host, &addresses)?;
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The HTTP client of one guard: its resolver returns only checked
/// addresses, its redirects (at most 5, http and https only) are checked too.
pub(crate) fn client(guard: Arc<Guard>, configured: &Proxies) -> reqwest::Client {
    let proxies = configured.hosts();
    let redirects = Arc::clone(&guard);
    let behind_proxy = !proxies.is_empty();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let url = attempt.url().clone();
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(TooManyRedirects(url.to_string()));
        }
        if !matches!(url.scheme(), "http" | "https") {
            return attempt.error(Refused {
                host: url.host_str().unwrap_or_default().to_owned(),
                address: url.scheme().to_owned(),
                why: "a redirect to a URL that is not http or https".to_owned(),
            });
        }
        if let Err(refused) = redirects.check_literal(&url) {
            return attempt.error(refused);
        }
        if behind_proxy {
            // The proxy resolves the next target; check it here (this runs
            // synchronously inside reqwest, so the lookup blocks briefly).
            if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
                use std::net::ToSocketAddrs;
                let addresses: Vec<SocketAddr> = (host, port)
                    .to_socket_addrs()
                    .map(|a| a.collect())
                    .unwrap_or_default();
                if let Err(refused) = redirects.check_all(host, &addresses) {
                    return attempt.error(refused);
                }
            }
        }
        attempt.follow()
    });
    let builder = configured.apply(reqwest::Client::builder());
    builder
        .user_agent(concat!("scenarist/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .pool_idle_timeout(std::time::Duration::from_secs(60))
        .dns_resolver(Arc::new(GuardedResolver { guard, proxies }))
        .redirect(policy)
        .build()
        .expect("the HTTP client builds with static settings")
}

/// The guard's refusal in an error's chain of causes, if that is what it is.
pub(crate) fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused.to_string());
        }
        if let Some(redirects) = e.downcast_ref::<TooManyRedirects>() {
            return Some(redirects.to_string());
        }
        cause = e.source();
    }
    None
}

/// IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) forms are
/// the IPv4 address they carry.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// The rule and the range an address falls in, or `None` for a public one.
fn classify(address: IpAddr) -> Option<(Rule, &'static str)> {
    match canonical(address) {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            if ip == Ipv4Addr::new(100, 100, 100, 200) {
                Some((Rule::Metadata, "100.100.100.200 (Alibaba Cloud metadata)"))
            } else if ip.is_link_local() {
                Some((Rule::Metadata, "169.254.0.0/16"))
            } else if ip.is_loopback() {
                Some((Rule::Private, "127.0.0.0/8 (loopback)"))
            } else if a == 0 {
                Some((Rule::Private, "0.0.0.0/8 (this host)"))
            } else if a == 10 {
                Some((Rule::Private, "10.0.0.0/8"))
            } else if a == 172 && (16..32).contains(&b) {
                Some((Rule::Private, "172.16.0.0/12"))
            } else if a == 192 && b == 168 {
                Some((Rule::Private, "192.168.0.0/16"))
            } else if a == 100 && (64..128).contains(&b) {
                Some((Rule::Private, "100.64.0.0/10 (CGNAT)"))
            } else if a == 198 && (18..20).contains(&b) {
                Some((Rule::Private, "198.18.0.0/15 (benchmarking)"))
            } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
                Some((Rule::NotUnicast, "multicast, broadcast or reserved"))
            } else {
                None
            }
        }
        IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some((Rule::Metadata, "fd00:ec2::254 (AWS metadata)"))
            } else if first & 0xffc0 == 0xfe80 {
                Some((Rule::Metadata, "fe80::/10 (link-local)"))
            } else if ip.is_loopback() {
                Some((Rule::Private, "::1 (loopback)"))
            } else if ip.is_unspecified() {
                Some((Rule::Private, ":: (this host)"))
            } else if first & 0xfe00 == 0xfc00 {
                Some((Rule::Private, "fc00::/7 (unique local)"))
            } else if first & 0xffc0 == 0xfec0 {
                Some((Rule::Private, "fec0::/10 (site-local)"))
            } else if ip.is_multicast() {
                Some((Rule::NotUnicast, "ff00::/8 (multicast)"))
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Guard {
        Guard::new(
            NetworkPolicy {
                refuse_private: true,
                allowed: vec!["192.168.7.0/24".parse().unwrap()],
                reason: "the daemon listens on 0.0.0.0:8080".to_owned(),
                ..NetworkPolicy::default()
            },
            Allowance::default(),
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_ranges_in_every_form_are_refused_when_strict() {
        let guard = strict();
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "100.64.0.9",
            "0.0.0.0",
            "::1",
            "::",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            let refused = guard.check("crm.internal", ip(address)).unwrap_err();
            assert!(
                refused.why.contains("private address"),
                "{address}: {refused}"
            );
            assert!(refused.to_string().contains("crm.internal"), "{refused}");
        }
        assert!(guard.check("api.example.com", ip("93.184.216.34")).is_ok());
        assert!(guard
            .check("api.example.com", ip("2606:2800:220:1::1"))
            .is_ok());
        // `--allow-network` opens a range.
        assert!(guard.check("office", ip("192.168.7.20")).is_ok());
    }

    #[test]
    fn metadata_is_refused_even_when_private_addresses_are_fine() {
        let lenient = Guard::default();
        for address in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
            "fe80::1",
            "100.100.100.200",
        ] {
            let refused = lenient.check("meta", ip(address)).unwrap_err();
            assert!(
                refused.why.contains("always refused"),
                "{address}: {refused}"
            );
        }
        assert!(lenient
            .check("metadata.google.internal", ip("8.8.8.8"))
            .is_err());
        assert!(lenient.check("localhost", ip("127.0.0.1")).is_ok());
        let listed = Guard::new(
            NetworkPolicy::default(),
            Allowance {
                private: false,
                networks: vec!["169.254.169.254/32".parse().unwrap()],
            },
        );
        assert!(listed.check("meta", ip("169.254.169.254")).is_ok());
    }

    #[test]
    fn one_private_answer_refuses_the_host() {
        // A resolver's answer mixing a public and a private address.
        let answer: Vec<SocketAddr> = vec![
            "93.184.216.34:443".parse().unwrap(),
            "10.0.0.7:443".parse().unwrap(),
        ];
        let refused = strict().check_all("rebind.example", &answer).unwrap_err();
        assert_eq!(refused.address, "10.0.0.7");
        let allowed = Guard::new(
            strict().policy,
            Allowance {
                private: true,
                networks: Vec::new(),
            },
        );
        assert!(allowed.check_all("rebind.example", &answer).is_ok());
    }

    #[test]
    fn literal_addresses_in_urls_are_checked_without_resolving() {
        let guard = strict();
        let url = |text: &str| reqwest::Url::parse(text).unwrap();
        assert!(guard
            .check_literal(&url("http://[::ffff:7f00:1]:8080/x"))
            .is_err());
        assert!(guard
            .check_literal(&url("http://169.254.169.254/latest"))
            .is_err());
        assert!(guard
            .check_literal(&url("https://api.example.com/x"))
            .is_ok());
    }
}
