//! The HTTP adapter of the outbox's transport: `reqwest` with an SSRF guard. Targets must be
//! `https`, and a host that is (or resolves to) a private, loopback, link-local or otherwise
//! internal address is refused — checked on the URL and again on every DNS answer, so a name
//! that later resolves inward is caught. Redirects are not followed. `allow_private_targets`
//! (config) lifts both for local testing.

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rxbridge_app::outbox::{HttpAnswer, WebhookTransport};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xC0) == 64) // 100.64.0.0/10 carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

/// Check an endpoint URL before it is stored and before each delivery.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match u.scheme() {
        "https" => {}
        "http" if allow_private => {}
        s => return Err(format!("the scheme must be https, not {s}")),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials in the URL are not allowed; the payload is signed".into());
    }
    let host = u.host_str().ok_or("the URL has no host")?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>()
        && !allow_private
        && !is_public(ip)
    {
        return Err(format!("{ip} is a private, loopback or internal address"));
    }
    if !allow_private
        && (host == "localhost" || host.ends_with(".localhost") || host.ends_with(".internal"))
    {
        return Err(format!("{host} is an internal name"));
    }
    Ok(u)
}

/// Resolves names, dropping internal addresses unless allowed.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = all
                .into_iter()
                .filter(|a| allow || is_public(a.ip()))
                .collect();
            if ok.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

pub struct HttpWebhooks {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpWebhooks {
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .user_agent(concat!("rxbridge-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_private,
        })
    }
}

#[async_trait]
impl WebhookTransport for HttpWebhooks {
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<HttpAnswer, String> {
        let url = check_url(url, self.allow_private)?;
        let mut req = self.client.post(url).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req.send().await.map_err(|e| {
            // Name the cause without the URL's query (never carries data, but stays short).
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(inner) = src {
                s = format!("{s}: {inner}");
                src = inner.source();
            }
            s
        })?;
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| (0..=7 * 24 * 3600).contains(s))
            .map(jiff::SignedDuration::from_secs);
        Ok(HttpAnswer {
            status: res.status().as_u16(),
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssrf_guard() {
        for bad in [
            "http://example.com/h",
            "https://127.0.0.1/h",
            "https://10.1.2.3/h",
            "https://192.168.0.1/h",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/h",
            "https://[fd00::1]/h",
            "https://[::ffff:10.0.0.1]/h",
            "https://100.64.0.1/h",
            "https://localhost/h",
            "https://user:pw@example.com/h",
            "ftp://example.com",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        for good in [
            "https://warehouse.example.com/hooks",
            "https://93.184.216.34/x",
            "https://[2a00:1450::1]/x",
        ] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        assert!(check_url("http://127.0.0.1:9000/h", true).is_ok());
    }
}
