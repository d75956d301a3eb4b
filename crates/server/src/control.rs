//! The control plane (`server.db`): accounts, sign-in identities, API tokens, and the
//! audit log's tables. It lives outside every account's backup, so a restore never
//! brings back an old password or a removed team member's access.

use chrono::{DateTime, Duration, Utc};
use repairops_api::{Account, AccountMode, Plan, Role};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::ApiError;

/// Schema migrations of `server.db`, in order; never edit a shipped one, add another.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    plan TEXT NOT NULL CHECK (plan IN ('starter', 'pro', 'enterprise')),
    timezone TEXT NOT NULL,
    admin_email TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'restoring')),
    created_at TEXT NOT NULL
);
CREATE TABLE identities (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'technician', 'front_desk')),
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    account TEXT NOT NULL,
    user TEXT NOT NULL,
    event_type TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    ip TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('success', 'failure')),
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_account_at ON audit_log (account, at);
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, count, hash) VALUES (1, 0, '');
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    r#"
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    phase TEXT,
    bytes_done INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX jobs_account ON jobs (account_id, state);
CREATE TABLE backups (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('scheduled', 'manual', 'safety')),
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    scheduled_for TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms INTEGER,
    size_bytes INTEGER,
    added_bytes INTEGER,
    summary TEXT,
    locations TEXT NOT NULL DEFAULT '[]',
    warnings TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    deleted_at TEXT
);
CREATE INDEX backups_account ON backups (account_id, started_at);
CREATE TABLE notification_settings (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    on_failure INTEGER NOT NULL DEFAULT 1,
    on_delay INTEGER NOT NULL DEFAULT 1,
    on_large INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE notices (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (account_id, kind, key)
);
CREATE TABLE email_log (
    id INTEGER PRIMARY KEY,
    account_id INTEGER,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    result TEXT NOT NULL,
    at TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE audit_head ADD COLUMN mac TEXT NOT NULL DEFAULT '';
"#,
    r#"
CREATE TABLE exports (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    dataset TEXT NOT NULL,
    format TEXT NOT NULL,
    filters TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    rows INTEGER,
    size_bytes INTEGER,
    sha256 TEXT,
    file_name TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    error TEXT,
    deleted_at TEXT
);
CREATE INDEX exports_account ON exports (account_id, id);
CREATE TABLE deletion_ledger (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    customer_id INTEGER NOT NULL,
    email_hmac TEXT,
    deleted_at TEXT NOT NULL,
    deleted_by TEXT NOT NULL,
    request_id INTEGER NOT NULL
);
CREATE INDEX deletion_ledger_account ON deletion_ledger (account_id, customer_id);
CREATE TABLE compliance_requests (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('subject_export', 'ccpa_export', 'ccpa_delete')),
    subject TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX compliance_requests_account ON compliance_requests (account_id, id);
"#,
    r#"
CREATE TABLE sandboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    backup_id INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    location TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    error TEXT,
    deleted_at TEXT
);
CREATE INDEX sandboxes_account ON sandboxes (account_id, id);
"#,
    r#"
CREATE TABLE drills (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    backup_id INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('manual', 'scheduled')),
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    passed INTEGER,
    checks TEXT NOT NULL DEFAULT '[]',
    location TEXT,
    started_at TEXT NOT NULL,
    duration_ms INTEGER
);
CREATE INDEX drills_account ON drills (account_id, id);
"#,
    // When the deleted customer was created: customer ids are reused, so an id alone
    // could name a later, different customer in a newer backup.
    r#"
ALTER TABLE deletion_ledger ADD COLUMN customer_created_at TEXT;
"#,
    // A deleted backup whose snapshots a location kept (it was down, or failed part
    // way): forgotten again before each backup until every location has let it go.
    r#"
ALTER TABLE backups ADD COLUMN purge_pending INTEGER NOT NULL DEFAULT 0;
"#,
    // From here on the empty audit log's head is signed too (`migrate`, below): SQL
    // cannot sign, so the step itself only marks where that began.
    r#"
SELECT 1;
"#,
];

