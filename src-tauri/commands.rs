//! The Tauri commands: thin wrappers over `repairops-api`'s client (parse, call, map
//! the error). Arguments are snake_case on the wire, as the generated TypeScript types.

use std::path::PathBuf;

use repairops_api::{
    Account, AccountPatch, AuditRecord, Backup, ComplianceRecord, Customer, DataSummary, DeletionResult, Export, Job,
    NewExport, NotificationSettings, Page, RecordRestoreRequest, RecordRestoreResult, Sandbox, Ticket,
};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, State};
use tauri_plugin_dialog::DialogExt;
use ts_rs::TS;

use crate::error::{ErrorKind, UiError};
use crate::files::{SavedFile, Verification, safe_file_name};
use crate::session::SessionInfo;
use crate::state::{Desktop, Overview, Prefs};

type Result<T> = std::result::Result<T, UiError>;

/// A server as first seen: the fingerprint to compare with what the server printed.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ServerIdentity {
    pub url: String,
    pub ca_sha256: String,
    /// This computer trusted this CA for this server before.
    pub trusted: bool,
    /// The CA this computer trusted for this server before, when it is not this one: the
    /// server was reinstalled, or someone is in between. The person must confirm the new
    /// fingerprint with whoever runs the server.
    pub replaces: Option<String>,
}

/// Filters of the backups list.
#[derive(Debug, Clone, Default, Deserialize, TS)]
pub struct BackupFilter {
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default, Deserialize, TS)]
pub struct AuditFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub event_type: Option<String>,
    pub user: Option<String>,
    pub cursor: Option<String>,
}

impl AuditFilter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![];
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("event_type", &self.event_type),
            ("user", &self.user),
            ("cursor", &self.cursor),
        ] {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                q.push((k, v.to_string()));
            }
        }
        q
    }
}

/// Progress of a file being saved.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SaveProgress {
    pub target: String,
    #[ts(type = "number")]
    pub done: u64,
    #[ts(type = "number")]
    pub total: u64,
    /// The connection dropped and the download is being picked up again from `done`.
    pub resuming: bool,
}

/// The disaster kit as saved.
#[derive(Debug, Clone, Serialize, TS)]
pub struct KitResult {
    pub folder: String,
    pub files: Vec<SavedFile>,
}

fn pairs<'a>(q: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    q.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tauri::command(rename_all = "snake_case")]
pub async fn session(desktop: State<'_, Desktop>) -> Result<Option<SessionInfo>> {
    // A demo start signs in before the window asks who is signed in.
    let _started = desktop.startup.lock().await;
    desktop.resume()
}

/// The UI shows its first screen. With `REPAIROPS_STARTUP_REPORT=FILE` the time
/// (milliseconds since the Unix epoch) is written there, for the start-up benchmark.
#[tauri::command(rename_all = "snake_case")]
pub fn ui_ready() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(path) = std::env::var_os("REPAIROPS_STARTUP_REPORT") {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let _ = std::fs::write(path, ms.to_string());
        }
    });
}

