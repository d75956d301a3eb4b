//! Team sign-ins, for the owner: who can sign in to the account and with which role.
//! A person who leaves is switched off, and their sessions end at once; a forgotten
//! password is replaced. Sign-ins live in the control plane, outside every backup, so
//! a restore never brings back a switched-off person's access.

use axum::extract::State;
use axum::http::StatusCode;
use repairops_api::{ErrorBody, NewTeamMember, Page, Role, TeamChange, TeamMember};
use rusqlite::{Connection, OptionalExtension, params};

use crate::app::AppState;
use crate::auth::{Auth, Permission};
use crate::control;
use crate::error::{ApiError, Deferred, Path};

/// Passwords shorter than this are refused (the demo's are 10 characters and more).
const MIN_PASSWORD: usize = 10;
/// Longer ones are refused too: hashing is costly and the body small.
const MAX_PASSWORD: usize = 256;
/// A name longer than this is not a person's name.
const MAX_NAME: usize = 200;

/// The Argon2id hash of a new password, after checking its length. Hashing takes a
/// moment, so it runs off the runtime's threads, before anything is written.
async fn new_password_hash(password: &str) -> Result<String, ApiError> {
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.chars().count()) {
        return Err(ApiError::invalid(format!(
            "a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    let password = password.to_string();
    tokio::task::spawn_blocking(move || control::hash_password(&password))
        .await
        .map_err(|e| ApiError::internal("hash the password", e))
}

fn member_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TeamMember> {
    let role: String = r.get(3)?;
    Ok(TeamMember {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::FrontDesk),
        active: r.get(4)?,
        created_at: r.get(5)?,
    })
}

const MEMBER_COLUMNS: &str = "id, email, name, role, active, created_at";

fn members(conn: &Connection, account_id: i64) -> rusqlite::Result<Vec<TeamMember>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {MEMBER_COLUMNS} FROM identities WHERE account_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([account_id], member_from_row)?;
    rows.collect()
}

fn member(conn: &Connection, account_id: i64, id: i64) -> rusqlite::Result<Option<TeamMember>> {
    conn.query_row(
        &format!("SELECT {MEMBER_COLUMNS} FROM identities WHERE account_id = ?1 AND id = ?2"),
        params![account_id, id],
        member_from_row,
    )
    .optional()
}

#[utoipa::path(get, path = "/api/v1/team", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Page<TeamMember>), (status = 403, body = ErrorBody)))]
pub async fn list(State(app): State<AppState>, auth: Auth) -> Result<axum::Json<Page<TeamMember>>, ApiError> {
    auth.require(Permission::AccountSettings)?;
    let account_id = auth.account.id;
    let items = app
        .control
        .read(move |c| members(c, account_id).map_err(control::db_err))
        .await?;
    Ok(axum::Json(Page { items, next: None }))
}

#[utoipa::path(patch, path = "/api/v1/team/{id}", tag = "account", security(("bearer" = [])), request_body = TeamChange,
    params(("id" = i64, Path, description = "The sign-in's id")),
    responses((status = 200, body = TeamMember), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 423, body = ErrorBody)))]
pub async fn change(
    State(app): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Deferred<TeamChange>,
) -> Result<axum::Json<TeamMember>, ApiError> {
    auth.require(Permission::AccountSettings)?;
    auth.require_writable()?;
    let change = body.parse()?;
    let password_hash = match &change.password {
        Some(p) => Some(new_password_hash(p).await?),
        None => None,
    };
    let (account_id, own_token) = (auth.account.id, auth.token.clone());
    let role_or_on_changed = change.role.is_some() || change.active.is_some();
    let member = app
        .control
        .write(move |c| {
            let tx = c.transaction().map_err(control::db_err)?;
            let before = member(&tx, account_id, id)
                .map_err(control::db_err)?
                .ok_or_else(|| ApiError::not_found(&format!("team sign-in {id}")))?;
            let role = change.role.unwrap_or(before.role);
            let active = change.active.unwrap_or(before.active);
            // The account must keep an owner who can sign in, or no one could ever
            // change these settings again.
            if before.role == Role::Owner && before.active && (role != Role::Owner || !active) {
                let owners: i64 = tx
                    .query_row(
                        "SELECT count(*) FROM identities WHERE account_id = ?1 AND role = 'owner' AND active = 1",
                        [account_id],
                        |r| r.get(0),
                    )
                    .map_err(control::db_err)?;
                if owners <= 1 {
                    return Err(ApiError::conflict(
                        "This is the account's only owner who can sign in: make another team member an owner first.",
                    ));
                }
            }
            tx.execute(
                "UPDATE identities SET role = ?1, active = ?2, password_hash = COALESCE(?3, password_hash) WHERE id = ?4",
                params![role.as_str(), active, password_hash, id],
            )
            .map_err(control::db_err)?;
            // Switched off, or a new password: every session of theirs ends (the
            // owner's own request keeps its session when they change their own).
            if !active || password_hash.is_some() {
                tx.execute(
                    "DELETE FROM tokens WHERE identity_id = ?1 AND hash != ?2",
                    params![id, control::token_hash(&own_token)],
                )
                .map_err(control::db_err)?;
            }
            let after = member(&tx, account_id, id)
                .map_err(control::db_err)?
                .ok_or_else(|| ApiError::not_found(&format!("team sign-in {id}")))?;
            tx.commit().map_err(control::db_err)?;
            Ok(after)
        })
        .await?;
    if role_or_on_changed {
        staff_list_follows(&app, &auth).await;
    }
    Ok(axum::Json(member))
}

