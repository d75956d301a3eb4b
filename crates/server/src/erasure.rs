//! Erasing a data subject: finding a customer by email, deleting them and everything
//! attached to them, and the deletion ledger that keeps them deleted when a backup brings
//! them back. The HTTP side (requests, audit, who may ask) is in `compliance`; restores
//! and sandboxes use the ledger and the deletion from here.
//!
//! The ledger holds no personal data: a customer id, an HMAC of the email under a server
//! key (`keys/ledger.key`, outside every backup), who asked and when.

use std::collections::{BTreeMap, HashMap};

use aws_lc_rs::hmac;
use rusqlite::Connection;
use serde_json::Value;

use crate::exports::pairs;

/// How an email is compared: trimmed, lower case (Unicode's lower case, not only
/// ASCII's, so `JÖRG@x.de` is `jörg@x.de`).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The ledger's keyed hash of an email (HMAC-SHA-256, hex).
pub fn email_hmac(key: &[u8; 32], email: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hex::encode(hmac::sign(&k, normalize_email(email).as_bytes()).as_ref())
}

/// The deletion ledger of an account: the customers who must stay deleted, by id and
/// creation time, or by the keyed hash of their email.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Customer id → the creation times of the customers deleted under it (`None` for
    /// rows written before the ledger kept them: those match the id alone).
    ids: HashMap<i64, Vec<Option<String>>>,
    /// Email hash → when the newest deletion under it was made.
    hashes: HashMap<String, String>,
    /// The id of the newest ledger row read: a job that applied this ledger compares it
    /// with [`newest_entry`] before it finishes, to catch a deletion made meanwhile.
    pub newest: i64,
}

impl Ledger {
    /// Reads an account's ledger from the control plane.
    pub fn load(control: &crate::db::Db, account_id: i64) -> Result<Ledger, String> {
        control
            .with_writer(|c| {
                let mut stmt = c.prepare(
                    "SELECT id, customer_id, customer_created_at, email_hmac, deleted_at FROM deletion_ledger WHERE account_id = ?1",
                )?;
                let rows = stmt.query_map([account_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?;
                let mut ledger = Ledger::default();
                for row in rows {
                    let (entry, id, born, hash, deleted_at) = row?;
                    ledger.newest = ledger.newest.max(entry);
                    ledger.ids.entry(id).or_default().push(born);
                    if let Some(hash) = hash {
                        let at = ledger.hashes.entry(hash).or_default();
                        if at.is_empty() || later(&deleted_at, at) {
                            *at = deleted_at;
                        }
                    }
                }
                Ok(ledger)
            })
            .map_err(|e: rusqlite::Error| format!("cannot read the deletion ledger: {e}"))
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.hashes.is_empty()
    }

    /// Whether a customer (as a backup holds them: id, creation time, email) was deleted
    /// on request. The same id and creation time is the deleted customer; the same email
    /// is too, unless the customer was created after the deletion (the person came back
    /// and asked to be a customer again).
    pub fn erases(&self, key: &[u8; 32], id: i64, created_at: &str, email: Option<&str>) -> bool {
        let by_id = self
            .ids
            .get(&id)
            .is_some_and(|born| born.iter().any(|b| b.as_deref().is_none_or(|b| b == created_at)));
        by_id
            || email.is_some_and(|e| {
                self.hashes
                    .get(&email_hmac(key, e))
                    .is_some_and(|deleted_at| !later(created_at, deleted_at))
            })
    }
}

/// Whether timestamp `a` is after `b`, both RFC 3339 (`Z` or an offset); an unreadable
/// one is never later, so a doubtful customer stays deleted.
fn later(a: &str, b: &str) -> bool {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a > b)
}

/// The id of an account's newest ledger row (0 when it has none). A job that copies
/// customers (a sandbox, an export) reads it before it starts and again, on the control
/// plane's writer, as it records its end: a deletion in between means the copy may hold
/// a deleted customer.
pub fn newest_entry(control: &Connection, account_id: i64) -> rusqlite::Result<i64> {
    control.query_row(
        "SELECT coalesce(max(id), 0) FROM deletion_ledger WHERE account_id = ?1",
        [account_id],
        |r| r.get(0),
    )
}

/// `jane.doe@smith-family.net` → `j***@s***.net`: enough to recognise a request next
/// to its date, not to recover the address. The domain is masked too: a family's or a
/// one-person business's own domain names the person as surely as the address does.
pub fn mask(email: &str) -> String {
    let email = normalize_email(email);
    let first = |s: &str| s.chars().next().unwrap_or('*');
    match email.split_once('@') {
        Some((local, domain)) => match domain.rsplit_once('.') {
            // A top-level domain is kept only when it is one of the short common kind
            // (`.com`, `.uk`); a long one may itself be a family's name.
            Some((name, tld)) if (2..=6).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_alphabetic()) => {
                format!("{}***@{}***.{tld}", first(local), first(name))
            }
            Some((name, _)) => format!("{}***@{}***", first(local), first(name)),
            None => format!("{}***@***", first(local)),
        },
        None => "***".into(),
    }
}

