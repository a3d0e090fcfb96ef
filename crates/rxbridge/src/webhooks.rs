//! The HTTP adapter of the outbox's transport: `reqwest` with an SSRF guard. Targets must be
//! `https` on an allowed port (`webhooks.allowed_ports`, 443 by default), and a host that is
//! (or resolves to) a private, loopback, link-local or otherwise internal address is refused —
//! checked on the URL and again at connect time on every DNS answer, the checked address being
//! the one connected to. Redirects are not followed; no proxy is used.
//! `webhooks.allow_private_targets` lifts the checks for sandbox (test-mode) destinations only,
//! never for live ones; `serve --demo` lifts them for its simulator's origin only.

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

/// Where webhooks may go. Live destinations: `https` to a public address on an allowed port,
/// always. Sandbox (test-mode) destinations may also use plain `http` and private, loopback or
/// link-local targets on any port, but only with `allow_private_targets` — and `serve --demo`
/// exempts exactly its warehouse simulator's origin, nothing else.
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    /// `webhooks.allow_private_targets`.
    pub allow_private_targets: bool,
    /// `webhooks.allowed_ports` (443 by default).
    pub allowed_ports: Vec<u16>,
    /// `serve --demo`: the simulator's origin (`http://127.0.0.1:9090`), allowed for sandbox
    /// destinations.
    pub exempt_origin: Option<String>,
}

impl UrlPolicy {
    pub fn from_settings(w: &crate::WebhookSettings) -> Self {
        Self {
            allow_private_targets: w.allow_private_targets,
            allowed_ports: w.allowed_ports.clone(),
            exempt_origin: w.exempt_origin.as_deref().and_then(origin_of),
        }
    }

    /// Live: https, public, allowed ports only.
    pub fn strict() -> Self {
        Self {
            allow_private_targets: false,
            allowed_ports: vec![443],
            exempt_origin: None,
        }
    }

    /// Whether a delivery to `url` for a `sandbox` destination may skip the address checks.
    fn lifted(&self, u: &reqwest::Url, sandbox: bool) -> bool {
        sandbox
            && (self.allow_private_targets
                || self
                    .exempt_origin
                    .as_deref()
                    .is_some_and(|o| origin_of(u.as_str()).as_deref() == Some(o)))
    }
}

/// `scheme://host:port` of a URL (the port always written), if it parses.
fn origin_of(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str()?,
        u.port_or_known_default()?
    ))
}

/// Named in every refusal that the setting could lift.
pub const PRIVATE_TARGETS_HINT: &str = "plain http and private, loopback or link-local targets are allowed only for sandbox (test-mode) destinations, with webhooks.allow_private_targets = true (RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true)";

/// Whether deliveries to `destination` are sandbox (test-mode) ones.
pub fn is_sandbox(destination: &str) -> bool {
    destination.rsplit(':').next() == Some("test")
}

/// Check an endpoint URL before it is stored and before each delivery (names are checked
/// again, on every DNS answer, when connecting).
pub fn check_url(url: &str, policy: &UrlPolicy, sandbox: bool) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("credentials in the URL are not allowed; the payload is signed".into());
    }
    let host = u.host_str().ok_or("the URL has no host")?.to_string();
    let lifted = policy.lifted(&u, sandbox);
    match u.scheme() {
        "https" => {}
        "http" if lifted => {}
        s => {
            return Err(format!(
                "the scheme must be https, not {s} ({PRIVATE_TARGETS_HINT})"
            ));
        }
    }
    if lifted {
        return Ok(u);
    }
    let port = u.port_or_known_default().unwrap_or(0);
    if !policy.allowed_ports.contains(&port) {
        let allowed: Vec<String> = policy.allowed_ports.iter().map(u16::to_string).collect();
        return Err(format!(
            "port {port} is not allowed: webhooks.allowed_ports (RXBRIDGE_WEBHOOKS_ALLOWED_PORTS) is {} ({PRIVATE_TARGETS_HINT})",
            allowed.join(", ")
        ));
    }
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>()
        && !is_public(ip)
    {
        return Err(format!(
            "{ip} is a private, loopback or internal address ({PRIVATE_TARGETS_HINT})"
        ));
    }
    if host == "localhost" || host.ends_with(".localhost") || host.ends_with(".internal") {
        return Err(format!(
            "{host} is an internal name ({PRIVATE_TARGETS_HINT})"
        ));
    }
    Ok(u)
}

/// Resolves names for the live client, keeping only public addresses. reqwest connects to
/// exactly the addresses returned here — the checked address is the one connected to, so a
/// name that answers differently a moment later (DNS rebinding) cannot swap it.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if ok.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address ({PRIVATE_TARGETS_HINT})"
                )
                .into());
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

pub struct HttpWebhooks {
    /// Every delivery the address checks apply to.
    guarded: reqwest::Client,
    /// Sandbox deliveries the policy lifts the checks for.
    lifted: reqwest::Client,
    policy: UrlPolicy,
}

fn client(resolver: Option<Arc<GuardedResolver>>) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name itself, out of the guard's sight.
        .no_proxy()
        .user_agent(concat!("rxbridge-webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some(r) = resolver {
        b = b.dns_resolver(r);
    }
    b.build()
}

impl HttpWebhooks {
    pub fn new(policy: UrlPolicy) -> anyhow::Result<Self> {
        Ok(Self {
            guarded: client(Some(Arc::new(GuardedResolver)))?,
            lifted: client(None)?,
            policy,
        })
    }
}

