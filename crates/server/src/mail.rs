//! Email to an account's admin address over SMTP (lettre). Without an `[smtp]` section
//! in the config nothing is sent (the event stream still carries every notice); each
//! attempt is written to the email log in `server.db` (kept 90 days).

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use rusqlite::params;
use serde_json::Value;

use crate::app::AppState;
use crate::control::AccountRow;

/// How to reach the mail server.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Sender, e.g. `RepairOps Backup <backups@example.com>`.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `starttls` (default), `tls`, or `none` (only for a mail server on this machine).
    #[serde(default = "default_security")]
    pub security: String,
}

fn default_port() -> u16 {
    587
}

fn default_security() -> String {
    "starttls".into()
}

fn transport(cfg: &SmtpConfig) -> Result<SmtpTransport, String> {
    let mut builder = match cfg.security.as_str() {
        "none" => {
            let local =
                cfg.host == "localhost" || cfg.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !local {
                return Err(format!(
                    "smtp.security = \"none\" is allowed only for a mail server on this machine, not {}",
                    cfg.host
                ));
            }
            SmtpTransport::builder_dangerous(&cfg.host)
        }
        "tls" => SmtpTransport::relay(&cfg.host).map_err(|e| e.to_string())?,
        "starttls" => SmtpTransport::starttls_relay(&cfg.host).map_err(|e| e.to_string())?,
        other => return Err(format!("smtp.security {other:?}: use starttls, tls or none")),
    };
    builder = builder.port(cfg.port).timeout(Some(std::time::Duration::from_secs(20)));
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(builder.build())
}

/// The subject and text of a notice.
fn compose(account: &AccountRow, kind: &str, data: &Value) -> (String, String) {
    let name = &account.account.name;
    let detail = data.get("error").and_then(Value::as_str).unwrap_or("");
    match kind {
        "backup.failed" => (
            format!("[{name}] Backup failed"),
            format!(
                "The backup of {name} failed.\n\n{detail}\n\nThe shop keeps working; open RepairOps Backup → Backups for details, or take a manual backup once the cause is fixed."
            ),
        ),
        "backup.delayed" => (
            format!("[{name}] Backup delayed"),
            format!(
                "The nightly backup of {name} scheduled for {} has not completed more than two hours later.\n\nCheck that the server is running and its storage is reachable.",
                data.get("scheduled_for").and_then(Value::as_str).unwrap_or("?")
            ),
        ),
        "backup.large" => (
            format!("[{name}] Backup is larger than 500 MB"),
            format!(
                "The data of {name} now takes {} MB. Backups continue as usual; this is for your planning.",
                data.get("size_bytes").and_then(Value::as_u64).unwrap_or(0) / 1_000_000
            ),
        ),
        "location.down" => (
            format!("[{name}] Backup location unreachable"),
            format!(
                "The backup of {name} could not reach its {} location ({}): {}\n\nThe backup completed in the other location. The next backup catches up once the location is back.",
                data.get("location").and_then(Value::as_str).unwrap_or("?"),
                data.get("url").and_then(Value::as_str).unwrap_or("?"),
                data.get("error").and_then(Value::as_str).unwrap_or("")
            ),
        ),
        "restore.finished" if data.get("succeeded").and_then(Value::as_bool) == Some(true) => (
            format!("[{name}] Restore finished"),
            format!(
                "Backup {} of {name} was restored to production (read from the {} location) and the shop is back online.\n\nThe data from before the restore is kept as safety backup {} for 30 days, should you need to undo it.",
                data.get("backup_id").and_then(Value::as_i64).unwrap_or(0),
                data["result"].get("location").and_then(Value::as_str).unwrap_or("?"),
                data["result"]
                    .get("safety_backup_id")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
            ),
        ),
        "restore.finished" => (
            format!("[{name}] Restore failed: nothing was changed"),
            format!(
                "The restore of backup {} of {name} failed, and the live data is exactly as it was before; the shop is back online.\n\n{detail}",
                data.get("backup_id").and_then(Value::as_i64).unwrap_or(0),
            ),
        ),
        "drill.failed" => (
            format!("[{name}] Restore test failed"),
            format!(
                "The restore test (drill) of backup {} of {name} did not pass: the backup could not be restored and checked as it should.\n\n{detail}\n\nThe shop's live data is not affected. Open RepairOps Backup → Backups, run the test again on that backup or a newer one, and take a manual backup if the newest ones fail too.",
                data.get("backup_id").and_then(Value::as_i64).unwrap_or(0),
            ),
        ),
        other => (format!("[{name}] {other}"), format!("{other}: {data}")),
    }
}