/// The customers whose email is this one, compared as [`normalize_email`] does (the
/// same comparison the ledger's hash makes, so a request finds exactly the customers a
/// restore would delete again). Emails are stored as they were typed, so every
/// customer's is read and compared here: SQLite's `NOCASE` folds only ASCII and trims
/// nothing.
pub fn customers_with_email(conn: &Connection, email: &str) -> rusqlite::Result<Vec<i64>> {
    Ok(customers_born(conn, email)?.into_iter().map(|(id, _)| id).collect())
}

/// The customers with this email as (id, creation time), as the ledger records them.
pub fn customers_born(conn: &Connection, email: &str) -> rusqlite::Result<Vec<(i64, String)>> {
    let wanted = normalize_email(email);
    let mut stmt = conn.prepare("SELECT id, email, created_at FROM customers WHERE email IS NOT NULL ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
    })?;
    let mut found = Vec::new();
    for row in rows {
        let (id, stored, born) = row?;
        if normalize_email(&stored) == wanted {
            found.push((id, born));
        }
    }
    Ok(found)
}

/// Everything tied to the customers with this email, one JSON object per customer
/// record: profile, tickets (with notes and attachment metadata), communications,
/// invoices (with lines and payments: method, card brand and last four only) and sales.
/// "Tied to" is what [`delete_listed`] deletes: besides the rows that name the customer,
/// the communications and invoices of their tickets and the sales of those invoices.
pub fn subject_records(conn: &Connection, email: &str) -> rusqlite::Result<Vec<Value>> {
    let array = |inner: String, from: &str, alias: &str| {
        format!("json((SELECT json_group_array({inner} ORDER BY {alias}.id) FROM {from}))")
    };
    let obj = |table: &str, alias: &str| -> rusqlite::Result<String> {
        Ok(format!("json_object({})", pairs(conn, table, alias)?))
    };
    let tickets = "(SELECT id FROM tickets WHERE customer_id = t.id)";
    let invoices = format!("(SELECT id FROM invoices WHERE customer_id = t.id OR ticket_id IN {tickets})");
    let ticket = format!(
        "json_object({}, 'notes', {}, 'attachments', {})",
        pairs(conn, "tickets", "k")?,
        array(
            obj("ticket_notes", "n")?,
            "ticket_notes n WHERE n.ticket_id = k.id",
            "n"
        ),
        array(obj("attachments", "a")?, "attachments a WHERE a.ticket_id = k.id", "a"),
    );
    let invoice = format!(
        "json_object({}, 'lines', {}, 'payments', {})",
        pairs(conn, "invoices", "i")?,
        array(
            obj("invoice_lines", "l")?,
            "invoice_lines l WHERE l.invoice_id = i.id",
            "l"
        ),
        array(obj("payments", "p")?, "payments p WHERE p.invoice_id = i.id", "p"),
    );
    let sql = format!(
        "SELECT json_object({}, 'tickets', {}, 'communications', {}, 'invoices', {}, 'transactions', {})
         FROM customers t WHERE t.id = ?1",
        pairs(conn, "customers", "t")?,
        array(ticket, "tickets k WHERE k.customer_id = t.id", "k"),
        array(
            obj("communications", "m")?,
            &format!("communications m WHERE m.customer_id = t.id OR m.ticket_id IN {tickets}"),
            "m"
        ),
        array(invoice, &format!("invoices i WHERE i.id IN {invoices}"), "i"),
        array(
            obj("transactions", "x")?,
            &format!("transactions x WHERE x.customer_id = t.id OR x.invoice_id IN {invoices}"),
            "x"
        ),
    );
    let mut stmt = conn.prepare(&sql)?;
    customers_with_email(conn, email)?
        .into_iter()
        .map(|id| {
            let text = stmt.query_row([id], |r| r.get::<_, String>(0))?;
            Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
        })
        .collect()
}

