//! The audit log: append-only and hash-chained.
//!
//! Each row's hash is a keyed BLAKE3 (key in `keys/audit.key`, outside the database) of
//! its fields and the previous row's hash, so editing, deleting, reordering or inserting
//! a row breaks the chain, and someone with the database alone cannot forge a new one.
//! The count of rows and the last hash are kept in `audit_head`, outside the log's table
//! and updated in the same transaction, so removing rows from the end is caught too.
//! Triggers refuse UPDATE and DELETE on the table in normal operation.

use std::path::Path;

use rusqlite::{Connection, params};

pub use repairops_api::AuditEntry;

/// The columns of an entry, in table order.
pub const ENTRY_COLUMNS: &str = "at, account, user, event_type, action, resource, ip, result, detail";

/// Reads an entry from a row whose columns from `first` on are [`ENTRY_COLUMNS`].
pub fn entry_from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        at: r.get(first)?,
        account: r.get(first + 1)?,
        user: r.get(first + 2)?,
        event_type: r.get(first + 3)?,
        action: r.get(first + 4)?,
        resource: r.get(first + 5)?,
        ip: r.get(first + 6)?,
        result: r.get(first + 7)?,
        detail: r.get(first + 8)?,
    })
}

/// The key that makes the chain unforgeable without it.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl AuditKey {
    /// Loads `keys/audit.key` under `data`, creating it on first use.
    pub fn load_or_create(data: &Path) -> std::io::Result<AuditKey> {
        let path = data.join("keys").join("audit.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut k = [0u8; 32];
            if hex::decode_to_slice(text.trim(), &mut k).is_ok() {
                return Ok(AuditKey(k));
            }
            return Err(std::io::Error::other(format!(
                "{} is not an audit key (64 hex digits)",
                path.display()
            )));
        }
        let mut k = [0u8; 32];
        repairops_vault::crypto::fill_random(&mut k);
        crate::tls::write_private(&path, hex::encode(k).as_bytes())?;
        Ok(AuditKey(k))
    }

    /// Loads an existing key (for `audit verify`).
    pub fn load(data: &Path) -> std::io::Result<AuditKey> {
        let path = data.join("keys").join("audit.key");
        let text = std::fs::read_to_string(&path)?;
        let mut k = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut k)
            .map_err(|_| std::io::Error::other(format!("{} is not an audit key", path.display())))?;
        Ok(AuditKey(k))
    }

    fn row_hash(&self, seq: i64, e: &AuditEntry, prev: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(&seq.to_le_bytes());
        for field in [
            &e.at,
            &e.account,
            &e.user,
            &e.event_type,
            &e.action,
            &e.resource,
            &e.ip,
            &e.result,
            &e.detail,
        ] {
            h.update(&(field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
        h.update(prev.as_bytes());
        h.finalize().to_hex().to_string()
    }

    /// Authenticates the head (row count and last hash), so rows removed from the end
    /// cannot be hidden by rewriting the head to an earlier row's values.
    fn head_mac(&self, count: i64, hash: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"audit head v1");
        h.update(&count.to_le_bytes());
        h.update(hash.as_bytes());
        h.finalize().to_hex().to_string()
    }
}

/// Appends an entry; returns its sequence number.
pub fn append(conn: &mut Connection, key: &AuditKey, entry: &AuditEntry) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (count, prev, mac): (i64, String, String) =
        tx.query_row("SELECT count, hash, mac FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let seq = count + 1;
    let hash = key.row_hash(seq, entry, &prev);
    // A head changed behind the server's back stays unsigned, so the entries written
    // after it cannot make a shortened or emptied log pass `verify`.
    let head_intact = key.head_mac(count, &prev) == mac;
    if !head_intact {
        tracing::error!(
            rows = count,
            "the audit log's head was changed outside the server; `audit verify` reports it"
        );
    }
    let new_mac = if head_intact {
        key.head_mac(seq, &hash)
    } else {
        String::new()
    };
    tx.execute(
        "INSERT INTO audit_log (seq, at, account, user, event_type, action, resource, ip, result, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            seq,
            entry.at,
            entry.account,
            entry.user,
            entry.event_type,
            entry.action,
            entry.resource,
            entry.ip,
            entry.result,
            entry.detail,
            prev,
            hash
        ],
    )?;
    tx.execute(
        "UPDATE audit_head SET count = ?1, hash = ?2, mac = ?3 WHERE id = 1",
        params![seq, hash, new_mac],
    )?;
    tx.commit()?;
    Ok(seq)
}

