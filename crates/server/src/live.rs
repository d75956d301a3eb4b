//! The live shop database of one account (`accounts/{slug}/live.db`): its schema.
//!
//! Timestamps are UTC, stored as RFC 3339 text (`2026-11-30T09:00:00.000000Z`), which
//! sorts and compares as time and is what the API returns. Amounts are integer cents.
//! Payments keep only the card brand and last four digits.

/// Schema migrations of `live.db`, in order; never edit a shipped one, add another.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE shops (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT,
    phone TEXT,
    email TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER REFERENCES shops(id),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'technician', 'front_desk')),
    permissions TEXT NOT NULL DEFAULT '[]',
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    address TEXT,
    city TEXT,
    postal_code TEXT,
    notes TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX customers_email ON customers (email);
CREATE INDEX customers_shop ON customers (shop_id);
CREATE TABLE tickets (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    device_type TEXT,
    device_make TEXT NOT NULL,
    device_model TEXT NOT NULL,
    serial_number TEXT,
    problem TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'New',
    estimate_cents INTEGER,
    technician_id INTEGER REFERENCES users(id),
    completed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX tickets_customer ON tickets (customer_id);
CREATE INDEX tickets_status ON tickets (status);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE TABLE ticket_notes (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    author_id INTEGER REFERENCES users(id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ticket_notes_ticket ON ticket_notes (ticket_id);
CREATE TABLE communications (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    ticket_id INTEGER REFERENCES tickets(id) ON DELETE SET NULL,
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'call')),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX communications_customer ON communications (customer_id);
CREATE TABLE inventory (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    stock INTEGER NOT NULL DEFAULT 0,
    reorder_level INTEGER NOT NULL DEFAULT 0,
    cost_cents INTEGER,
    price_cents INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (shop_id, sku)
);
CREATE TABLE invoices (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    ticket_id INTEGER REFERENCES tickets(id) ON DELETE SET NULL,
    number TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'draft',
    subtotal_cents INTEGER,
    tax_cents INTEGER,
    total_cents INTEGER,
    issued_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX invoices_customer ON invoices (customer_id);
CREATE INDEX invoices_ticket ON invoices (ticket_id);
CREATE TABLE invoice_lines (
    id INTEGER PRIMARY KEY,
    invoice_id INTEGER NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('part', 'labor')),
    description TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    inventory_id INTEGER REFERENCES inventory(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id);
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    invoice_id INTEGER NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    method TEXT NOT NULL,
    card_brand TEXT,
    card_last4 TEXT CHECK (card_last4 IS NULL OR (length(card_last4) = 4 AND card_last4 NOT GLOB '*[^0-9]*')),
    amount_cents INTEGER NOT NULL,
    paid_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id);
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    customer_id INTEGER REFERENCES customers(id) ON DELETE SET NULL,
    invoice_id INTEGER REFERENCES invoices(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    payment_method TEXT NOT NULL,
    card_brand TEXT,
    card_last4 TEXT CHECK (card_last4 IS NULL OR (length(card_last4) = 4 AND card_last4 NOT GLOB '*[^0-9]*')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX attachments_ticket ON attachments (ticket_id);
CREATE INDEX attachments_sha256 ON attachments (sha256);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#,
    // Exports nest a ticket's messages, and data-subject requests find a customer's
    // sales: without these, both scan the whole table for every record.
    r#"
CREATE INDEX communications_ticket ON communications (ticket_id);
CREATE INDEX transactions_customer ON transactions (customer_id);
CREATE INDEX transactions_invoice ON transactions (invoice_id);
"#,
    // Ids are never given twice: without AUTOINCREMENT, SQLite hands the id of a
    // deleted newest row to the next one, and the audit log's `/payments/1274` would
    // then name two payments. Each table is rebuilt as SQLite's ALTER TABLE guide
    // says (foreign keys are off while migrations run, see `db::migrate`), its rows
    // and indexes unchanged.
    r#"
CREATE TABLE new_shops (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    address TEXT,
    phone TEXT,
    email TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_shops SELECT * FROM shops;
DROP TABLE shops;
ALTER TABLE new_shops RENAME TO shops;
CREATE TABLE new_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id INTEGER REFERENCES shops(id),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'technician', 'front_desk')),
    permissions TEXT NOT NULL DEFAULT '[]',
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_users SELECT * FROM users;
DROP TABLE users;
ALTER TABLE new_users RENAME TO users;
CREATE TABLE new_customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    address TEXT,
    city TEXT,
    postal_code TEXT,
    notes TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_customers SELECT * FROM customers;
DROP TABLE customers;
ALTER TABLE new_customers RENAME TO customers;
CREATE INDEX customers_email ON customers (email);
CREATE INDEX customers_shop ON customers (shop_id);
CREATE TABLE new_tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    device_type TEXT,
    device_make TEXT NOT NULL,
    device_model TEXT NOT NULL,
    serial_number TEXT,
    problem TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'New',
    estimate_cents INTEGER,
    technician_id INTEGER REFERENCES users(id),
    completed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_tickets SELECT * FROM tickets;
DROP TABLE tickets;
ALTER TABLE new_tickets RENAME TO tickets;
CREATE INDEX tickets_customer ON tickets (customer_id);
CREATE INDEX tickets_status ON tickets (status);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE TABLE new_ticket_notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    author_id INTEGER REFERENCES users(id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_ticket_notes SELECT * FROM ticket_notes;
DROP TABLE ticket_notes;
ALTER TABLE new_ticket_notes RENAME TO ticket_notes;
CREATE INDEX ticket_notes_ticket ON ticket_notes (ticket_id);
CREATE TABLE new_communications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    ticket_id INTEGER REFERENCES tickets(id) ON DELETE SET NULL,
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'call')),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_communications SELECT * FROM communications;
DROP TABLE communications;
ALTER TABLE new_communications RENAME TO communications;
CREATE INDEX communications_customer ON communications (customer_id);
CREATE INDEX communications_ticket ON communications (ticket_id);
CREATE TABLE new_inventory (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    stock INTEGER NOT NULL DEFAULT 0,
    reorder_level INTEGER NOT NULL DEFAULT 0,
    cost_cents INTEGER,
    price_cents INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (shop_id, sku)
);
INSERT INTO new_inventory SELECT * FROM inventory;
DROP TABLE inventory;
ALTER TABLE new_inventory RENAME TO inventory;
CREATE TABLE new_invoices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    ticket_id INTEGER REFERENCES tickets(id) ON DELETE SET NULL,
    number TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'draft',
    subtotal_cents INTEGER,
    tax_cents INTEGER,
    total_cents INTEGER,
    issued_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_invoices SELECT * FROM invoices;
DROP TABLE invoices;
ALTER TABLE new_invoices RENAME TO invoices;
CREATE INDEX invoices_customer ON invoices (customer_id);
CREATE INDEX invoices_ticket ON invoices (ticket_id);
CREATE TABLE new_invoice_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_id INTEGER NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('part', 'labor')),
    description TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    inventory_id INTEGER REFERENCES inventory(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_invoice_lines SELECT * FROM invoice_lines;
DROP TABLE invoice_lines;
ALTER TABLE new_invoice_lines RENAME TO invoice_lines;
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id);
CREATE TABLE new_payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    invoice_id INTEGER NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    method TEXT NOT NULL,
    card_brand TEXT,
    card_last4 TEXT CHECK (card_last4 IS NULL OR (length(card_last4) = 4 AND card_last4 NOT GLOB '*[^0-9]*')),
    amount_cents INTEGER NOT NULL,
    paid_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_payments SELECT * FROM payments;
DROP TABLE payments;
ALTER TABLE new_payments RENAME TO payments;
CREATE INDEX payments_invoice ON payments (invoice_id);
CREATE TABLE new_transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shop_id INTEGER NOT NULL REFERENCES shops(id),
    customer_id INTEGER REFERENCES customers(id) ON DELETE SET NULL,
    invoice_id INTEGER REFERENCES invoices(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    payment_method TEXT NOT NULL,
    card_brand TEXT,
    card_last4 TEXT CHECK (card_last4 IS NULL OR (length(card_last4) = 4 AND card_last4 NOT GLOB '*[^0-9]*')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_transactions SELECT * FROM transactions;
DROP TABLE transactions;
ALTER TABLE new_transactions RENAME TO transactions;
CREATE INDEX transactions_customer ON transactions (customer_id);
CREATE INDEX transactions_invoice ON transactions (invoice_id);
CREATE TABLE new_attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO new_attachments SELECT * FROM attachments;
DROP TABLE attachments;
ALTER TABLE new_attachments RENAME TO attachments;
CREATE INDEX attachments_ticket ON attachments (ticket_id);
CREATE INDEX attachments_sha256 ON attachments (sha256);
"#,
];

/// Tables of the shop's data, in an order that respects foreign keys when filling.
pub const TABLES: &[&str] = &[
    "shops",
    "users",
    "customers",
    "tickets",
    "ticket_notes",
    "communications",
    "inventory",
    "invoices",
    "invoice_lines",
    "payments",
    "transactions",
    "attachments",
    "settings",
];

/// Makes `restored` (a backup's database, migrated) count its ids on from the highest
/// `live` ever gave, table by table, so a restore to production does not give a record
/// made after the backup's time the id of another: the audit log names records by id.
pub fn count_ids_on_from(restored: &rusqlite::Connection, live: &rusqlite::Connection) -> rusqlite::Result<()> {
    for table in TABLES.iter().filter(|t| **t != "settings") {
        let highest: i64 = live.query_row(
            &format!(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0), \
                        coalesce((SELECT max(id) FROM {table}), 0))"
            ),
            [table],
            |r| r.get(0),
        )?;
        let updated = restored.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
            rusqlite::params![table, highest],
        )?;
        if updated == 0 {
            restored.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
                rusqlite::params![table, highest],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    const T: &str = "2026-11-30T09:00:00.000000Z";

    /// Every column and reference of each table, to compare a schema before and after.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        for table in TABLES {
            let mut cols = conn
                .prepare(&format!(
                    "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || coalesce(dflt_value, '') || ' ' || pk \
                     FROM pragma_table_info('{table}') ORDER BY cid"
                ))
                .unwrap();
            out.extend(
                cols.query_map([], |r| r.get::<_, String>(0))
                    .unwrap()
                    .map(|c| format!("{table}: {}", c.unwrap())),
            );
            let mut refs = conn
                .prepare(&format!(
                    "SELECT \"from\" || ' -> ' || \"table\" || '.' || \"to\" || ' ' || on_delete FROM pragma_foreign_key_list('{table}')"
                ))
                .unwrap();
            out.extend(
                refs.query_map([], |r| r.get::<_, String>(0))
                    .unwrap()
                    .map(|c| format!("{table}: {}", c.unwrap())),
            );
        }
        let mut indexes = conn
            .prepare("SELECT tbl_name || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_schema WHERE type = 'index' ORDER BY name")
            .unwrap();
        out.extend(
            indexes
                .query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(|r| r.unwrap()),
        );
        out.sort();
        out
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    fn add_payment(conn: &Connection) -> i64 {
        conn.execute(
            "INSERT INTO payments (invoice_id, method, amount_cents, paid_at, created_at, updated_at) VALUES (1, 'cash', 500, ?1, ?1, ?1)",
            [T],
        )
        .unwrap();
        conn.last_insert_rowid()
    }

    #[test]
    fn ids_are_never_given_twice_and_the_rebuild_keeps_every_row_reference_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open_connection(&dir.path().join("live.db")).unwrap();
        // A shop as the schema before AUTOINCREMENT left it.
        crate::db::migrate(&mut conn, &MIGRATIONS[..2]).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO shops VALUES (1, 'Fix-It', NULL, NULL, NULL, '{T}', '{T}');
             INSERT INTO users VALUES (1, 1, 'Ana', 'ana@example.com', 'technician', '[]', 1, '{T}', '{T}');
             INSERT INTO customers VALUES (1, 1, 'Bo', 'Lind', 'bo@example.com', NULL, NULL, NULL, NULL, NULL, '{T}', '{T}');
             INSERT INTO tickets VALUES (1, 1, 1, 'phone', 'Acme', 'A1', NULL, 'cracked', 'New', 9000, 1, NULL, '{T}', '{T}');
             INSERT INTO ticket_notes VALUES (1, 1, 1, 'glass ordered', '{T}', '{T}');
             INSERT INTO communications VALUES (1, 1, 1, 'sms', 'out', 'ready', '{T}', '{T}');
             INSERT INTO inventory VALUES (1, 1, 'GL-1', 'glass', 3, 1, 1000, 2500, '{T}', '{T}');
             INSERT INTO invoices VALUES (1, 1, 1, 1, 'INV-1', 'paid', 2500, 0, 2500, '{T}', '{T}', '{T}');
             INSERT INTO invoice_lines VALUES (1, 1, 'part', 'glass', 1, 2500, 1, '{T}', '{T}');
             INSERT INTO transactions VALUES (1, 1, 1, 1, 'sale', 2500, 'card', 'visa', '4242', '{T}', '{T}');
             INSERT INTO attachments VALUES (1, 1, 'a.jpg', 'image/jpeg', 3, 'abc', '{T}', '{T}');"
        ))
        .unwrap();
        assert_eq!(add_payment(&conn), 1);
        let before = shape(&conn);
        let rows_before: Vec<i64> = TABLES.iter().map(|t| count(&conn, t)).collect();
        let notes_before: String = conn
            .query_row("SELECT group_concat(body) FROM ticket_notes", [], |r| r.get(0))
            .unwrap();

        crate::db::migrate(&mut conn, MIGRATIONS).unwrap();

        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap() as usize;
        assert_eq!(version, MIGRATIONS.len());
        assert_eq!(shape(&conn), before, "same columns, references and indexes");
        let rows_after: Vec<i64> = TABLES.iter().map(|t| count(&conn, t)).collect();
        assert_eq!(rows_after, rows_before, "every row kept");
        let notes: String = conn
            .query_row("SELECT group_concat(body) FROM ticket_notes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(notes, notes_before);
        let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert!(enforced, "foreign keys are enforced again after migrating");
        assert_eq!(count(&conn, "pragma_foreign_key_check"), 0);

        // The newest payment deleted: the next one gets a new id, not its id.
        assert_eq!(add_payment(&conn), 2);
        conn.execute("DELETE FROM payments WHERE id = 2", []).unwrap();
        assert_eq!(add_payment(&conn), 3, "a deleted payment's id is not given again");
        for table in ["customers", "tickets", "ticket_notes", "invoices", "users"] {
            let seq: Option<i64> = conn
                .query_row("SELECT seq FROM sqlite_sequence WHERE name = ?1", [table], |r| r.get(0))
                .unwrap();
            assert_eq!(seq, Some(1), "{table} counts on from its rows");
        }

        // The references still act as before the rebuild.
        conn.execute("DELETE FROM tickets WHERE id = 1", []).unwrap();
        assert_eq!(count(&conn, "ticket_notes"), 0, "notes go with their ticket");
        assert_eq!(count(&conn, "attachments"), 0);
        let ticket: Option<i64> = conn
            .query_row("SELECT ticket_id FROM invoices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ticket, None, "an invoice outlives its ticket");
        let err = conn
            .execute(
                "INSERT INTO tickets (shop_id, customer_id, device_make, device_model, problem, created_at, updated_at) \
                 VALUES (1, 99, 'a', 'b', 'c', ?1, ?1)",
                [T],
            )
            .unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    }

    #[test]
    fn a_migration_that_would_break_references_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open_connection(&dir.path().join("t.db")).unwrap();
        let steps = [
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id));
             INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1);",
            "DELETE FROM parent;",
        ];
        let err = crate::db::migrate(&mut conn, &steps).unwrap_err();
        assert!(err.to_string().contains("would break 1 references"), "{err}");
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 1, "the first step stands, the second did not run");
        assert_eq!(count(&conn, "parent"), 1);
        let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
        assert!(enforced);
    }
}