/// What a deletion removed, and the attachment files it may free.
pub struct Deletion {
    pub customer_ids: Vec<i64>,
    pub removed: BTreeMap<String, u64>,
    /// SHA-256 of the attachments deleted (their files go when nothing else uses them).
    pub attachment_shas: Vec<String>,
}

/// Makes (or empties) the temporary tables [`delete_listed`] reads, on a connection
/// inside a transaction.
pub fn begin_listing(tx: &Connection) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS gone_customers (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS gone_tickets (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS gone_invoices (id INTEGER PRIMARY KEY);
         DELETE FROM temp.gone_customers; DELETE FROM temp.gone_tickets; DELETE FROM temp.gone_invoices;",
    )
}

/// Lists a customer in `temp.gone_customers` for [`delete_listed`].
pub fn list_customer(tx: &Connection, id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO temp.gone_customers (id) VALUES (?1)")?
        .execute([id])?;
    Ok(())
}

/// Deletes every customer with this email and everything attached to them, in one
/// transaction (the connection has `secure_delete` on, so freed pages are zeroed).
pub fn delete_subject(conn: &mut Connection, email: &str) -> rusqlite::Result<Deletion> {
    let tx = conn.transaction()?;
    begin_listing(&tx)?;
    for id in customers_with_email(&tx, email)? {
        list_customer(&tx, id)?;
    }
    let deletion = delete_listed(&tx)?;
    tx.commit()?;
    Ok(deletion)
}