/// The migration from which an empty audit log's head is signed.
const SIGNED_EMPTY_HEAD: usize = 9;

/// Opens (creating if needed) the control plane `data/server.db`, brought up to date
/// with [`migrate`].
pub fn open(data: &std::path::Path) -> Result<crate::db::Db, String> {
    let path = data.join("server.db");
    let mut migrated = Ok(());
    let db = crate::db::Db::open(&path, |c| {
        migrated = migrate(c, data);
        Ok(())
    })
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    migrated.map(|()| db)
}

/// Brings `server.db` up to date. A database that had not reached
/// [`SIGNED_EMPTY_HEAD`] gets its empty audit head signed with the audit key (made if
/// there is none), once: a log emptied later, its head set back to the start, then no
/// longer passes as one that never had a row (`audit::verify`), and the server does not
/// sign such a head when it next writes (`audit::append`).
pub fn migrate(conn: &mut rusqlite::Connection, data: &std::path::Path) -> Result<(), String> {
    let before: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(|e| format!("cannot read server.db's version: {e}"))? as usize;
    crate::db::migrate(conn, MIGRATIONS).map_err(|e| format!("cannot migrate server.db: {e}"))?;
    if before < SIGNED_EMPTY_HEAD {
        let key =
            crate::audit::AuditKey::load_or_create(data).map_err(|e| format!("cannot load the audit key: {e}"))?;
        crate::audit::sign_empty_head(conn, &key).map_err(|e| format!("cannot sign the audit log's head: {e}"))?;
    }
    Ok(())
}

/// The shop's time zone, by which its backups run and its date filters count days
/// (UTC if the stored name is not one chrono-tz knows; the API refuses such names).
pub fn account_tz(account: &Account) -> chrono_tz::Tz {
    account.timezone.parse().unwrap_or(chrono_tz::UTC)
}

/// An account row with its internal id.
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: i64,
    pub account: Account,
}

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    let plan: String = r.get("plan")?;
    let mode: String = r.get("mode")?;
    Ok(AccountRow {
        id: r.get("id")?,
        account: Account {
            slug: r.get("slug")?,
            name: r.get("name")?,
            plan: Plan::parse(&plan).unwrap_or(Plan::Starter),
            timezone: r.get("timezone")?,
            admin_email: r.get("admin_email")?,
            mode: if mode == "restoring" {
                AccountMode::Restoring
            } else {
                AccountMode::Normal
            },
        },
    })
}

pub fn account_by_slug(conn: &Connection, slug: &str) -> rusqlite::Result<Option<AccountRow>> {
    conn.query_row("SELECT * FROM accounts WHERE slug = ?1", [slug], account_from_row)
        .optional()
}

pub fn account_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<AccountRow>> {
    conn.query_row("SELECT * FROM accounts WHERE id = ?1", [id], account_from_row)
        .optional()
}

pub fn all_accounts(conn: &Connection) -> rusqlite::Result<Vec<AccountRow>> {
    let mut stmt = conn.prepare("SELECT * FROM accounts ORDER BY slug")?;
    let rows = stmt.query_map([], account_from_row)?;
    rows.collect()
}

