//! The SMTP adapter against a local stand-in that speaks enough SMTP to accept one message.

use rxbridge::mail::{Smtp, SmtpSecurity};
use rxbridge_app::payments::{Notifier, OutgoingEmail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Accept one session; return every command line and the DATA payload.
async fn smtp_stand_in() -> (u16, tokio::task::JoinHandle<(Vec<String>, String)>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let (sock, _) = l.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        w.write_all(b"220 standin ESMTP ready\r\n").await.unwrap();
        let (mut commands, mut data) = (Vec::new(), String::new());
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            let cmd = line.trim_end().to_string();
            commands.push(cmd.clone());
            let upper = cmd.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-standin\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("MAIL FROM") || upper.starts_with("RCPT TO") {
                b"250 OK\r\n"
            } else if upper == "DATA" {
                w.write_all(b"354 end with .\r\n").await.unwrap();
                loop {
                    line.clear();
                    r.read_line(&mut line).await.unwrap();
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(&line);
                }
                b"250 queued as 1\r\n"
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"502 not implemented\r\n"
            };
            w.write_all(reply).await.unwrap();
        }
        (commands, data)
    });
    (port, h)
}

#[tokio::test]
async fn smtp_adapter_delivers_one_message() {
    let (port, server) = smtp_stand_in().await;
    let smtp = Smtp::new(
        "127.0.0.1",
        port,
        SmtpSecurity::None,
        None,
        "Pharmacy <no-reply@pharmacy.example>",
    )
    .unwrap();
    smtp.send(&OutgoingEmail {
        to: "sam.taylor@example.com".into(),
        subject: "Payment for your order rx_1".into(),
        text: "Hello Sam,\n\nAmount to pay: £49.95\nhttps://pharmacy.example/pay/pay_1.abc\n"
            .into(),
        reference: "link-pay_1-1".into(),
    })
    .await
    .unwrap();
    drop(smtp);
    let (commands, data) = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the session ends")
        .unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("MAIL FROM:<no-reply@pharmacy.example>")),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c == "RCPT TO:<sam.taylor@example.com>"),
        "{commands:?}"
    );
    assert!(
        data.contains("Subject: Payment for your order rx_1"),
        "{data}"
    );
    assert!(
        data.contains("Message-ID: <link-pay_1-1@rxbridge>"),
        "{data}"
    );
    assert!(
        data.contains("Content-Transfer-Encoding: quoted-printable"),
        "{data}"
    );
    assert!(
        data.contains("=C2=A349.95"),
        "£ is quoted-printable: {data}"
    );
}

#[tokio::test]
async fn smtp_failure_is_an_error_not_a_panic() {
    let smtp = Smtp::new(
        "127.0.0.1",
        9,
        SmtpSecurity::None,
        None,
        "p@pharmacy.example",
    )
    .unwrap();
    let r = smtp
        .send(&OutgoingEmail {
            to: "a@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            reference: "r".into(),
        })
        .await;
    assert!(r.is_err());
}
