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

/// Whether a patient's reply reaches a person: a `Reply-To` is set, or the sender is not a
/// no-reply address (`no-reply@`, `noreply@`, `donotreply@`, `do-not-reply@`). The emails'
/// closing line follows it (`rxbridge_app::payments::contact_line`).
pub fn replies_read(from: &str, reply_to: Option<&str>) -> bool {
    if reply_to.is_some_and(|r| !r.trim().is_empty()) {
        return true;
    }
    let address = from
        .rsplit_once('<')
        .map_or(from, |(_, a)| a.trim_end_matches('>'));
    let local: String = address
        .split('@')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    !matches!(local.as_str(), "noreply" | "donotreply")
}

/// Who patient emails come from, and where replies go (`mail.reply_to`) when not to the sender.
#[derive(Clone, Debug)]
pub struct Sender {
    pub from: String,
    pub reply_to: Option<String>,
}

impl From<&str> for Sender {
    fn from(from: &str) -> Self {
        Self {
            from: from.to_string(),
            reply_to: None,
        }
    }
}

fn build(from: &str, reply_to: Option<&str>, m: &OutgoingEmail) -> anyhow::Result<Message> {
    let id = m
        .reference
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect::<String>();
    let mut b = Message::builder().from(from.parse()?);
    if let Some(r) = reply_to {
        b = b.reply_to(r.parse()?);
    }
    Ok(b.to(m.to.parse()?)
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
    sender: Sender,
}

impl EmlDirectory {
    pub fn new(dir: PathBuf, sender: impl Into<Sender>) -> anyhow::Result<Self> {
        crate::files::private_dir(&dir)?;
        Ok(Self {
            dir,
            sender: sender.into(),
        })
    }
}

#[async_trait]
impl Notifier for EmlDirectory {
    async fn send(&self, m: &OutgoingEmail) -> anyhow::Result<()> {
        let bytes = build(&self.sender.from, self.sender.reply_to.as_deref(), m)?.formatted();
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
            let mut f = crate::files::private_file(&tmp)?;
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
    sender: Sender,
}

impl Smtp {
    pub fn new(
        host: &str,
        port: u16,
        security: SmtpSecurity,
        credentials: Option<(String, String)>,
        sender: impl Into<Sender>,
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
            sender: sender.into(),
        })
    }
}

#[async_trait]
impl Notifier for Smtp {
    async fn send(&self, m: &OutgoingEmail) -> anyhow::Result<()> {
        let msg = build(&self.sender.from, self.sender.reply_to.as_deref(), m)?;
        self.transport
            .send(msg)
            .await
            .map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            to: "sam@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            reference: "r-1".into(),
        }
    }

    #[test]
    fn reply_to_is_a_header_only_when_set() {
        let with = build(
            "P <no-reply@p.example>",
            Some("Help <help@p.example>"),
            &email(),
        )
        .unwrap()
        .formatted();
        let with = String::from_utf8(with).unwrap();
        assert!(with.contains("Reply-To: Help <help@p.example>"), "{with}");
        let without = String::from_utf8(
            build("P <orders@p.example>", None, &email())
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(!without.contains("Reply-To"), "{without}");
    }

    #[test]
    fn no_reply_senders_are_recognised() {
        for from in [
            "rxbridge pharmacy <no-reply@rxbridge.invalid>",
            "noreply@p.example",
            "X <Do-Not-Reply@p.example>",
            "donotreply@p.example",
        ] {
            assert!(!replies_read(from, None), "{from}");
            assert!(replies_read(from, Some("help@p.example")), "{from}");
        }
        assert!(replies_read("Orders <orders@p.example>", None));
        assert!(!replies_read("no-reply@p.example", Some(" ")));
    }
}