/// Checks a slug: lowercase letters, digits and dashes, 2 to 40 long.
pub fn valid_slug(slug: &str) -> bool {
    (2..=40).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// Creates an account, or sets the plan and time zone of the existing one.
pub fn ensure_account(
    conn: &Connection,
    slug: &str,
    name: &str,
    plan: Plan,
    timezone: &str,
    admin_email: &str,
) -> rusqlite::Result<AccountRow> {
    if account_by_slug(conn, slug)?.is_some() {
        conn.execute(
            "UPDATE accounts SET plan = ?1, timezone = ?2 WHERE slug = ?3",
            params![plan.as_str(), timezone, slug],
        )?;
        return account_by_slug(conn, slug)?.ok_or(rusqlite::Error::QueryReturnedNoRows);
    }
    conn.execute(
        "INSERT INTO accounts (slug, name, plan, timezone, admin_email, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![slug, name, plan.as_str(), timezone, admin_email, now_text()],
    )?;
    account_by_slug(conn, slug)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

pub fn set_account_mode(conn: &Connection, account_id: i64, mode: AccountMode) -> rusqlite::Result<()> {
    let m = match mode {
        AccountMode::Normal => "normal",
        AccountMode::Restoring => "restoring",
    };
    conn.execute("UPDATE accounts SET mode = ?1 WHERE id = ?2", params![m, account_id])?;
    Ok(())
}

/// A sign-in identity: who may sign in, as which team member and role.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: i64,
    pub account_id: i64,
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

fn identity_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Identity> {
    let role: String = r.get("role")?;
    Ok(Identity {
        id: r.get("id")?,
        account_id: r.get("account_id")?,
        user_id: r.get("user_id")?,
        email: r.get("email")?,
        name: r.get("name")?,
        role: Role::parse(&role).unwrap_or(Role::FrontDesk),
        password_hash: r.get("password_hash")?,
    })
}

pub fn identity_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<Identity>> {
    conn.query_row(
        "SELECT * FROM identities WHERE email = ?1 AND active = 1",
        [email],
        identity_from_row,
    )
    .optional()
}

/// Creates or updates (password, role, name) the identity with this email.
pub fn upsert_identity(
    conn: &Connection,
    account_id: i64,
    user_id: i64,
    email: &str,
    name: &str,
    role: Role,
    password: &str,
) -> rusqlite::Result<()> {
    let hash = hash_password(password);
    conn.execute(
        "INSERT INTO identities (account_id, user_id, email, name, password_hash, role, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (email) DO UPDATE SET account_id = excluded.account_id, user_id = excluded.user_id,
             name = excluded.name, password_hash = excluded.password_hash, role = excluded.role, active = 1",
        params![account_id, user_id, email, name, hash, role.as_str(), now_text()],
    )?;
    Ok(())
}

/// Argon2id (default parameters of the argon2 crate: 19 MiB, 2 passes) in PHC form.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt_bytes = [0u8; 16];
    repairops_vault::crypto::fill_random(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes make a valid salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2id with default parameters does not fail")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// How long a sign-in lasts.
pub const TOKEN_LIFETIME_DAYS: i64 = 30;

/// Issues a bearer token; only its hash is stored.
pub fn issue_token(conn: &Connection, identity_id: i64, now: DateTime<Utc>) -> rusqlite::Result<String> {
    let mut raw = [0u8; 32];
    repairops_vault::crypto::fill_random(&mut raw);
    let token = format!("rob_{}", hex::encode(raw));
    conn.execute(
        "INSERT INTO tokens (hash, identity_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            token_hash(&token),
            identity_id,
            now.to_rfc3339(),
            (now + Duration::days(TOKEN_LIFETIME_DAYS)).to_rfc3339()
        ],
    )?;
    Ok(token)
}

pub fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// The identity a token signs in as, if the token is known and unexpired.
pub fn identity_by_token(conn: &Connection, token: &str, now: DateTime<Utc>) -> rusqlite::Result<Option<Identity>> {
    conn.query_row(
        "SELECT i.* FROM tokens t JOIN identities i ON i.id = t.identity_id
         WHERE t.hash = ?1 AND t.expires_at > ?2 AND i.active = 1",
        params![token_hash(token), now.to_rfc3339()],
        identity_from_row,
    )
    .optional()
}

pub fn revoke_token(conn: &Connection, token: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tokens WHERE hash = ?1", [token_hash(token)])?;
    Ok(())
}

/// A control plane in `dir/server.db` for unit tests, holding one account: id 1, `demo`.
#[cfg(test)]
pub(crate) fn open_for_test(dir: &std::path::Path) -> crate::db::Db {
    let control = open(dir).unwrap();
    control.with_writer(|c| {
        c.execute(
            "INSERT INTO accounts (id, slug, name, plan, timezone, admin_email, created_at)
             VALUES (1, 'demo', 'Demo', 'starter', 'UTC', 'owner@example.com', '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    });
    control
}

pub fn now_text() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Maps a control-plane failure for handlers.
pub fn db_err(e: rusqlite::Error) -> ApiError {
    ApiError::internal("read the server's accounts", e)
}