/// Sends a notice to the admin address, on a thread of its own (mail servers can be
/// slow), and logs the attempt.
pub fn send_notice(app: &AppState, account: &AccountRow, kind: &str, data: &Value) {
    let Some(cfg) = app.config.smtp.clone() else {
        tracing::info!(account = %account.account.slug, kind, "no [smtp] configured: notice published on the event stream only");
        return;
    };
    let (subject, body) = compose(account, kind, data);
    let to = account.account.admin_email.clone();
    let control = app.control.clone();
    let account_id = account.id;
    std::thread::spawn(move || {
        let result = (|| -> Result<(), String> {
            let from: Mailbox = cfg.from.parse().map_err(|e| format!("smtp.from {:?}: {e}", cfg.from))?;
            let to_box: Mailbox = to.parse().map_err(|e| format!("admin email {to:?}: {e}"))?;
            let msg = Message::builder()
                .from(from)
                .to(to_box)
                .subject(subject.clone())
                .body(body)
                .map_err(|e| e.to_string())?;
            transport(&cfg)?.send(&msg).map_err(|e| e.to_string())?;
            Ok(())
        })();
        if let Err(e) = &result {
            tracing::warn!(error = %e, "notice email not sent");
        }
        control.with_writer(|c| {
            let _ = c.execute(
                "INSERT INTO email_log (account_id, recipient, subject, result, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    account_id,
                    to,
                    subject,
                    result.err().unwrap_or_else(|| "sent".into()),
                    chrono::Utc::now().to_rfc3339()
                ],
            );
        });
    });
}

/// Deletes email log entries older than 90 days; run by the sweeper every ten minutes,
/// so a server that sends no mail for months still keeps no older ones.
pub async fn sweep_log(control: &crate::db::Db, now: chrono::DateTime<chrono::Utc>) {
    let before = (now - chrono::Duration::days(90)).to_rfc3339();
    let result = control
        .write(move |c| Ok(c.execute("DELETE FROM email_log WHERE at < ?1", [before])?))
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e.message, "old email log entries could not be deleted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_email_log_keeps_90_days() {
        let dir = tempfile::tempdir().unwrap();
        let control = crate::control::open_for_test(dir.path());
        let now = chrono::Utc::now();
        control.with_writer(|c| {
            for days in [91, 89, 0] {
                c.execute(
                    "INSERT INTO email_log (account_id, recipient, subject, result, at) VALUES (1, 'a@example.com', ?1, 'sent', ?2)",
                    params![format!("{days} days ago"), (now - chrono::Duration::days(days)).to_rfc3339()],
                )
                .unwrap();
            }
        });
        sweep_log(&control, now).await;
        let left: Vec<String> = control.with_writer(|c| {
            c.prepare("SELECT subject FROM email_log ORDER BY at")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
        });
        assert_eq!(left, ["89 days ago", "0 days ago"]);
    }
    use repairops_api::{Account, AccountMode, Plan};
    use serde_json::json;

    #[test]
    fn every_emailed_notice_reads_as_a_sentence_not_as_data() {
        let account = AccountRow {
            id: 1,
            account: Account {
                slug: "demo".into(),
                name: "Demo Repair".into(),
                plan: Plan::Pro,
                timezone: "UTC".into(),
                admin_email: "owner@example.com".into(),
                mode: AccountMode::Normal,
            },
        };
        let data = json!({"backup_id": 7, "error": "tickets: 10 rows, the summary says 12",
            "scheduled_for": "2026-12-01T02:00:00Z", "size_bytes": 600_000_000u64,
            "location": "secondary", "url": "s3://bucket", "succeeded": true,
            "result": {"location": "primary", "safety_backup_id": 8}});
        // The kinds `notify` emails.
        for kind in [
            "backup.failed",
            "backup.delayed",
            "backup.large",
            "location.down",
            "drill.failed",
            "restore.finished",
        ] {
            let (subject, body) = compose(&account, kind, &data);
            assert!(subject.starts_with("[Demo Repair] "), "{subject}");
            assert!(
                !subject.contains(kind) && !body.contains('{'),
                "{kind}: {subject} / {body}"
            );
        }
        let (_, body) = compose(&account, "drill.failed", &data);
        assert!(
            body.contains("backup 7") && body.contains("the summary says 12"),
            "{body}"
        );
    }
}