/// Signs the head of a log that has no rows yet (a new `server.db`), so that an emptied
/// log with its head set back to the start is told apart from one never written.
pub fn sign_empty_head(conn: &Connection, key: &AuditKey) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE audit_head SET mac = ?1 WHERE id = 1 AND count = 0 AND hash = '' AND mac = ''
         AND NOT EXISTS (SELECT 1 FROM audit_log)",
        [key.head_mac(0, "")],
    )?;
    Ok(())
}

/// Where the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at row {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// Walks the whole log; returns the number of rows when the chain is intact.
pub fn verify(conn: &Connection, key: &AuditKey) -> Result<i64, VerifyError> {
    let (head_count, head_hash, head_mac): (i64, String, String) =
        conn.query_row("SELECT count, hash, mac FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if key.head_mac(head_count, &head_hash) != head_mac {
        return Err(VerifyError::Broken(ChainBreak {
            seq: head_count,
            reason: if head_count == 0 {
                "the log's head was set back to an empty log: its rows were removed (a log made before \
                 2026-12-02 and never written to also reads so)"
                    .into()
            } else {
                "the log's head (row count and last hash) was changed: rows at the end were removed or added".into()
            },
        }));
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, {ENTRY_COLUMNS}, prev_hash, hash FROM audit_log ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    let mut expected = 1i64;
    let mut prev = String::new();
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let entry = entry_from_row(r, 1)?;
        let stored_prev: String = r.get(10)?;
        let stored_hash: String = r.get(11)?;
        let brk = |reason: &str| {
            VerifyError::Broken(ChainBreak {
                seq: expected,
                reason: reason.into(),
            })
        };
        if seq != expected {
            return Err(brk(&format!(
                "expected row {expected} but found row {seq} (rows were deleted or renumbered)"
            )));
        }
        if stored_prev != prev {
            return Err(brk(
                "it does not follow the row before it (a row was deleted, inserted or moved)",
            ));
        }
        if key.row_hash(seq, &entry, &stored_prev) != stored_hash {
            return Err(brk("its contents do not match its hash (the row was edited)"));
        }
        prev = stored_hash;
        expected += 1;
    }
    let count = expected - 1;
    if count != head_count {
        return Err(VerifyError::Broken(ChainBreak {
            seq: count + 1,
            reason: format!("{head_count} rows were written but {count} remain (rows were removed from the end)"),
        }));
    }
    if prev != head_hash {
        return Err(VerifyError::Broken(ChainBreak {
            seq: count,
            reason: "the last row is not the last one written".into(),
        }));
    }
    Ok(count)
}

