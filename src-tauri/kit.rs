//! The offline disaster kit (the product page's checklist: "document critical data:
//! customer list, current jobs, in-progress repairs" and "have offline copies"): the
//! customer list and the open repairs as CSV and as a printable PDF with contacts, a
//! one-page restore runbook, a note that the kit holds personal data, and a SHA-256
//! manifest written last. A marker file names the kit, so a daily refresh recognises
//! the same drive wherever it is mounted.

use std::path::Path;

use repairops_api::{Client, Customer, Ticket};
use repairops_pdf::{Document, Style};

use crate::commands::KitResult;
use crate::error::UiError;
use crate::files::SavedFile;
use crate::state::Desktop;

/// The marker file in a kit's folder: `{"kit": "<account slug>"}`.
pub const MARKER: &str = ".repairops-kit.json";

/// Ticket statuses of repairs still in the shop: all but the two final ones.
fn open_statuses() -> impl Iterator<Item = &'static str> {
    repairops_api::TICKET_STATUSES
        .iter()
        .copied()
        .filter(|s| !matches!(*s, "Completed" | "Cancelled"))
}

async fn all<R: repairops_api::Resource>(client: &Client, extra: &[(&str, &str)]) -> Result<Vec<R>, UiError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = extra.to_vec();
        q.push(("limit", "500"));
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let page = client.list::<R>(&q).await?;
        out.extend(page.items);
        match page.next {
            Some(n) => cursor = Some(n),
            None => return Ok(out),
        }
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn customers_csv(customers: &[Customer]) -> Result<Vec<u8>, UiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| UiError::failed(e.to_string());
    w.write_record([
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "postal_code",
        "city",
    ])
    .map_err(err)?;
    for c in customers {
        w.write_record([
            c.id.to_string().as_str(),
            &c.first_name,
            &c.last_name,
            opt(&c.email),
            opt(&c.phone),
            opt(&c.address),
            opt(&c.postal_code),
            opt(&c.city),
        ])
        .map_err(err)?;
    }
    w.into_inner().map_err(|e| UiError::failed(e.to_string()))
}

fn repairs_csv(tickets: &[Ticket], customers: &std::collections::HashMap<i64, &Customer>) -> Result<Vec<u8>, UiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| UiError::failed(e.to_string());
    w.write_record([
        "ticket", "status", "customer", "phone", "email", "device", "serial", "problem", "received",
    ])
    .map_err(err)?;
    for t in tickets {
        let c = customers.get(&t.customer_id);
        w.write_record([
            t.id.to_string().as_str(),
            opt(&t.status),
            &c.map(|c| format!("{} {}", c.first_name, c.last_name))
                .unwrap_or_default(),
            c.map(|c| opt(&c.phone)).unwrap_or(""),
            c.map(|c| opt(&c.email)).unwrap_or(""),
            &format!("{} {}", t.device_make, t.device_model),
            opt(&t.serial_number),
            &t.problem,
            &t.created_at.format("%Y-%m-%d").to_string(),
        ])
        .map_err(err)?;
    }
    w.into_inner().map_err(|e| UiError::failed(e.to_string()))
}

/// Lines of text laid out on A4 pages (`repairops-pdf`: DejaVu Sans, so the names of
/// customers in any Latin, Greek or Cyrillic alphabet print as they are spelt).
fn pdf(title: &str, lines: &[String]) -> Result<Vec<u8>, UiError> {
    const PER_PAGE: usize = 58;
    let failed = |e: std::io::Error| UiError::failed(format!("The PDF could not be made: {e}"));
    let mut doc = Document::new(Vec::new(), title).map_err(failed)?;
    let chunks: Vec<&[String]> = if lines.is_empty() {
        vec![&[]]
    } else {
        lines.chunks(PER_PAGE).collect()
    };
    let count = chunks.len();
    for (n, chunk) in chunks.into_iter().enumerate() {
        let mut page = doc.page();
        let mut text = |y: f32, size: f32, bold: bool, s: &str| {
            let style = if bold { Style::Bold } else { Style::Regular };
            page.text_within(15.0, y, size, style, 180.0, s);
        };
        text(282.0, 14.0, true, title);
        text(276.0, 8.0, false, &format!("Page {} of {count}", n + 1));
        let mut y = 268.0;
        for line in chunk {
            let bold = line.starts_with("# ");
            text(y, if bold { 11.0 } else { 9.0 }, bold, line.trim_start_matches("# "));
            y -= 4.4;
        }
        doc.add_page(page).map_err(failed)?;
    }
    doc.finish().map_err(failed)
}

