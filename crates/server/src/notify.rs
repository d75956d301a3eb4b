//! Notifications: a failed, delayed or large backup (and later a failed drill) is
//! published on the event stream and, when the account has it switched on, emailed to
//! the admin address. Each condition is sent once (the `notices` table remembers it).

use chrono::Utc;
use rusqlite::params;
use serde_json::Value;

use crate::app::AppState;
use crate::control::AccountRow;

pub use repairops_api::NotificationSettings;

pub fn settings(conn: &rusqlite::Connection, account_id: i64) -> NotificationSettings {
    conn.query_row(
        "SELECT on_failure, on_delay, on_large FROM notification_settings WHERE account_id = ?1",
        [account_id],
        |r| {
            Ok(NotificationSettings {
                on_failure: r.get(0)?,
                on_delay: r.get(1)?,
                on_large: r.get(2)?,
            })
        },
    )
    .unwrap_or_default()
}

/// Forgets that `kind` was sent for an account, whatever its key: the condition ended,
/// and when it comes back it is told again.
pub fn rearm(app: &AppState, account: &AccountRow, kind: &str) {
    app.control.with_writer(|c| {
        if let Err(e) = c.execute(
            "DELETE FROM notices WHERE account_id = ?1 AND kind = ?2",
            params![account.id, kind],
        ) {
            tracing::warn!(error = %e, kind, "a notice could not be re-armed");
        }
    });
}

/// Publishes `kind` for an account once per `key`; emails it when switched on.
pub fn notify(app: &AppState, account: &AccountRow, kind: &str, key: &str, data: Value) {
    let first_time = app.control.with_writer(|c| {
        c.execute(
            "INSERT OR IGNORE INTO notices (account_id, kind, key, at) VALUES (?1, ?2, ?3, ?4)",
            params![account.id, kind, key, Utc::now().to_rfc3339()],
        )
        .map(|n| n == 1)
        .unwrap_or(true)
    });
    if !first_time {
        return;
    }
    app.jobs
        .events()
        .publish(account.id, &account.account.slug, kind, data.clone());
    let wanted = app.control.with_writer(|c| settings(c, account.id));
    let send = match kind {
        "backup.failed" | "drill.failed" | "location.down" => wanted.on_failure,
        "backup.delayed" => wanted.on_delay,
        "backup.large" => wanted.on_large,
        // A restore changes all of the shop's data: its outcome is always told.
        "restore.finished" => true,
        _ => false,
    };
    if send {
        crate::mail::send_notice(app, account, kind, &data);
    }
}