#[async_trait]
impl WebhookTransport for HttpWebhooks {
    async fn post(
        &self,
        destination: &str,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<HttpAnswer, String> {
        let sandbox = is_sandbox(destination);
        let url = check_url(url, &self.policy, sandbox)?;
        let client = if self.policy.lifted(&url, sandbox) {
            &self.lifted
        } else {
            &self.guarded
        };
        let mut req = client.post(url).body(body.to_vec());
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
    use std::str::FromStr as _;

    fn open() -> UrlPolicy {
        UrlPolicy {
            allow_private_targets: true,
            ..UrlPolicy::strict()
        }
    }

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
            "https://[fe80::1]/h",
            "https://[::ffff:10.0.0.1]/h",
            "https://100.64.0.1/h",
            "https://localhost/h",
            "https://metadata.google.internal/h",
            "https://user:pw@example.com/h",
            "https://warehouse.example.com:8443/h",
            "https://93.184.216.34:22/x",
            "ftp://example.com",
            "not a url",
        ] {
            for sandbox in [false, true] {
                assert!(
                    check_url(bad, &UrlPolicy::strict(), sandbox).is_err(),
                    "{bad}"
                );
            }
            // The setting never opens live destinations.
            assert!(check_url(bad, &open(), false).is_err(), "{bad}");
        }
        for good in [
            "https://warehouse.example.com/hooks",
            "https://warehouse.example.com:443/hooks",
            "https://93.184.216.34/x",
            "https://[2a00:1450::1]/x",
        ] {
            assert!(
                check_url(good, &UrlPolicy::strict(), false).is_ok(),
                "{good}"
            );
        }
        let e = check_url("http://127.0.0.1:9000/h", &UrlPolicy::strict(), true).unwrap_err();
        assert!(e.contains("webhooks.allow_private_targets"), "{e}");
        let e = check_url("https://10.0.0.1/h", &UrlPolicy::strict(), true).unwrap_err();
        assert!(e.contains("RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS"), "{e}");
        let e =
            check_url("https://wh.example.com:8443/h", &UrlPolicy::strict(), false).unwrap_err();
        assert!(e.contains("webhooks.allowed_ports"), "{e}");
        // Sandbox destinations with the setting: local stand-ins work.
        assert!(check_url("http://127.0.0.1:9000/h", &open(), true).is_ok());
        // An explicit allow-list of ports.
        let ports = UrlPolicy {
            allowed_ports: vec![443, 8443],
            ..UrlPolicy::strict()
        };
        assert!(check_url("https://wh.example.com:8443/h", &ports, false).is_ok());
    }

    #[test]
    fn the_demo_exempts_only_its_simulator() {
        let demo = UrlPolicy {
            exempt_origin: origin_of("http://127.0.0.1:9090/orders"),
            ..UrlPolicy::strict()
        };
        assert!(check_url("http://127.0.0.1:9090/orders", &demo, true).is_ok());
        assert!(check_url("http://127.0.0.1:9090/elsewhere", &demo, true).is_ok());
        for other in [
            "http://127.0.0.1:9091/orders",
            "http://127.0.0.2:9090/orders",
            "https://127.0.0.1:9090/orders",
            "http://169.254.169.254/latest",
        ] {
            assert!(check_url(other, &demo, true).is_err(), "{other}");
        }
        assert!(check_url("http://127.0.0.1:9090/orders", &demo, false).is_err());
    }

    #[test]
    fn sandbox_is_the_test_mode_of_a_destination() {
        assert!(is_sandbox("warehouse:test"));
        assert!(is_sandbox("clinic:cl_1:test"));
        assert!(!is_sandbox("warehouse:live"));
        assert!(!is_sandbox("clinic:cl_test:live"));
    }

    #[tokio::test]
    async fn names_resolving_inward_are_refused_at_connect_time() {
        // `localhost` passes no URL check here only because it is caught by name; a name
        // resolving to loopback is dropped by the resolver the connection uses.
        let r = GuardedResolver;
        let e = match r.resolve(Name::from_str("localhost").unwrap()).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("loopback answers were kept"),
        };
        assert!(e.contains("RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS"), "{e}");
    }

    #[tokio::test]
    async fn local_stand_ins_take_sandbox_deliveries_only_with_the_setting_and_never_live_ones() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/h", axum::routing::post(|| async { "ok" }))
            .route(
                "/r",
                axum::routing::post(|| async { axum::response::Redirect::temporary("/h") }),
            );
        tokio::spawn(async move { axum::serve(l, app).await });
        let url = format!("http://{addr}/h");
        let open = HttpWebhooks::new(open()).unwrap();
        let ok = open.post("warehouse:test", &url, &[], b"{}").await.unwrap();
        assert_eq!(ok.status, 200);
        // Redirects are answers, not followed.
        let r = open
            .post("warehouse:test", &format!("http://{addr}/r"), &[], b"{}")
            .await
            .unwrap();
        assert_eq!(r.status, 307);
        for live in ["warehouse:live", "clinic:cl_1:live"] {
            let e = open.post(live, &url, &[], b"{}").await.unwrap_err();
            assert!(e.contains("RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS"), "{e}");
        }
        let strict = HttpWebhooks::new(UrlPolicy::strict()).unwrap();
        let e = strict
            .post("warehouse:test", &url, &[], b"{}")
            .await
            .unwrap_err();
        assert!(e.contains("webhooks.allow_private_targets"), "{e}");
    }
}