#[tauri::command(rename_all = "snake_case")]
pub async fn check_server(desktop: State<'_, Desktop>, url: String) -> Result<ServerIdentity> {
    let url = crate::trust::server_key(&url);
    let (seen, known) = crate::trust::look(&desktop.pins, &url, None).await?;
    Ok(ServerIdentity {
        url,
        ca_sha256: seen.sha256,
        trusted: known == crate::trust::Known::Pinned,
        replaces: match known {
            crate::trust::Known::Changed { was } => Some(was),
            _ => None,
        },
    })
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sign_in(
    desktop: State<'_, Desktop>,
    url: String,
    ca_sha256: String,
    email: String,
    password: String,
) -> Result<SessionInfo> {
    sign_in_to(&desktop, url, ca_sha256, email, password).await
}

/// Signs in to `url`, trusting its CA only when it is the one `ca_sha256` names.
pub async fn sign_in_to(
    desktop: &Desktop,
    url: String,
    ca_sha256: String,
    email: String,
    password: String,
) -> Result<SessionInfo> {
    let url = crate::trust::server_key(&url);
    if email.trim().is_empty() || password.is_empty() {
        return Err(UiError::invalid("Enter your email and password."));
    }
    // Trust exactly the CA the person confirmed (after a warning, when it replaces the
    // one trusted before): look again, and refuse if it changed since.
    let (seen, _) = crate::trust::look(&desktop.pins, &url, Some(&ca_sha256)).await?;
    let client = repairops_api::Client::new(&url, repairops_api::Trust::PinnedCa(seen.pem.clone().into_bytes()))?;
    let (client, login) = client.login(email.trim(), &password).await?;
    desktop.pins.pin(&url, &seen)?;
    let remembered = crate::session::store_token(&url, &login.user.email, &login.token)?;
    let info = SessionInfo {
        server: url,
        ca_sha256: seen.sha256,
        email: login.user.email.clone(),
        user: login.user,
        account: login.account,
        remembered,
    };
    // A session whose token is in memory only is not one the next start can resume.
    if remembered {
        desktop.session_file.save(&info)?;
    } else {
        desktop.session_file.clear()?;
    }
    desktop.set_current(Some((info.clone(), client)));
    Ok(info)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sign_out(desktop: State<'_, Desktop>) -> Result<()> {
    if let Ok(client) = desktop.client() {
        // Revoke the token on the server when it answers; sign out here regardless.
        let _ = client.logout().await;
    }
    desktop.forget_session()
}

#[tauri::command(rename_all = "snake_case")]
pub async fn overview(app: AppHandle, desktop: State<'_, Desktop>) -> Result<Overview> {
    let o = desktop.overview().await?;
    crate::tray::show(&app, &o);
    Ok(o)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn backups(desktop: State<'_, Desktop>, filter: BackupFilter) -> Result<Page<Backup>> {
    let mut q = vec![];
    for (k, v) in [
        ("kind", &filter.kind),
        ("from", &filter.from),
        ("to", &filter.to),
        ("cursor", &filter.cursor),
    ] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            q.push((k, v.to_string()));
        }
    }
    Ok(desktop.client()?.backups(&pairs(&q)).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn backup(desktop: State<'_, Desktop>, id: i64) -> Result<Backup> {
    Ok(desktop.client()?.backup(id).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn back_up_now(desktop: State<'_, Desktop>) -> Result<Job> {
    Ok(desktop.client()?.back_up_now().await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn delete_backup(desktop: State<'_, Desktop>, id: i64) -> Result<()> {
    Ok(desktop.client()?.delete_backup(id).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn verify_backup(desktop: State<'_, Desktop>, id: i64) -> Result<Job> {
    Ok(desktop.client()?.verify_backup(id).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn job(desktop: State<'_, Desktop>, id: i64) -> Result<Job> {
    Ok(desktop.client()?.job(id).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn running_jobs(desktop: State<'_, Desktop>) -> Result<Vec<Job>> {
    Ok(desktop.client()?.running_jobs().await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn live_summary(desktop: State<'_, Desktop>) -> Result<DataSummary> {
    Ok(desktop.client()?.live_summary().await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sandboxes(desktop: State<'_, Desktop>) -> Result<Page<Sandbox>> {
    Ok(desktop.client()?.sandboxes().await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn create_sandbox(desktop: State<'_, Desktop>, backup_id: i64) -> Result<Job> {
    Ok(desktop.client()?.create_sandbox(backup_id).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn delete_sandbox(desktop: State<'_, Desktop>, id: i64) -> Result<()> {
    Ok(desktop.client()?.delete_sandbox(id).await?)
}

/// `[("cursor", c)]` for a page after the first, else nothing.
fn cursor_query(cursor: &Option<String>) -> Vec<(&'static str, String)> {
    match cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => vec![("cursor", c.to_string())],
        None => vec![],
    }
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sandbox_tickets(desktop: State<'_, Desktop>, id: i64, cursor: Option<String>) -> Result<Page<Ticket>> {
    let q = cursor_query(&cursor);
    Ok(desktop.client()?.in_sandbox(id).list::<Ticket>(&pairs(&q)).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn sandbox_customers(desktop: State<'_, Desktop>, id: i64, cursor: Option<String>) -> Result<Page<Customer>> {
    let q = cursor_query(&cursor);
    Ok(desktop.client()?.in_sandbox(id).list::<Customer>(&pairs(&q)).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn restore(desktop: State<'_, Desktop>, backup_id: i64, confirm: String) -> Result<Job> {
    Ok(desktop.client()?.restore(backup_id, confirm.trim()).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn restore_record(desktop: State<'_, Desktop>, req: RecordRestoreRequest) -> Result<RecordRestoreResult> {
    Ok(desktop.client()?.restore_record(&req).await?)
}

/// A page of the exports that can still be downloaded, newest first; `cursor` is the
/// `next` of the page before (a busy shop makes more than a page in 30 days).
#[tauri::command(rename_all = "snake_case")]
pub async fn exports(desktop: State<'_, Desktop>, cursor: Option<String>) -> Result<Page<Export>> {
    let q = cursor_query(&cursor);
    Ok(desktop.client()?.exports(&pairs(&q)).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn start_export(desktop: State<'_, Desktop>, req: NewExport) -> Result<Job> {
    Ok(desktop.client()?.start_export(&req).await?)
}

/// Asks where to save, with a safe default name. `None` when the dialog was closed.
async fn ask_save_path(app: &AppHandle, title: &str, name: &str, ext: &str) -> Result<Option<PathBuf>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut dialog = app.dialog().file().set_title(title).set_file_name(safe_file_name(name));
    if !ext.is_empty() {
        dialog = dialog.add_filter(ext.to_uppercase(), &[ext]);
    }
    dialog.save_file(move |path| {
        let _ = tx.send(path);
    });
    let Some(path) = rx
        .await
        .map_err(|_| UiError::failed("The save dialog closed unexpectedly."))?
    else {
        return Ok(None);
    };
    let path = path
        .into_path()
        .map_err(|_| UiError::invalid("That place cannot be written to from this app. Pick a folder on a drive."))?;
    // Whatever was typed, the name must be one every drive format accepts.
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| UiError::invalid("Pick a file name."))?;
    let safe = safe_file_name(name);
    if safe == name {
        return Ok(Some(path)); // the dialog asked before replacing a file of this name
    }
    // A changed name was never confirmed: it replaces no file that is there.
    Ok(Some(crate::files::unused_name(&path.with_file_name(safe))))
}

/// An export by id, looked for page by page (a busy shop can make hundreds in the 30
/// days they are kept).
async fn find_export(client: &repairops_api::Client, id: i64) -> Result<Option<Export>> {
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", "200")];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let page = client.exports(&query).await?;
        if let Some(found) = page.items.into_iter().find(|e| e.id == id) {
            return Ok(Some(found));
        }
        match page.next {
            Some(next) if cursor.as_ref() != Some(&next) => cursor = Some(next),
            _ => return Ok(None),
        }
    }
}

#[tauri::command(rename_all = "snake_case")]
pub async fn save_export(app: AppHandle, desktop: State<'_, Desktop>, export_id: i64) -> Result<Option<SavedFile>> {
    let client = desktop.client()?;
    let export = find_export(&client, export_id).await?.ok_or_else(|| {
        UiError::new(
            ErrorKind::NotFound,
            "That export is no longer on the server (exports are kept 30 days).",
        )
    })?;
    if export.state != repairops_api::JobState::Succeeded {
        return Err(UiError::invalid(
            "That export has not finished; save it once it is ready.",
        ));
    }
    let Some(target) = ask_save_path(&app, "Save export", &export.file_name, &export.format).await? else {
        return Ok(None);
    };
    let total = export.size_bytes.unwrap_or(0);
    let resp = client.export_download(export_id, 0).await?;
    let shown = target.to_string_lossy().into_owned();
    let tell = {
        let app = app.clone();
        move |done, resuming| {
            let _ = app.emit(
                "save-progress",
                SaveProgress {
                    target: shown.clone(),
                    done,
                    total,
                    resuming,
                },
            );
        }
    };
    let tell_resuming = tell.clone();
    let progress = crate::files::throttled(std::time::Duration::from_millis(100), total, move |done| {
        tell(done, false)
    });
    let resume_client = client.clone();
    let reopen: crate::files::Reopen = Box::new(move |from| {
        tell_resuming(from, true);
        let client = resume_client.clone();
        Box::pin(async move { crate::files::resumed_chunks(client.export_download(export_id, from).await, from) })
    });
    let (sha256, size) = crate::files::save_download(
        resp,
        Some(crate::files::Resume::new(reopen)),
        &target,
        total,
        export.sha256.as_deref(),
        progress,
    )
    .await?;
    let what = format!(
        "{} ({}), export {}",
        export.dataset,
        export.format.to_uppercase(),
        export.id
    );
    remember(&desktop, &target, sha256, size, what, client.base()).map(Some)
}

/// Adds a file just saved to the list kept on this computer.
fn remember(
    desktop: &Desktop,
    target: &std::path::Path,
    sha256: String,
    size: u64,
    what: String,
    server: &str,
) -> Result<SavedFile> {
    let saved = SavedFile {
        path: target.to_string_lossy().into_owned(),
        sha256,
        size,
        saved_at: chrono::Utc::now().to_rfc3339(),
        what,
        server: server.to_string(),
    };
    desktop.saved.add(saved.clone())?;
    Ok(saved)
}

#[tauri::command(rename_all = "snake_case")]
pub fn saved_files(desktop: State<'_, Desktop>) -> Vec<SavedFile> {
    desktop.saved.all()
}

#[tauri::command(rename_all = "snake_case")]
pub async fn verify_saved(desktop: State<'_, Desktop>, path: String) -> Result<Verification> {
    let saved = desktop.saved.clone();
    tokio::task::spawn_blocking(move || saved.verify(&path))
        .await
        .map_err(|e| UiError::failed(e.to_string()))?
}

/// Saves bytes the app already holds (a compliance document, the audit CSV) through
/// the dialog, the same careful way as an export.
async fn save_bytes(
    app: &AppHandle,
    desktop: &Desktop,
    title: &str,
    name: &str,
    ext: &str,
    bytes: Vec<u8>,
    what: String,
) -> Result<Option<SavedFile>> {
    let Some(target) = ask_save_path(app, title, name, ext).await? else {
        return Ok(None);
    };
    save_bytes_to(desktop, &target, bytes, what).await.map(Some)
}

/// Writes `bytes` to `target` (already chosen) the careful way, and remembers the file.
async fn save_bytes_to(desktop: &Desktop, target: &std::path::Path, bytes: Vec<u8>, what: String) -> Result<SavedFile> {
    if let Some(dir) = target.parent() {
        crate::files::check_fits(dir, bytes.len() as u64)?;
    }
    let chunks: crate::files::Chunks = Box::pin(futures_util::stream::iter([Ok(bytes)]));
    let (sha256, size) = crate::files::save_chunks(chunks, target, None, |_| {}).await?;
    let server = desktop.client().map(|c| c.base().to_string()).unwrap_or_default();
    remember(desktop, target, sha256, size, what, &server)
}

/// Makes a recovery key opened by `passphrase` and saves it where the owner picks
/// (asked first: a key is made only for a file that will be kept).
#[tauri::command(rename_all = "snake_case")]
pub async fn save_recovery_key(
    app: AppHandle,
    desktop: State<'_, Desktop>,
    passphrase: String,
) -> Result<Option<SavedFile>> {
    let (session, client) = desktop.current().ok_or_else(UiError::signed_out)?;
    let request = repairops_api::RecoveryKeyRequest { passphrase };
    if let Some(problem) = request.passphrase_problem() {
        return Err(UiError::invalid(problem));
    }
    let name = format!("repairops-recovery-key-{}.txt", session.account.slug);
    let Some(target) = ask_save_path(&app, "Save recovery key", &name, "txt").await? else {
        return Ok(None);
    };
    let text = client.recovery_key(&request.passphrase).await?;
    save_bytes_to(&desktop, &target, text.into_bytes(), "recovery key".into())
        .await
        .map(Some)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn compliance_export(
    app: AppHandle,
    desktop: State<'_, Desktop>,
    email: String,
    kind: String,
) -> Result<Option<SavedFile>> {
    let client = desktop.client()?;
    let email = email.trim().to_string();
    let (doc, label) = match kind.as_str() {
        "subject" => (client.subject_export(&email).await?, "data-subject export"),
        "ccpa" => (client.ccpa_export(&email).await?, "CCPA export"),
        _ => return Err(UiError::invalid("Choose a data-subject (GDPR) or a CCPA export.")),
    };
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| UiError::failed(e.to_string()))?;
    let day = chrono::Utc::now().format("%Y-%m-%d");
    save_bytes(
        &app,
        &desktop,
        "Save personal data export",
        &format!("{kind}-export-{day}.json"),
        "json",
        bytes,
        format!("{label} (JSON)"),
    )
    .await
}

#[tauri::command(rename_all = "snake_case")]
pub async fn ccpa_delete(desktop: State<'_, Desktop>, email: String, confirm: String) -> Result<DeletionResult> {
    let email = email.trim();
    if email.is_empty() || !email.eq_ignore_ascii_case(confirm.trim()) {
        return Err(UiError::invalid(
            "Type the customer's email address a second time, exactly, to confirm the deletion.",
        ));
    }
    Ok(desktop.client()?.ccpa_delete(email).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn compliance_requests(
    desktop: State<'_, Desktop>,
    cursor: Option<String>,
) -> Result<Page<ComplianceRecord>> {
    let q = cursor_query(&cursor);
    Ok(desktop.client()?.compliance_requests(&pairs(&q)).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn audit(desktop: State<'_, Desktop>, filter: AuditFilter) -> Result<Page<AuditRecord>> {
    let q = filter.query();
    Ok(desktop.client()?.audit(&pairs(&q)).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn save_audit_csv(
    app: AppHandle,
    desktop: State<'_, Desktop>,
    filter: AuditFilter,
) -> Result<Option<SavedFile>> {
    let client = desktop.client()?;
    let mut q = filter.query();
    q.retain(|(k, _)| *k != "cursor");
    let Some(target) = ask_save_path(
        &app,
        "Save audit log",
        &format!("audit-log-{}.csv", chrono::Utc::now().format("%Y-%m-%d")),
        "csv",
    )
    .await?
    else {
        return Ok(None);
    };
    let resp = client.audit_csv(&pairs(&q)).await?;
    if let (Some(dir), Some(len)) = (target.parent(), resp.content_length()) {
        crate::files::check_fits(dir, len)?;
    }
    let (sha256, size) = crate::files::save_chunks(crate::files::response_chunks(resp), &target, None, |_| {}).await?;
    remember(&desktop, &target, sha256, size, "audit log (CSV)".into(), client.base()).map(Some)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn notification_settings(desktop: State<'_, Desktop>) -> Result<NotificationSettings> {
    Ok(desktop.client()?.notification_settings().await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn set_notification_settings(
    desktop: State<'_, Desktop>,
    settings: NotificationSettings,
) -> Result<NotificationSettings> {
    Ok(desktop.client()?.set_notification_settings(&settings).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn account(desktop: State<'_, Desktop>) -> Result<Account> {
    Ok(desktop.client()?.account().await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn update_account(desktop: State<'_, Desktop>, patch: AccountPatch) -> Result<Account> {
    Ok(desktop.client()?.update_account(&patch).await?)
}

/// The account's team sign-ins (owner only).
#[tauri::command(rename_all = "snake_case")]
pub async fn team(desktop: State<'_, Desktop>) -> Result<Vec<repairops_api::TeamMember>> {
    Ok(desktop.client()?.team().await?.items)
}

/// Gives someone who joined the shop a sign-in (owner only).
#[tauri::command(rename_all = "snake_case")]
pub async fn add_team_member(
    desktop: State<'_, Desktop>,
    member: repairops_api::NewTeamMember,
) -> Result<repairops_api::TeamMember> {
    Ok(desktop.client()?.add_team_member(&member).await?)
}

/// Changes a team sign-in: role, switched off or on, new password (owner only).
#[tauri::command(rename_all = "snake_case")]
pub async fn change_team_member(
    desktop: State<'_, Desktop>,
    id: i64,
    change: repairops_api::TeamChange,
) -> Result<repairops_api::TeamMember> {
    Ok(desktop.client()?.change_team_member(id, &change).await?)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn rotate_key(desktop: State<'_, Desktop>) -> Result<Job> {
    Ok(desktop.client()?.rotate_key().await?)
}

#[tauri::command(rename_all = "snake_case")]
pub fn prefs(desktop: State<'_, Desktop>) -> Prefs {
    desktop.prefs()
}

#[tauri::command(rename_all = "snake_case")]
pub fn set_prefs(app: AppHandle, desktop: State<'_, Desktop>, prefs: Prefs) -> Result<Prefs> {
    use tauri_plugin_autostart::ManagerExt;
    let autostart = app.autolaunch();
    let now = autostart.is_enabled().unwrap_or(false);
    if prefs.start_at_login != now {
        let r = if prefs.start_at_login {
            autostart.enable()
        } else {
            autostart.disable()
        };
        r.map_err(|e| UiError::failed(format!("Could not change starting at login: {e}.")))?;
    }
    if let Err(e) = desktop.set_prefs(&prefs) {
        // Not saved: starting at login goes back to what the saved settings say.
        if prefs.start_at_login != now {
            let _ = if now { autostart.enable() } else { autostart.disable() };
        }
        return Err(e);
    }
    Ok(prefs)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn save_disaster_kit(app: AppHandle, desktop: State<'_, Desktop>) -> Result<Option<KitResult>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title("Choose a folder or drive for the disaster kit")
        .pick_folder(move |p| {
            let _ = tx.send(p);
        });
    let Some(folder) = rx
        .await
        .map_err(|_| UiError::failed("The folder dialog closed unexpectedly."))?
    else {
        return Ok(None);
    };
    let folder = folder
        .into_path()
        .map_err(|_| UiError::invalid("That place cannot be written to from this app. Pick a folder on a drive."))?;
    let result = crate::kit::save(&desktop, &folder).await?;
    let mut prefs = desktop.prefs();
    prefs.kit_folder = Some(folder.to_string_lossy().into_owned());
    desktop.set_prefs(&prefs)?;
    Ok(Some(result))
}