fn runbook(info: &crate::session::SessionInfo, now: &str) -> Vec<String> {
    [
        "# Who may restore".to_string(),
        "Only the account owner or a manager can restore. Technicians and front-desk staff cannot.".into(),
        format!(
            "This kit was made for account \"{}\" ({}) on {now}.",
            info.account.slug, info.account.name
        ),
        format!("Server: {}   (certificate fingerprint {})", info.server, info.ca_sha256),
        String::new(),
        "# If the shop's data is damaged or lost".into(),
        "1. Keep working on paper from this kit: customer contacts and open repairs are in it.".into(),
        "2. Open RepairOps Backup on the manager's computer and sign in.".into(),
        "3. Backups: pick the last good backup. Use Sandboxes to open it and check it first.".into(),
        format!(
            "4. Restore: pick the backup, compare, type the account name \"{}\" to confirm.",
            info.account.slug
        ),
        "   The shop is read-only while it runs; a safety backup is taken first, and a failed".into(),
        "   restore changes nothing. Customers deleted on request stay deleted.".into(),
        "5. For one lost ticket or customer, use Restore > Restore one record instead.".into(),
        String::new(),
        "# The recovery key".into(),
        "Backups are encrypted. Without the key they cannot be read, by anyone.".into(),
        "The owner saves a recovery key in Settings > Encryption key: a file that, with the".into(),
        "passphrase chosen then, opens every backup without the server. Keep the file offline".into(),
        "(a USB stick in the shop safe) and the passphrase apart from it, make a new one after".into(),
        "each key rotation, and write here where they are:".into(),
        String::new(),
        "   Recovery key kept at: ______________________________________________".into(),
        "   Who can fetch it:     ______________________________________________".into(),
        String::new(),
        "# Contacts".into(),
        format!("Admin email for backup alerts: {}", info.account.admin_email),
        "Server administrator: ______________________  phone: _______________".into(),
    ]
    .into()
}

/// Writes the kit into `folder` (replacing an older kit there).
pub async fn save(desktop: &Desktop, folder: &Path) -> Result<KitResult, UiError> {
    let (info, client) = desktop.current().ok_or_else(UiError::signed_out)?;
    let customers: Vec<Customer> = all(&client, &[]).await?;
    let mut open: Vec<Ticket> = Vec::new();
    for status in open_statuses() {
        open.extend(all::<Ticket>(&client, &[("status", status)]).await?);
    }
    open.sort_by_key(|t| t.id);
    let by_id: std::collections::HashMap<i64, &Customer> = customers.iter().map(|c| (c.id, c)).collect();
    let now = chrono::Utc::now();
    let stamp = now.format("%Y-%m-%d %H:%M UTC").to_string();

    let mut contact_lines = vec![format!("# Customers ({})", customers.len())];
    for c in &customers {
        contact_lines.push(format!(
            "{:>6}  {} {}   {}   {}",
            c.id,
            c.first_name,
            c.last_name,
            opt(&c.phone),
            opt(&c.email)
        ));
    }
    contact_lines.push(String::new());
    contact_lines.push(format!("# Open and in-progress repairs ({})", open.len()));
    for t in &open {
        let who = by_id
            .get(&t.customer_id)
            .map(|c| format!("{} {} {}", c.first_name, c.last_name, opt(&c.phone)))
            .unwrap_or_default();
        contact_lines.push(format!(
            "#{:<6} {:<18} {} {} - {}",
            t.id,
            opt(&t.status),
            t.device_make,
            t.device_model,
            who
        ));
    }

    let notice = format!(
        "RepairOps disaster kit for {} ({}), made {stamp}.\n\n\
         THIS KIT HOLDS CUSTOMERS' PERSONAL DATA (names, phone numbers, emails, addresses).\n\
         Keep it locked away like the shop's keys, do not share it, and destroy old copies.\n\n\
         customers.csv            every customer with contact details\n\
         open-repairs.csv         repairs still in the shop, with the customer to call\n\
         customers-and-repairs.pdf the same, printable\n\
         restore-runbook.pdf      who may restore, how, and where the recovery key is kept\n\
         MANIFEST.sha256          checksums of the files above (sha256sum -c MANIFEST.sha256)\n",
        info.account.name, info.account.slug
    );
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("README-PERSONAL-DATA.txt", notice.into_bytes(), "disaster kit: notice"),
        (
            "customers.csv",
            customers_csv(&customers)?,
            "disaster kit: customers (CSV)",
        ),
        (
            "open-repairs.csv",
            repairs_csv(&open, &by_id)?,
            "disaster kit: open repairs (CSV)",
        ),
        (
            "customers-and-repairs.pdf",
            pdf(
                &format!(
                    "{} - customers and open repairs ({stamp}) - PERSONAL DATA",
                    info.account.name
                ),
                &contact_lines,
            )?,
            "disaster kit: customers and repairs (PDF)",
        ),
        (
            "restore-runbook.pdf",
            pdf(
                &format!("{} - restore runbook", info.account.name),
                &runbook(&info, &stamp),
            )?,
            "disaster kit: restore runbook (PDF)",
        ),
    ];
    let total: u64 = files.iter().map(|(_, b, _)| b.len() as u64).sum();
    crate::files::check_fits(folder, total)?;
    // An earlier kit's manifest goes first: left in place, it would vouch for files a
    // refresh cut short had already half replaced.
    match std::fs::remove_file(folder.join("MANIFEST.sha256")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut saved = Vec::new();
    let mut manifest = String::new();
    for (name, bytes, what) in files {
        let target = folder.join(name);
        let chunks: crate::files::Chunks = Box::pin(futures_util::stream::iter([Ok(bytes)]));
        let (sha256, size) = crate::files::save_chunks(chunks, &target, None, |_| {}).await?;
        manifest.push_str(&format!("{sha256}  {name}\n"));
        saved.push(SavedFile {
            path: target.to_string_lossy().into_owned(),
            sha256,
            size,
            saved_at: now.to_rfc3339(),
            what: what.into(),
            server: info.server.clone(),
        });
    }
    // Last: a manifest that exists says every file before it was written whole.
    crate::files::write_atomically(&folder.join("MANIFEST.sha256"), manifest.as_bytes())?;
    let marker = serde_json::json!({"kit": info.account.slug, "server": info.server, "refreshed_at": now.to_rfc3339()});
    crate::files::write_atomically(&folder.join(MARKER), marker.to_string().as_bytes())?;
    for f in &saved {
        desktop.saved.add(f.clone())?;
    }
    Ok(KitResult {
        folder: folder.to_string_lossy().into_owned(),
        files: saved,
    })
}