/// Deletes the customers listed in `temp.gone_customers` (filled by the caller, inside
/// its transaction) and everything attached to them. Used by a CCPA deletion and when a
/// restore brings back a customer the ledger says is deleted.
pub fn delete_listed(tx: &Connection) -> rusqlite::Result<Deletion> {
    tx.execute_batch(
        "INSERT OR IGNORE INTO temp.gone_tickets SELECT id FROM tickets WHERE customer_id IN (SELECT id FROM temp.gone_customers);
         INSERT OR IGNORE INTO temp.gone_invoices SELECT id FROM invoices
             WHERE customer_id IN (SELECT id FROM temp.gone_customers) OR ticket_id IN (SELECT id FROM temp.gone_tickets);",
    )?;
    let customer_ids: Vec<i64> = {
        let mut stmt = tx.prepare("SELECT id FROM temp.gone_customers ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let attachment_shas: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT DISTINCT sha256 FROM attachments WHERE ticket_id IN (SELECT id FROM temp.gone_tickets)")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let steps: [(&str, &str); 9] = [
        (
            "payments",
            "DELETE FROM payments WHERE invoice_id IN (SELECT id FROM temp.gone_invoices)",
        ),
        (
            "invoice_lines",
            "DELETE FROM invoice_lines WHERE invoice_id IN (SELECT id FROM temp.gone_invoices)",
        ),
        (
            "transactions",
            "DELETE FROM transactions WHERE customer_id IN (SELECT id FROM temp.gone_customers) OR invoice_id IN (SELECT id FROM temp.gone_invoices)",
        ),
        (
            "invoices",
            "DELETE FROM invoices WHERE id IN (SELECT id FROM temp.gone_invoices)",
        ),
        (
            "communications",
            "DELETE FROM communications WHERE customer_id IN (SELECT id FROM temp.gone_customers) OR ticket_id IN (SELECT id FROM temp.gone_tickets)",
        ),
        (
            "ticket_notes",
            "DELETE FROM ticket_notes WHERE ticket_id IN (SELECT id FROM temp.gone_tickets)",
        ),
        (
            "attachments",
            "DELETE FROM attachments WHERE ticket_id IN (SELECT id FROM temp.gone_tickets)",
        ),
        (
            "tickets",
            "DELETE FROM tickets WHERE id IN (SELECT id FROM temp.gone_tickets)",
        ),
        (
            "customers",
            "DELETE FROM customers WHERE id IN (SELECT id FROM temp.gone_customers)",
        ),
    ];
    let mut removed = BTreeMap::new();
    for (table, sql) in steps {
        let n = tx.execute(sql, [])?;
        removed.insert(table.to_string(), n as u64);
    }
    tx.execute_batch(
        "DELETE FROM temp.gone_customers; DELETE FROM temp.gone_tickets; DELETE FROM temp.gone_invoices;",
    )?;
    Ok(Deletion {
        customer_ids,
        removed,
        attachment_shas,
    })
}

/// Moves every committed change into the database file and empties the WAL, so deleted
/// rows leave no copy in the WAL. Readers can hold it up; it is retried for a while.
pub fn checkpoint_truncate(conn: &Connection) -> bool {
    for _ in 0..50 {
        let busy = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0))
            .unwrap_or(1);
        if busy == 0 {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// Removes attachment files no row refers to any more.
pub fn remove_unused_files(conn: &Connection, root: &std::path::Path, shas: &[String]) -> u64 {
    let mut removed = 0;
    for sha in shas {
        let used = conn
            .query_row("SELECT count(*) FROM attachments WHERE sha256 = ?1", [sha], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(1);
        if used == 0 && std::fs::remove_file(crate::attachments::content_path(root, sha)).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_hashes_keep_no_address() {
        assert_eq!(mask(" Jane.Doe@Smith-Family.net "), "j***@s***.net");
        assert_eq!(mask("jane@mail.smith.co.uk"), "j***@m***.uk");
        assert_eq!(mask("jane@localhost"), "j***@***");
        assert_eq!(mask("jane@x.smithfamily"), "j***@x***");
        assert_eq!(mask("nonsense"), "***");
        let k = [7u8; 32];
        assert_eq!(email_hmac(&k, "Jane@Example.com"), email_hmac(&k, "jane@example.com "));
        assert_ne!(
            email_hmac(&k, "jane@example.com"),
            email_hmac(&[8u8; 32], "jane@example.com")
        );
        assert_eq!(email_hmac(&k, "a@b.c").len(), 64);
    }

    /// A shop with the real schema: Jörg (customers 1 and 2, his address typed two
    /// ways), Ann (3). Jörg's ticket 10 has an invoice made out to Ann (20), whose sale
    /// names no customer (30), and a message logged under Ann (40).
    fn shop() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut conn, crate::live::MIGRATIONS).unwrap();
        conn.execute_batch(
            "INSERT INTO shops VALUES (1, 'Shop', NULL, NULL, NULL, 'now', 'now');
             INSERT INTO customers (id, shop_id, first_name, last_name, email, created_at, updated_at) VALUES
                 (1, 1, 'Jörg', 'A', '  JÖRG@Example.de ', 'now', 'now'),
                 (2, 1, 'Jörg', 'A', 'jörg@example.de', 'now', 'now'),
                 (3, 1, 'Ann', 'B', 'ann@example.de', 'now', 'now'),
                 (4, 1, 'Jorg', 'C', 'jorg@example.de', 'now', 'now');
             INSERT INTO tickets (id, shop_id, customer_id, device_make, device_model, problem, created_at, updated_at) VALUES
                 (10, 1, 1, 'Apple', 'iPhone', 'screen', 'now', 'now'),
                 (11, 1, 3, 'Apple', 'iPad', 'battery', 'now', 'now');
             INSERT INTO ticket_notes (ticket_id, body, created_at, updated_at) VALUES (10, 'n', 'now', 'now'), (11, 'm', 'now', 'now');
             INSERT INTO invoices (id, shop_id, customer_id, ticket_id, number, created_at, updated_at) VALUES
                 (20, 1, 3, 10, 'I-20', 'now', 'now'), (21, 1, 3, 11, 'I-21', 'now', 'now');
             INSERT INTO invoice_lines (invoice_id, kind, description, quantity, unit_price_cents, created_at, updated_at) VALUES
                 (20, 'labor', 'fix', 1, 100, 'now', 'now'), (21, 'labor', 'fix', 1, 100, 'now', 'now');
             INSERT INTO payments (invoice_id, method, amount_cents, paid_at, created_at, updated_at) VALUES
                 (20, 'cash', 100, 'now', 'now', 'now');
             INSERT INTO transactions (id, shop_id, customer_id, invoice_id, kind, total_cents, payment_method, created_at, updated_at) VALUES
                 (30, 1, NULL, 20, 'sale', 100, 'cash', 'now', 'now'), (31, 1, 2, NULL, 'sale', 5, 'cash', 'now', 'now'),
                 (32, 1, 3, 21, 'sale', 100, 'cash', 'now', 'now');
             INSERT INTO communications (id, customer_id, ticket_id, channel, direction, body, created_at, updated_at) VALUES
                 (40, 3, 10, 'sms', 'out', 'ready', 'now', 'now'), (41, 2, NULL, 'sms', 'out', 'hi', 'now', 'now');",
        )
        .unwrap();
        conn
    }

    #[test]
    fn the_ledger_keeps_the_deleted_customer_deleted_and_no_one_else() {
        let dir = tempfile::tempdir().unwrap();
        let control = crate::control::open_for_test(dir.path());
        let key = [7u8; 32];
        let gone = email_hmac(&key, "ann@example.de");
        control.with_writer(|c| {
            // Ann (customer 5, created in March) deleted on request in June; customer 9
            // deleted before the ledger kept creation times.
            c.execute(
                "INSERT INTO deletion_ledger (account_id, customer_id, customer_created_at, email_hmac, deleted_at, deleted_by, request_id)
                 VALUES (1, 5, '2026-03-01T10:00:00Z', ?1, '2026-06-01T12:00:00+00:00', 'owner', 1),
                        (1, 9, NULL, NULL, '2026-02-01T12:00:00+00:00', 'owner', 1)",
                [&gone],
            )
            .unwrap();
        });
        let ledger = Ledger::load(&control, 1).unwrap();
        assert_eq!(ledger.newest, 2);
        // Ann as any backup holds her, even under another address.
        assert!(ledger.erases(&key, 5, "2026-03-01T10:00:00Z", Some("other@example.de")));
        assert!(ledger.erases(&key, 5, "2026-03-01T10:00:00Z", None));
        // Another record of hers made before the deletion, and one made of her address
        // typed otherwise.
        assert!(ledger.erases(&key, 7, "2026-04-01T09:00:00Z", Some(" ANN@Example.de")));
        // A later customer given her freed id is someone else.
        assert!(!ledger.erases(&key, 5, "2026-07-01T08:00:00Z", Some("bob@example.de")));
        // Ann coming back as a customer after the deletion is not deleted again.
        assert!(!ledger.erases(&key, 11, "2026-06-02T08:00:00Z", Some("ann@example.de")));
        // Old rows match by id alone; a customer unrelated to either is kept.
        assert!(ledger.erases(&key, 9, "2026-07-01T08:00:00Z", None));
        assert!(!ledger.erases(&key, 6, "2026-03-01T10:00:00Z", Some("bob@example.de")));
    }

    #[test]
    fn an_email_is_found_however_it_was_typed_and_only_that_email() {
        let conn = shop();
        assert_eq!(customers_with_email(&conn, "jörg@EXAMPLE.de").unwrap(), [1, 2]);
        assert_eq!(customers_with_email(&conn, " JÖRG@example.de").unwrap(), [1, 2]);
        assert_eq!(customers_with_email(&conn, "jorg@example.de").unwrap(), [4]);
        assert!(customers_with_email(&conn, "nobody@example.de").unwrap().is_empty());
    }

    /// Counts the rows under each key of a subject export's records, as the deletion
    /// names its tables.
    fn exported(records: &[Value]) -> BTreeMap<String, u64> {
        let mut n = BTreeMap::new();
        let mut add = |k: &str, v: &Value| {
            *n.entry(k.to_string()).or_insert(0) += v.as_array().map_or(1, |a| a.len()) as u64;
        };
        for r in records {
            add("customers", &Value::Null);
            add("tickets", &r["tickets"]);
            add("communications", &r["communications"]);
            add("invoices", &r["invoices"]);
            add("transactions", &r["transactions"]);
            for t in r["tickets"].as_array().unwrap() {
                add("ticket_notes", &t["notes"]);
                add("attachments", &t["attachments"]);
            }
            for i in r["invoices"].as_array().unwrap() {
                add("invoice_lines", &i["lines"]);
                add("payments", &i["payments"]);
            }
        }
        n
    }

    #[test]
    fn the_subject_export_holds_every_row_the_deletion_removes() {
        let mut conn = shop();
        let records = subject_records(&conn, "Jörg@example.de").unwrap();
        let ids: Vec<i64> = records.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [1, 2]);
        let exported = exported(&records);
        // The sale on the invoice of Jörg's ticket names no customer; it is his all the same.
        assert_eq!(records[0]["transactions"][0]["id"], 30);
        let deletion = delete_subject(&mut conn, "jörg@example.de").unwrap();
        assert_eq!(deletion.customer_ids, [1, 2]);
        for (table, n) in &deletion.removed {
            assert_eq!(exported.get(table).copied().unwrap_or(0), *n, "{table}");
        }
        assert_eq!(deletion.removed["transactions"], 2);
        assert!(subject_records(&conn, "jörg@example.de").unwrap().is_empty());
        // Ann keeps her own ticket, invoice and sale; the other Jorg is untouched.
        let left = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(left("SELECT count(*) FROM customers"), 2);
        assert_eq!(left("SELECT count(*) FROM invoices WHERE id = 21"), 1);
        assert_eq!(left("SELECT count(*) FROM transactions WHERE id = 32"), 1);
        assert_eq!(left("SELECT count(*) FROM ticket_notes"), 1);
    }
}
