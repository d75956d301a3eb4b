//! The shop's staff list (`users` in `live.db`) kept in step with the account's sign-ins
//! (`identities` in the control plane). Sign-ins decide who may do what and live outside
//! every backup; the staff list is shop data that tickets, notes and exports name. A
//! sign-in's `user_id` is its row on the staff list: after a restore to a backup from
//! before someone joined, in a sandbox, or after a change of role, the two are put back
//! in step here.

use std::path::Path;

use repairops_api::Role;
use rusqlite::{Connection, OptionalExtension, params};

use crate::app::AppState;
use crate::error::ApiError;

/// A sign-in as the staff list should show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
}

impl StaffMember {
    /// The person behind a request (signed in, so on).
    pub fn signed_in(identity: &crate::control::Identity) -> StaffMember {
        StaffMember {
            user_id: identity.user_id,
            email: identity.email.clone(),
            name: identity.name.clone(),
            role: identity.role,
            active: true,
        }
    }
}

/// The account's sign-ins, as staff.
pub fn sign_ins_of(c: &Connection, account_id: i64) -> rusqlite::Result<Vec<StaffMember>> {
    let mut stmt = c.prepare("SELECT user_id, email, name, role, active FROM identities WHERE account_id = ?1")?;
    let rows = stmt.query_map([account_id], |r| {
        let role: String = r.get(3)?;
        Ok(StaffMember {
            user_id: r.get(0)?,
            email: r.get(1)?,
            name: r.get(2)?,
            role: Role::parse(&role).unwrap_or(Role::FrontDesk),
            active: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// What `keep` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// Rows added or brought in step.
    pub changed: u64,
    /// Sign-ins whose id is someone else's row here (another email): left alone.
    pub conflicts: u64,
}

/// Puts each sign-in on the staff list: a missing row is added with the id the sign-in
/// names; a row that is theirs (same id, same email whatever its case) takes the role
/// and on/off the sign-in has. A row with that id and another email is someone else's
/// (ids are reused after a deletion) and is left alone, counted and logged: the sign-in
/// then names no one here, and what it writes carries no author rather than another's.
pub fn keep(c: &Connection, staff: &[StaffMember], now: &str) -> rusqlite::Result<Kept> {
    let mut kept = Kept::default();
    for m in staff {
        let changed = c.execute(
            "INSERT INTO users (id, name, email, role, permissions, active, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, '[]', ?5, ?6, ?6)
             ON CONFLICT (id) DO UPDATE SET role = excluded.role, active = excluded.active,
                 updated_at = excluded.updated_at
             WHERE lower(users.email) = lower(excluded.email)
                 AND (users.role != excluded.role OR users.active != excluded.active)",
            params![m.user_id, m.name, m.email, m.role.as_str(), m.active, now],
        )?;
        kept.changed += changed as u64;
        if changed == 0 && !is_theirs(c, m)? {
            kept.conflicts += 1;
            tracing::warn!(
                user_id = m.user_id,
                email = %m.email,
                "a sign-in names a staff row that is someone else's; left alone"
            );
        }
    }
    Ok(kept)
}

/// The id a record this person writes names them by: they are put on the staff list of
/// this database first (a sandbox made before they joined, a restore from before). If
/// their id there is someone else's row, `None`: the record carries no author rather
/// than another person's.
pub fn author_id(c: &Connection, me: &StaffMember, now: &str) -> rusqlite::Result<Option<i64>> {
    let kept = keep(c, std::slice::from_ref(me), now)?;
    Ok((kept.conflicts == 0).then_some(me.user_id))
}

/// Whether row `user_id` of the staff list is this person's (same email).
fn is_theirs(c: &Connection, m: &StaffMember) -> rusqlite::Result<bool> {
    let same: Option<bool> = c
        .query_row(
            "SELECT lower(email) = lower(?2) FROM users WHERE id = ?1",
            params![m.user_id, m.email],
            |r| r.get(0),
        )
        .optional()?;
    Ok(same == Some(true))
}

/// Keeps the account's sign-ins on the staff list of a database file made from a
/// backup (a restore's, a sandbox's), in one transaction.
pub fn keep_in_file(app: &AppState, account_id: i64, db: &Path) -> Result<Kept, String> {
    let staff = app
        .control
        .with_writer(|c| sign_ins_of(c, account_id))
        .map_err(|e| format!("cannot read the account's sign-ins: {e}"))?;
    let now = crate::shopdata::time_text(app.clock.now());
    let mut conn = crate::db::open_connection(db).map_err(|e| e.to_string())?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let kept = keep(&tx, &staff, &now).map_err(|e| format!("cannot put the sign-ins on the staff list: {e}"))?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(kept)
}

/// Keeps the account's sign-ins on its live staff list, as they are now (read again
/// here, so two changes made at once leave the last one, whatever order they finish).
pub async fn keep_live(app: &AppState, account_id: i64, slug: &str) -> Result<Kept, ApiError> {
    let staff = app
        .control
        .read(move |c| sign_ins_of(c, account_id).map_err(crate::control::db_err))
        .await?;
    let data = app.shop_data(slug).await?;
    let now = crate::shopdata::time_text(app.clock.now());
    data.db
        .write(move |c| {
            let tx = c.transaction()?;
            let kept = keep(&tx, &staff, &now)?;
            tx.commit()?;
            Ok(kept)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_missing_from_a_staff_list_are_put_back_and_others_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open_connection(&dir.path().join("live.db")).unwrap();
        crate::db::migrate(&mut conn, crate::live::MIGRATIONS).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, name, email, role, active, created_at, updated_at) VALUES
                 (1, 'Olive', 'owner@x.test', 'owner', 1, 'then', 'then'),
                 (3, 'Theo', 'tech@x.test', 'technician', 1, 'then', 'then'),
                 (4, 'Someone Else', 'else@x.test', 'manager', 1, 'then', 'then');",
        )
        .unwrap();
        let member = |user_id, email: &str, role, active| StaffMember {
            user_id,
            email: email.into(),
            name: format!("Name of {email}"),
            role,
            active,
        };
        let staff = [
            member(1, "owner@x.test", Role::Owner, true),
            // Made front desk and switched off since.
            member(3, "TECH@x.test", Role::FrontDesk, false),
            // Joined since.
            member(9, "sam@x.test", Role::Technician, true),
            // Id 4 is someone else's here.
            member(4, "other@x.test", Role::Technician, false),
        ];
        assert_eq!(
            keep(&conn, &staff, "now").unwrap(),
            Kept {
                changed: 2,
                conflicts: 1
            }
        );
        let mut stmt = conn
            .prepare("SELECT id, name, email, role, active, updated_at FROM users ORDER BY id")
            .unwrap();
        let rows: Vec<(i64, String, String, String, bool, String)> = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let row = |id, name: &str, email: &str, role: &str, active, at: &str| {
            (
                id,
                name.to_string(),
                email.to_string(),
                role.to_string(),
                active,
                at.to_string(),
            )
        };
        assert_eq!(
            rows,
            [
                row(1, "Olive", "owner@x.test", "owner", true, "then"),
                row(3, "Theo", "tech@x.test", "front_desk", false, "now"),
                row(4, "Someone Else", "else@x.test", "manager", true, "then"),
                row(9, "Name of sam@x.test", "sam@x.test", "technician", true, "now"),
            ]
        );
        // An author is named by their own row only.
        assert_eq!(author_id(&conn, &staff[2], "now").unwrap(), Some(9));
        assert_eq!(author_id(&conn, &staff[3], "now").unwrap(), None);
        // Again (a restore tried twice): nothing more to do, the conflict still told.
        assert_eq!(
            keep(&conn, &staff, "later").unwrap(),
            Kept {
                changed: 0,
                conflicts: 1
            }
        );
    }
}