/// Whether `folder` holds this account's kit and it is older than a day: the daily
/// refresh only writes to the drive that carries the marker, wherever it is mounted now.
pub fn due(folder: &Path, slug: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
    let Ok(bytes) = std::fs::read(folder.join(MARKER)) else {
        return false;
    };
    let Ok(marker) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    if marker.get("kit").and_then(|k| k.as_str()) != Some(slug) {
        return false;
    }
    marker
        .get("refreshed_at")
        .and_then(|t| t.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_none_or(|t| now - t.with_timezone(&chrono::Utc) > chrono::Duration::hours(24))
}

/// Refreshes the kit once a day while the app runs and its drive is present.
pub fn spawn_daily(app: tauri::AppHandle) {
    use tauri::Manager;
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(15 * 60)).await;
            let desktop = app.state::<Desktop>();
            let prefs = desktop.prefs();
            let (Some(folder), true) = (prefs.kit_folder, prefs.kit_daily) else {
                continue;
            };
            let Some((info, _)) = desktop.current() else { continue };
            let folder = std::path::PathBuf::from(folder);
            if due(&folder, &info.account.slug, chrono::Utc::now())
                && let Err(e) = save(&desktop, &folder).await
            {
                tracing::warn!(error = %e, "disaster kit not refreshed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_refresh_needs_the_marker_of_this_account_and_a_day_gone() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc::now();
        assert!(!due(dir.path(), "demo", now), "no marker: not the kit's drive");
        let old = (now - chrono::Duration::hours(30)).to_rfc3339();
        std::fs::write(
            dir.path().join(MARKER),
            format!(r#"{{"kit":"demo","refreshed_at":"{old}"}}"#),
        )
        .unwrap();
        assert!(due(dir.path(), "demo", now));
        assert!(!due(dir.path(), "other-shop", now));
        let fresh = now.to_rfc3339();
        std::fs::write(
            dir.path().join(MARKER),
            format!(r#"{{"kit":"demo","refreshed_at":"{fresh}"}}"#),
        )
        .unwrap();
        assert!(!due(dir.path(), "demo", now));
    }

    #[test]
    fn the_pdf_has_a_page_per_58_lines() {
        let lines: Vec<String> = (0..120).map(|i| format!("line {i}")).collect();
        let bytes = pdf("Test", &lines).unwrap();
        assert!(bytes.starts_with(b"%PDF"));
        // The page tree's count (checked against `pdfinfo` once: 3 pages).
        assert!(
            String::from_utf8_lossy(&bytes).contains("/Count 3"),
            "120 lines make 3 pages"
        );
        let one = pdf("Test", &lines[..10]).unwrap();
        assert!(
            String::from_utf8_lossy(&one).contains("/Count 1"),
            "10 lines make 1 page"
        );
    }
}
