//! Adapters of the notifications port: RFC 5322 messages built with `lettre`, either written
//! as `.eml` files into a directory (the embedded default: open them with any mail client) or
//! sent over SMTP (STARTTLS, implicit TLS, or plain for a local relay).

use async_trait::async_trait;
use lettre::message::Body;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rxbridge_app::payments::{Notifier, OutgoingEmail};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

fn build(from: &str, m: &OutgoingEmail) -> anyhow::Result<Message> {
    let id = m
        .reference
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect::<String>();
    Ok(Message::builder()
        .from(from.parse()?)
        .to(m.to.parse()?)
        .subject(m.subject.clone())
        .message_id(Some(format!("<{id}@rxbridge>")))
        .header(ContentType::TEXT_PLAIN)
        .body(
            Body::new_with_encoding(m.text.clone(), ContentTransferEncoding::QuotedPrintable)
                .map_err(|_| anyhow::anyhow!("the message body cannot be encoded"))?,
        )?)
}

/// Writes each message to `<dir>/<reference>.eml` (atomically: a temporary file renamed).
pub struct EmlDirectory {
    dir: PathBuf,
    from: String,
}

impl EmlDirectory {
    pub fn new(dir: PathBuf, from: &str) -> anyhow::Result<Self> {
        rxbridge_app::files::private_dir(&dir)?;
        Ok(Self {
            dir,
            from: from.to_string(),
        })
    }
}

#[async_trait]
impl Notifier for EmlDirectory {
    async fn send(&self, m: &OutgoingEmail) -> anyhow::Result<()> {
        let bytes = build(&self.from, m)?.formatted();
        let name: String = m
            .reference
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let tmp = self.dir.join(format!(".{name}.eml.tmp"));
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            use std::io::Write;
            // The message names the patient: owner-only, like everything in the data dir.
            let mut f = rxbridge_app::files::private_file(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        })
        .await??;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Upgrade with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on the same host or in tests.
    None,
}

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
}

impl Smtp {
    pub fn new(
        host: &str,
        port: u16,
        security: SmtpSecurity,
        credentials: Option<(String, String)>,
        from: &str,
    ) -> anyhow::Result<Self> {
        let mut b = match security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        b = b.port(port).timeout(Some(Duration::from_secs(20)));
        if let Some((user, pass)) = credentials {
            b = b.credentials(Credentials::new(user, pass));
        }
        Ok(Self {
            transport: b.build(),
            from: from.to_string(),
        })
    }
}

#[async_trait]
impl Notifier for Smtp {
    async fn send(&self, m: &OutgoingEmail) -> anyhow::Result<()> {
        let msg = build(&self.from, m)?;
        self.transport
            .send(msg)
            .await
            .map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
        Ok(())
    }
}