/// Why verification did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Broken(ChainBreak),
    #[error("cannot read the audit log: {0}")]
    Db(#[from] rusqlite::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Connection, AuditKey) {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn, crate::control::MIGRATIONS).unwrap();
        let key = AuditKey([7u8; 32]);
        sign_empty_head(&conn, &key).unwrap();
        assert_eq!(verify(&conn, &key).unwrap(), 0, "a new log is intact");
        for i in 0..5 {
            let e = AuditEntry {
                at: format!("2026-11-30T10:0{i}:00Z"),
                account: "demo".into(),
                user: "owner@demo.repairops.test".into(),
                event_type: "data_change".into(),
                action: "POST /api/v1/tickets".into(),
                resource: format!("/api/v1/tickets/{i}"),
                ip: "127.0.0.1".into(),
                result: "success".into(),
                detail: "201".into(),
            };
            append(&mut conn, &key, &e).unwrap();
        }
        (conn, key)
    }

    fn tamper(conn: &Connection, sql: &str) {
        conn.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap();
        conn.execute_batch(sql).unwrap();
    }

    fn broken_at(conn: &Connection, key: &AuditKey) -> i64 {
        match verify(conn, key) {
            Err(VerifyError::Broken(b)) => b.seq,
            other => panic!("tampering not detected: {other:?}"),
        }
    }

    #[test]
    fn intact_chain_verifies() {
        let (conn, key) = setup();
        assert_eq!(verify(&conn, &key).unwrap(), 5);
        assert!(
            verify(&conn, &AuditKey([8u8; 32])).is_err(),
            "another key must not verify"
        );
    }

    #[test]
    fn triggers_refuse_changes() {
        let (conn, _) = setup();
        assert!(
            conn.execute("UPDATE audit_log SET user = 'x' WHERE seq = 1", [])
                .is_err()
        );
        assert!(conn.execute("DELETE FROM audit_log WHERE seq = 5", []).is_err());
    }

    #[test]
    fn edited_row_is_caught() {
        let (conn, key) = setup();
        tamper(&conn, "UPDATE audit_log SET result = 'failure' WHERE seq = 3");
        assert_eq!(broken_at(&conn, &key), 3);
    }

    #[test]
    fn deleted_row_is_caught() {
        let (conn, key) = setup();
        tamper(&conn, "DELETE FROM audit_log WHERE seq = 2");
        assert_eq!(broken_at(&conn, &key), 2);
    }

    #[test]
    fn deleted_last_row_is_caught() {
        let (conn, key) = setup();
        tamper(&conn, "DELETE FROM audit_log WHERE seq = 5");
        assert_eq!(broken_at(&conn, &key), 5);
    }

    #[test]
    fn removed_last_rows_with_a_rewritten_head_are_caught() {
        let (conn, key) = setup();
        tamper(
            &conn,
            "DELETE FROM audit_log WHERE seq >= 4;
             UPDATE audit_head SET count = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3);",
        );
        assert_eq!(broken_at(&conn, &key), 3);
    }

    #[test]
    fn an_emptied_log_with_its_head_set_back_is_caught_and_stays_caught_after_new_rows() {
        let (mut conn, key) = setup();
        tamper(
            &conn,
            "DELETE FROM audit_log; UPDATE audit_head SET count = 0, hash = '', mac = '';",
        );
        assert_eq!(broken_at(&conn, &key), 0);
        // The server goes on writing: its new rows do not make the log pass again.
        let e = AuditEntry {
            at: "2026-11-30T11:00:00Z".into(),
            account: "demo".into(),
            user: "owner@demo.repairops.test".into(),
            event_type: "login".into(),
            action: "login".into(),
            resource: "/api/v1/auth/login".into(),
            ip: "127.0.0.1".into(),
            result: "success".into(),
            detail: String::new(),
        };
        append(&mut conn, &key, &e).unwrap();
        append(&mut conn, &key, &e).unwrap();
        assert!(
            verify(&conn, &key).is_err(),
            "the rows written after it must not hide the emptying"
        );
        // Signing again is only for a log never written: it does not take here.
        sign_empty_head(&conn, &key).unwrap();
        assert!(verify(&conn, &key).is_err());
    }

    #[test]
    fn rows_cut_from_the_end_stay_caught_after_new_rows() {
        let (mut conn, key) = setup();
        tamper(
            &conn,
            "DELETE FROM audit_log WHERE seq >= 4;
             UPDATE audit_head SET count = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3);",
        );
        let e = entry_like(&conn);
        append(&mut conn, &key, &e).unwrap();
        assert!(verify(&conn, &key).is_err());
    }

    /// A copy of the first row's entry.
    fn entry_like(conn: &Connection) -> AuditEntry {
        conn.query_row(
            &format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq = 1"),
            [],
            |r| entry_from_row(r, 0),
        )
        .unwrap()
    }

    #[test]
    fn reordered_rows_are_caught() {
        let (conn, key) = setup();
        tamper(
            &conn,
            "UPDATE audit_log SET seq = 100 WHERE seq = 2;
             UPDATE audit_log SET seq = 2 WHERE seq = 3;
             UPDATE audit_log SET seq = 3 WHERE seq = 100;",
        );
        assert_eq!(broken_at(&conn, &key), 2);
    }

    #[test]
    fn inserted_row_is_caught() {
        let (conn, key) = setup();
        tamper(
            &conn,
            "INSERT INTO audit_log SELECT 6, at, account, user, event_type, action, resource, ip, result, detail, hash, hash
             FROM audit_log WHERE seq = 5",
        );
        assert_eq!(broken_at(&conn, &key), 6);
    }
}
