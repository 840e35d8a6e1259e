//! The operator's forward proxies: read once by the CLI from the
//! environment, handed to the engine in its `NetworkPolicy`, and the only
//! proxies its HTTP client uses (`guard.rs` checks the target behind them).

/// Forward proxies the operator configured, resolved once at the edge (the
/// CLI reads `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`, either
/// case); the engine never reads the environment itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    pub http: Option<String>,
    pub https: Option<String>,
    pub all: Option<String>,
    /// Hosts reached directly (curl's `NO_PROXY` syntax).
    pub no_proxy: Option<String>,
}

impl Proxies {
    /// From variables looked up by `get` (`std::env::var`, at the edge):
    /// the lowercase name first, as curl does; empty values are unset.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Proxies {
        let read = |name: &str| {
            get(name)
                .or_else(|| get(&name.to_ascii_uppercase()))
                .filter(|value| !value.trim().is_empty())
        };
        Proxies {
            http: read("http_proxy"),
            https: read("https_proxy"),
            all: read("all_proxy"),
            no_proxy: read("no_proxy"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none() && self.all.is_none()
    }

    /// The proxies' host names: the operator's, so the guard trusts them.
    pub(crate) fn hosts(&self) -> Vec<String> {
        [&self.http, &self.https, &self.all]
            .into_iter()
            .flatten()
            .filter_map(|value| {
                let value = if value.contains("://") {
                    value.clone()
                } else {
                    format!("http://{value}")
                };
                reqwest::Url::parse(&value)
                    .ok()?
                    .host_str()
                    .map(|h| h.trim_matches(['[', ']']).to_owned())
            })
            .collect()
    }

    /// The client with exactly these proxies (never reqwest's own reading
    /// of the environment). A proxy URL that does not parse is left out.
    pub(super) fn apply(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder = builder.no_proxy();
        let no_proxy = self
            .no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string);
        let proxies = [
            self.http.as_deref().map(reqwest::Proxy::http),
            self.https.as_deref().map(reqwest::Proxy::https),
            self.all.as_deref().map(reqwest::Proxy::all),
        ];
        for proxy in proxies.into_iter().flatten().flatten() {
            builder = builder.proxy(proxy.no_proxy(no_proxy.clone()));
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_come_from_the_variables_given_lowercase_first() {
        let vars = [
            ("HTTP_PROXY", "http://upper.test:3128"),
            ("http_proxy", "http://lower.test:3128"),
            ("HTTPS_PROXY", "proxy.test:8443"),
            ("ALL_PROXY", "  "),
            ("NO_PROXY", "localhost,.internal"),
        ];
        let get = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        };
        let proxies = Proxies::from_vars(get);
        assert_eq!(proxies.http.as_deref(), Some("http://lower.test:3128"));
        assert_eq!(proxies.https.as_deref(), Some("proxy.test:8443"));
        assert_eq!(proxies.all, None, "blank is unset");
        assert_eq!(proxies.no_proxy.as_deref(), Some("localhost,.internal"));
        assert_eq!(proxies.hosts(), vec!["lower.test", "proxy.test"]);
        assert!(Proxies::from_vars(|_| None).is_empty());
    }
}