/// After a sign-in changed: the staff list follows (`staff::keep_live`). The sign-in
/// is already written and decides what the person may do, so the change stands and is
/// answered as made even if the shop's data cannot take the copy now (busy, or being
/// put back after a failed restore): that is logged, and the next change, restore or
/// sandbox of the account puts the two in step.
async fn staff_list_follows(app: &AppState, auth: &Auth) {
    if let Err(e) = crate::staff::keep_live(app, auth.account.id, &auth.account.account.slug).await {
        tracing::warn!(account = %auth.account.account.slug, error = %e.message,
            "the staff list did not take a change of sign-in; it follows at the next one");
    }
}

#[utoipa::path(post, path = "/api/v1/team", tag = "account", security(("bearer" = [])), request_body = NewTeamMember,
    responses((status = 201, body = TeamMember), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 423, body = ErrorBody)))]
pub async fn add(
    State(app): State<AppState>,
    auth: Auth,
    body: Deferred<NewTeamMember>,
) -> Result<(StatusCode, axum::Json<TeamMember>), ApiError> {
    auth.require(Permission::AccountSettings)?;
    // The shop's users are part of the data a restore replaces.
    auth.require_writable()?;
    let new = body.parse()?;
    let email = new.email.trim().to_string();
    if !crate::http::plausible_email(&email) {
        return Err(ApiError::invalid(format!(
            "{:?} is not an email address",
            crate::exports::clip(&new.email)
        )));
    }
    let name = new.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "a name must be 1 to {MAX_NAME} characters, on one line"
        )));
    }
    let password_hash = new_password_hash(&new.password).await?;
    let account_id = auth.account.id;
    let taken = {
        let email = email.clone();
        app.control
            .read(move |c| {
                c.query_row("SELECT count(*) FROM identities WHERE email = ?1", [&email], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(control::db_err)
            })
            .await?
    };
    let already = format!("{email} already has a sign-in: use that one, or another email.");
    if taken > 0 {
        return Err(ApiError::conflict(already));
    }
    // The person among the shop's users, where tickets are assigned: the user with
    // this email if the shop has one (someone on the staff list without a sign-in),
    // else a new one.
    let data = app.shop_data(&auth.account.account.slug).await?;
    let now = crate::shopdata::time_text(app.clock.now());
    let user_id = {
        let (email, name, role) = (email.clone(), name.clone(), new.role);
        data.db
            .write(move |c| {
                let existing = c
                    .query_row(
                        "SELECT id FROM users WHERE email = ?1 COLLATE NOCASE ORDER BY id LIMIT 1",
                        [&email],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()?;
                if let Some(id) = existing {
                    return Ok(id);
                }
                c.execute(
                    "INSERT INTO users (name, email, role, permissions, active, created_at, updated_at)
                     VALUES (?1, ?2, ?3, '[]', 1, ?4, ?4)",
                    params![name, email, role.as_str(), now],
                )?;
                Ok(c.last_insert_rowid())
            })
            .await?
    };
    let now = control::now_text();
    let member = app
        .control
        .write(move |c| {
            let inserted = c.execute(
                "INSERT INTO identities (account_id, user_id, email, name, password_hash, role, active, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7) ON CONFLICT (email) DO NOTHING",
                params![account_id, user_id, email, name, password_hash, new.role.as_str(), now],
            );
            // Someone took the email between the check and here.
            if inserted.map_err(control::db_err)? == 0 {
                return Err(ApiError::conflict(already));
            }
            member(c, account_id, c.last_insert_rowid())
                .map_err(control::db_err)?
                .ok_or_else(|| ApiError::not_found("the new sign-in"))
        })
        .await?;
    // A reused staff row (someone listed without a sign-in) takes the role given here.
    staff_list_follows(&app, &auth).await;
    Ok((StatusCode::CREATED, axum::Json(member)))
}
