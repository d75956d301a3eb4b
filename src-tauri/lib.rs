//! repairops-desktop: the shop manager's app. Tauri commands are thin wrappers over
//! `repairops-api`'s client; this crate adds what only a desktop has: the OS
//! credential store, certificate pinning on first use, saving to drives, the tray,
//! system notifications, and working offline.

pub mod commands;
pub mod error;
pub mod files;
pub mod kit;
mod notifications;
pub mod session;
pub mod state;
mod tray;
pub mod trust;
mod watcher;

use tauri::Manager;

/// Starts the app.
pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("REPAIROPS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .setup(|app| {
            let dir = match std::env::var_os("REPAIROPS_DESKTOP_DIR") {
                Some(d) => d.into(),
                None => app.path().app_data_dir()?,
            };
            std::fs::create_dir_all(&dir)?;
            app.manage(state::Desktop::new(dir));
            demo_sign_in(app.handle());
            tray::create(app.handle())?;
            // Started at login: only the tray until asked for (no web view in memory).
            if std::env::args().any(|a| a == "--hidden")
                && let Some(w) = app.get_webview_window("main")
            {
                let _ = w.destroy();
            }
            watcher::spawn(app.handle().clone());
            kit::spawn_daily(app.handle().clone());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::session,
            commands::ui_ready,
            commands::check_server,
            commands::sign_in,
            commands::sign_out,
            commands::overview,
            commands::backups,
            commands::backup,
            commands::back_up_now,
            commands::delete_backup,
            commands::verify_backup,
            commands::job,
            commands::running_jobs,
            commands::live_summary,
            commands::sandboxes,
            commands::create_sandbox,
            commands::delete_sandbox,
            commands::sandbox_tickets,
            commands::sandbox_customers,
            commands::restore,
            commands::restore_record,
            commands::exports,
            commands::start_export,
            commands::save_export,
            commands::saved_files,
            commands::verify_saved,
            commands::compliance_export,
            commands::ccpa_delete,
            commands::compliance_requests,
            commands::audit,
            commands::save_audit_csv,
            commands::notification_settings,
            commands::set_notification_settings,
            commands::account,
            commands::update_account,
            commands::rotate_key,
            commands::prefs,
            commands::set_prefs,
            commands::save_disaster_kit,
            commands::team,
            commands::add_team_member,
            commands::change_team_member,
            commands::save_recovery_key,
        ])
        .build(tauri::generate_context!())
        .map(|app| {
            app.run(|_, event| {
                // Closing the window frees its web view (and WebKit's web process) but
                // keeps the app in the tray, listening for failures; only Quit exits.
                if let tauri::RunEvent::ExitRequested { code: None, api, .. } = event {
                    api.prevent_exit();
                }
            })
        });
    if let Err(e) = result {
        eprintln!("RepairOps Backup could not start: {e}");
        std::process::exit(1);
    }
}

/// `REPAIROPS_DEMO_URL` and `REPAIROPS_DEMO_CA_SHA256` (set by `scripts/demo`, which
/// read them from the server it started) sign the app in as the demo owner, so the one
/// run command opens the app signed in. The fingerprint comes from the server's own
/// output, not from the network, so trusting it is as safe as typing it.
fn demo_sign_in(app: &tauri::AppHandle) {
    let (Ok(url), Ok(ca)) = (
        std::env::var("REPAIROPS_DEMO_URL"),
        std::env::var("REPAIROPS_DEMO_CA_SHA256"),
    ) else {
        return;
    };
    let desktop = app.state::<state::Desktop>();
    let Ok(guard) = desktop.startup.clone().try_lock_owned() else {
        return;
    };
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let desktop = app.state::<state::Desktop>();
        // The demo may replace a pin only for a server on this computer, which the
        // script just started: anywhere else a changed CA waits for a person.
        let pinned = desktop.pins.get(&url).map(|p| p.sha256);
        if pinned.is_some_and(|p| p != trust::normalise_fingerprint(&ca)) && !trust::is_loopback(&url) {
            tracing::warn!(%url, "demo sign-in skipped: that server's certificate changed; check it by hand");
            drop(guard);
            return;
        }
        let email = std::env::var("REPAIROPS_DEMO_EMAIL").unwrap_or_else(|_| "owner@demo.repairops.test".into());
        let password = std::env::var("REPAIROPS_DEMO_PASSWORD").unwrap_or_else(|_| "demo-owner".into());
        if let Err(e) = commands::sign_in_to(&desktop, url, ca, email, password).await {
            tracing::warn!(error = %e, "demo sign-in failed; sign in by hand");
        }
        drop(guard);
    });
}

/// The TypeScript declarations of every type the UI receives or sends, as
/// `ui/src/lib/bindings.ts` holds them. JSON has no 64-bit integers: every integer on
/// the wire is below 2^53, so `bigint` is written as `number`.
pub fn typescript_bindings() -> String {
    use repairops_api as api;
    use ts_rs::TS;
    let decls = [
        api::Role::decl(),
        api::Plan::decl(),
        api::AccountMode::decl(),
        api::Account::decl(),
        api::AccountPatch::decl(),
        api::SignedInUser::decl(),
        api::TeamMember::decl(),
        api::TeamChange::decl(),
        api::NewTeamMember::decl(),
        api::Page::<()>::decl(),
        api::Ticket::decl(),
        api::Customer::decl(),
        api::BackupKind::decl(),
        api::DataSummary::decl(),
        api::BackupLocation::decl(),
        api::JobState::decl(),
        api::Backup::decl(),
        api::Job::decl(),
        api::NextBackup::decl(),
        api::BackupStatus::decl(),
        api::Drill::decl(),
        api::NewExport::decl(),
        api::ExportFilters::decl(),
        api::Export::decl(),
        api::ComplianceRecord::decl(),
        api::DeletionResult::decl(),
        api::Sandbox::decl(),
        api::NotificationSettings::decl(),
        api::StorageLocation::decl(),
        api::AuditEntry::decl(),
        api::AuditRecord::decl(),
        api::RecordRestoreRequest::decl(),
        api::RecordConflict::decl(),
        api::RecordRestoreResult::decl(),
        api::ServerEvent::decl(),
        error::ErrorKind::decl(),
        error::UiError::decl(),
        session::SessionInfo::decl(),
        state::Overview::decl(),
        state::Prefs::decl(),
        files::SavedFile::decl(),
        files::Verification::decl(),
        commands::ServerIdentity::decl(),
        commands::BackupFilter::decl(),
        commands::AuditFilter::decl(),
        commands::SaveProgress::decl(),
        commands::KitResult::decl(),
    ];
    let mut out = String::from(
        "// Generated from the Rust types by `UPDATE_BINDINGS=1 cargo test -p repairops-desktop bindings`.\n\
         // Do not edit: a test fails when this file and the Rust types drift apart.\n\n\
         export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;\n\n",
    );
    for d in decls {
        out.push_str("export ");
        out.push_str(&d.replace("bigint", "number"));
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn bindings_match_the_rust_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/lib/bindings.ts");
        let want = super::typescript_bindings();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "ui/src/lib/bindings.ts is out of date with the Rust types: run `UPDATE_BINDINGS=1 cargo test -p repairops-desktop bindings`"
        );
    }
}
