//! CSV exports: one row per record, the joined columns the product page names first
//! (a ticket's customer name, technician and total cost, …), then every column of the
//! table, with a header row, any one-byte delimiter, and cells a spreadsheet would run as
//! a formula defused.
//!
//! Rows are read from SQLite on the calling thread and formatted (and written) on a
//! second one: reading is about three quarters of the work and formatting the rest, so
//! on two cores the export takes about as long as the reading alone. They pass between
//! the two in batches that come back to be filled again, so memory holds a few batches
//! whatever the size.

use std::io::Write;

use rusqlite::fallible_streaming_iterator::FallibleStreamingIterator;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};

use crate::exports::{Cell, Cells, Dataset, ExportError, Plan, behind, table_columns};

/// Integer cents as a decimal amount (`1234` → `12.34`), NULL stays NULL. `expr` is
/// evaluated several times: pass a column or an aggregate (computed once a group), not a
/// subquery.
///
/// The sign is written apart and each part made positive after the division, so the
/// smallest integer (whose `abs` SQLite refuses as an overflow) prints too.
fn money(expr: &str) -> String {
    format!(
        "CASE WHEN ({expr}) IS NULL THEN NULL ELSE printf('%s%d.%02d', CASE WHEN ({expr}) < 0 THEN '-' ELSE '' END, abs(({expr}) / 100), abs(({expr}) % 100)) END"
    )
}

/// `sum(column)` that cannot fail: SQLite's `sum` stops the whole query with "integer
/// overflow" when the total passes the 64-bit range, and one such row (stored before
/// amounts were bounded, or restored from an old backup) would make every export of the
/// dataset fail. `total` adds in floating point, exact below 2^53 cents (90 trillion
/// dollars), and the cast then holds an absurd total at the 64-bit bound. No rows, or
/// only empty ones, stay NULL as with `sum`.
pub fn sum_within_range(column: &str) -> String {
    format!("CASE WHEN count({column}) = 0 THEN NULL ELSE CAST(total({column}) AS INTEGER) END")
}

/// Where one of the columns that lead a CSV row comes from.
enum Lead {
    /// An expression of the main query.
    Sql(String),
    /// An aggregate `value` over the rows of `from` grouped by `key` (the record's id),
    /// read as its own query ordered by `key` beside the main query, the way a merge
    /// join reads two sorted inputs; a record with no rows there gets `absent`. Joined
    /// in SQL, the aggregate made SQLite build a temporary index and probe it once a
    /// record: an eighth of the tickets export's time (`docs/benchmarks.md`).
    Beside {
        key: &'static str,
        value: String,
        from: &'static str,
        absent: &'static str,
    },
}

impl Lead {
    /// A [`Lead::Beside`]'s query: one row per record, with at most one per id. A
    /// filtered export's reads only the records picked (`filter` on the main table).
    fn beside_sql(key: &str, value: &str, from: &str, main: &str, filter: Option<&str>) -> String {
        let within = filter
            .map(|f| format!(" AND {key} IN (SELECT t.id FROM {main} t{f})"))
            .unwrap_or_default();
        format!("SELECT {key}, {value} FROM {from} WHERE {key} IS NOT NULL{within} GROUP BY {key} ORDER BY {key}")
    }
}

/// The main table with its joins, and the columns that lead a CSV row.
fn shape(dataset: Dataset) -> (&'static str, Vec<(&'static str, Lead)>) {
    let sql = |e: &str| Lead::Sql(e.to_string());
    let name = || sql("trim(c.first_name || ' ' || c.last_name)");
    match dataset {
        Dataset::Tickets => (
            "tickets t JOIN customers c ON c.id = t.customer_id LEFT JOIN users u ON u.id = t.technician_id",
            vec![
                ("ticket_id", sql("t.id")),
                ("customer_name", name()),
                ("status", sql("t.status")),
                ("created_at", sql("t.created_at")),
                ("updated_at", sql("t.updated_at")),
                ("technician", sql("u.name")),
                (
                    "total_cost",
                    Lead::Beside {
                        key: "ticket_id",
                        value: money(&sum_within_range("total_cents")),
                        from: "invoices",
                        absent: "",
                    },
                ),
            ],
        ),
        Dataset::Customers => (
            "customers t",
            vec![
                ("customer_id", sql("t.id")),
                ("name", sql("trim(t.first_name || ' ' || t.last_name)")),
                ("phone", sql("t.phone")),
                ("email", sql("t.email")),
                ("address", sql("t.address")),
                (
                    "lifetime_spend",
                    Lead::Beside {
                        key: "i.customer_id",
                        value: money(&sum_within_range("p.amount_cents")),
                        from: "invoices i JOIN payments p ON p.invoice_id = i.id",
                        absent: "0.00",
                    },
                ),
                (
                    "last_repair_date",
                    Lead::Beside {
                        key: "customer_id",
                        value: "max(created_at)".into(),
                        from: "tickets",
                        absent: "",
                    },
                ),
            ],
        ),
        Dataset::Invoices => (
            "invoices t JOIN customers c ON c.id = t.customer_id",
            vec![
                ("invoice_id", sql("t.id")),
                ("ticket_id", sql("t.ticket_id")),
                ("amount", Lead::Sql(money("t.total_cents"))),
                ("date", sql("coalesce(t.issued_at, t.created_at)")),
                ("status", sql("t.status")),
                (
                    "payment_method",
                    Lead::Beside {
                        key: "invoice_id",
                        value: "group_concat(method, ' + ' ORDER BY method)".into(),
                        from: "(SELECT DISTINCT invoice_id, method FROM payments)",
                        absent: "",
                    },
                ),
                ("customer_name", name()),
            ],
        ),
        Dataset::Inventory => ("inventory t", Vec::new()),
        Dataset::Users => ("users t", Vec::new()),
        Dataset::Transactions => ("transactions t", Vec::new()),
    }
}

/// The CSV query: the leading columns (those read beside it stand in as `NULL`), then
/// every column of the table not already there (the table's `id` is the leading `*_id`
/// where one is named), filtered by `filter` (`Plan::filter_sql`). The first column is
/// the table's id.
fn query(
    conn: &Connection,
    plan: &Plan,
    front: &[(&str, Lead)],
    from: &str,
    filter: &str,
) -> Result<String, ExportError> {
    let mut select: Vec<String> = front
        .iter()
        .map(|(n, lead)| match lead {
            Lead::Sql(e) => format!("{e} AS \"{n}\""),
            Lead::Beside { .. } => format!("NULL AS \"{n}\""),
        })
        .collect();
    for col in table_columns(conn, plan.dataset.table())? {
        let shown = front.iter().any(|(n, _)| *n == col) || (col == "id" && !front.is_empty());
        if !shown {
            select.push(format!("t.\"{col}\" AS \"{col}\""));
        }
    }
    Ok(format!(
        "SELECT {} FROM {from}{filter} ORDER BY t.id",
        select.join(", ")
    ))
}

/// Makes a cell safe to open in a spreadsheet: text that a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a leading `'`. A
/// negative amount (`-12.50`, a refund's total) is a number to a spreadsheet, not a
/// formula, and stays as it is.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_negative_amount(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// `-` then digits, with at most one `.` between digits: `-3`, `-12.50`.
fn is_negative_amount(cell: &str) -> bool {
    let Some(digits) = cell.strip_prefix('-') else {
        return false;
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction)
}

/// Writes the dataset as CSV into `sink`; `progress` is told the records read so far,
/// now and then. Returns the number of records.
pub(crate) fn write(
    conn: &Connection,
    plan: &Plan,
    sink: &mut (dyn Write + Send),
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    let (from, front) = shape(plan.dataset);
    // Every filter is a bound argument: with none, the export is not filtered.
    let (filter, args) = plan.filter_sql();
    let filtered = !args.is_empty();
    let mut stmt = conn.prepare(&query(conn, plan, &front, from, &filter)?)?;
    let mut beside_stmts = Vec::new();
    for (i, (_, lead)) in front.iter().enumerate() {
        if let Lead::Beside {
            key,
            value,
            from,
            absent,
        } = lead
        {
            let main = plan.dataset.table();
            let sql = Lead::beside_sql(key, value, from, main, filtered.then_some(filter.as_str()));
            beside_stmts.push((i, *absent, conn.prepare(&sql)?));
        }
    }
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let columns = names.len();
    let delimiter = plan.delimiter;
    behind(
        move |batches: std::sync::mpsc::Receiver<Cells>, spent| {
            let mut w = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .buffer_capacity(256 * 1024)
                .from_writer(sink);
            w.write_record(&names)?;
            let mut number = itoa::Buffer::new();
            for mut batch in batches {
                for row in batch.cells.chunks(columns) {
                    for cell in row {
                        write_cell(&mut w, cell, &batch.bytes, &mut number)?;
                    }
                    w.write_record(None::<&[u8]>)?;
                }
                batch.clear();
                // The reading thread may have finished; then the batch is dropped.
                let _ = spent.send(batch);
            }
            w.flush()?;
            Ok(())
        },
        |handoff| {
            let mut beside = Vec::with_capacity(beside_stmts.len());
            for (column, absent, stmt) in &mut beside_stmts {
                // A filtered export's queries beside take the same arguments as its own.
                let args: &[Value] = if filtered { &args } else { &[] };
                beside.push(Beside {
                    column: *column,
                    absent,
                    rows: stmt.query(params_from_iter(args.iter()))?,
                    started: false,
                });
            }
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            let mut batch = Cells::default();
            let mut n = 0u64;
            while let Some(r) = rows.next()? {
                let id = if beside.is_empty() { 0 } else { r.get::<_, i64>(0)? };
                let mut next_beside = beside.iter_mut().peekable();
                for i in 0..columns {
                    match next_beside.next_if(|b| b.column == i) {
                        Some(b) => match b.find(id)? {
                            Some(v) => batch.push(v),
                            None => batch.push(ValueRef::Text(b.absent.as_bytes())),
                        },
                        None => batch.push(r.get_ref(i)?),
                    }
                }
                n += 1;
                if batch.cells.len() >= ROWS * columns || batch.bytes.len() >= Cells::BYTES {
                    let next = handoff.reuse().unwrap_or_default();
                    handoff.send(std::mem::replace(&mut batch, next))?;
                }
                if n.is_multiple_of(4096) {
                    progress(n);
                }
            }
            handoff.send(batch)?;
            progress(n);
            Ok(n)
        },
    )
}

/// Rows a batch holds before it is handed on (fewer if their text is long).
const ROWS: usize = 256;

fn write_cell<W: Write>(
    w: &mut csv::Writer<W>,
    cell: &Cell,
    bytes: &[u8],
    number: &mut itoa::Buffer,
) -> Result<(), csv::Error> {
    match *cell {
        Cell::Null => w.write_field(b""),
        Cell::Integer(v) => w.write_field(number.format(v)),
        Cell::Real(v) => w.write_field(v.to_string()),
        Cell::Text { start, end } => {
            let text = &bytes[start..end];
            match std::str::from_utf8(text) {
                Ok(s) => w.write_field(spreadsheet_safe(s).as_bytes()),
                Err(_) => w.write_field(spreadsheet_safe(&String::from_utf8_lossy(text)).as_bytes()),
            }
        }
        Cell::Blob { start, end } => w.write_field(hex::encode(&bytes[start..end])),
    }
}

/// A [`Lead::Beside`] query being read, positioned at its first row whose id is not
/// below the record last asked for.
struct Beside<'s> {
    column: usize,
    absent: &'static str,
    rows: rusqlite::Rows<'s>,
    started: bool,
}

impl Beside<'_> {
    /// The value for record `id`, if the query has a row for it. Rows of records not
    /// exported (a filter left them out) are passed over; ids must come in ascending
    /// order.
    fn find(&mut self, id: i64) -> rusqlite::Result<Option<ValueRef<'_>>> {
        if !self.started {
            self.rows.advance()?;
            self.started = true;
        }
        while let Some(row) = self.rows.get() {
            // A key that is not an integer belongs to no record: passed over.
            let key = match row.get_ref(0)? {
                ValueRef::Integer(k) => k,
                _ => i64::MIN,
            };
            if key >= id {
                break;
            }
            self.rows.advance()?;
        }
        match self.rows.get() {
            Some(row) if row.get_ref(0)? == ValueRef::Integer(id) => Ok(Some(row.get_ref(1)?)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use repairops_api::{ExportFilters, NewExport};

    use super::*;

    /// A shop on the real schema: Ann's ticket 10 has two invoices (1.00 and 2.50, paid
    /// in cash, then in cash, by card and in cash), her ticket 11 none; Cy's ticket 12
    /// has a draft invoice with no total, and Cy an invoice with no ticket paid by card
    /// and one whose ticket key is not a number; Bo has nothing.
    fn shop() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate(&mut c, crate::live::MIGRATIONS).unwrap();
        // Off, so that invoice 24 can hold a key no foreign key would let in.
        c.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO shops (id, name, created_at, updated_at) VALUES (1, 'Shop', '2026-01-01', '2026-01-01');
             INSERT INTO users (id, shop_id, name, email, role, created_at, updated_at)
                 VALUES (7, 1, 'Sarah', 's@x.test', 'technician', '2026-01-01', '2026-01-01');
             INSERT INTO customers (id, shop_id, first_name, last_name, created_at, updated_at)
                 VALUES (1, 1, 'Ann', 'Lee', '2026-01-01', '2026-01-01'), (2, 1, 'Bo', 'Ng', '2026-01-02T10:00:00Z', '2026-01-02T10:00:00Z'),
                        (3, 1, 'Cy', 'Ito', '2026-01-03T10:00:00Z', '2026-01-03T10:00:00Z');
             INSERT INTO tickets (id, shop_id, customer_id, device_make, device_model, problem, status, technician_id, created_at, updated_at)
                 VALUES (10, 1, 1, 'Apple', 'iPhone', 'cracked', 'Completed', 7, '2026-02-01', '2026-02-01'),
                        (11, 1, 1, 'Apple', 'iPad', 'battery', 'New', NULL, '2026-03-01', '2026-03-01'),
                        (12, 1, 3, 'Dell', 'XPS', 'keys', 'Completed', 7, '2026-02-15', '2026-02-15');
             INSERT INTO invoices (id, shop_id, customer_id, ticket_id, number, total_cents, created_at, updated_at)
                 VALUES (20, 1, 1, 10, 'INV-20', 100, '2026-02-02', '2026-02-02'),
                        (21, 1, 1, 10, 'INV-21', 250, '2026-02-03', '2026-02-03'),
                        (22, 1, 3, NULL, 'INV-22', 999, '2026-02-04', '2026-02-04'),
                        (23, 1, 3, 12, 'INV-23', NULL, '2026-02-16', '2026-02-16'),
                        -- A key that is not an integer (imported data) belongs to no ticket.
                        (24, 1, 3, 'ten', 'INV-24', 700, '2026-02-17', '2026-02-17');
             INSERT INTO payments (invoice_id, method, amount_cents, paid_at, created_at, updated_at)
                 VALUES (20, 'cash', 100, '2026-02-02', '2026-02-02', '2026-02-02'),
                        (21, 'cash', 50, '2026-02-03', '2026-02-03', '2026-02-03'),
                        (21, 'card', 200, '2026-02-03', '2026-02-03', '2026-02-03'),
                        (21, 'cash', 10, '2026-02-03', '2026-02-03', '2026-02-03'),
                        (22, 'card', 999, '2026-02-04', '2026-02-04', '2026-02-04');",
        )
        .unwrap();
        c
    }

    /// The export's `column` by the value of its first column.
    fn export(c: &Connection, dataset: &str, filters: Option<ExportFilters>, column: &str) -> HashMap<i64, String> {
        let req = NewExport {
            dataset: dataset.into(),
            format: "csv".into(),
            delimiter: None,
            filters,
        };
        let plan = Plan::new(&req, chrono_tz::UTC).unwrap();
        let mut out = Vec::new();
        write(c, &plan, &mut out, &mut |_| {}).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let at = reader.headers().unwrap().iter().position(|h| h == column).unwrap();
        reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].parse().unwrap(), r[at].to_string())
            })
            .collect()
    }

    fn status(s: &str) -> Option<ExportFilters> {
        Some(ExportFilters {
            status: Some(s.into()),
            ..Default::default()
        })
    }

    fn expect(pairs: &[(i64, &str)]) -> HashMap<i64, String> {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn columns_read_beside_the_rows_match_each_record() {
        let c = shop();
        assert_eq!(
            export(&c, "tickets", None, "total_cost"),
            expect(&[(10, "3.50"), (11, ""), (12, "")])
        );
        assert_eq!(
            export(&c, "tickets", None, "technician"),
            expect(&[(10, "Sarah"), (11, ""), (12, "Sarah")])
        );
        // Records a filter leaves out are passed over in the query read beside.
        assert_eq!(export(&c, "tickets", status("New"), "total_cost"), expect(&[(11, "")]));
        assert_eq!(
            export(&c, "tickets", status("Completed"), "total_cost"),
            expect(&[(10, "3.50"), (12, "")])
        );
        assert_eq!(
            export(&c, "customers", None, "lifetime_spend"),
            expect(&[(1, "3.60"), (2, "0.00"), (3, "9.99")])
        );
        let since_bo = Some(ExportFilters {
            from: Some("2026-01-02".into()),
            ..Default::default()
        });
        assert_eq!(
            export(&c, "customers", since_bo, "lifetime_spend"),
            expect(&[(2, "0.00"), (3, "9.99")])
        );
        assert_eq!(
            export(&c, "customers", None, "last_repair_date"),
            expect(&[(1, "2026-03-01"), (2, ""), (3, "2026-02-15")])
        );
        assert_eq!(
            export(&c, "invoices", None, "payment_method"),
            expect(&[(20, "cash"), (21, "card + cash"), (22, "card"), (23, ""), (24, "")])
        );
    }

    #[test]
    fn amounts_past_the_64_bit_range_do_not_stop_an_export() {
        // Rows stored before amounts were bounded: their sums pass i64::MAX, and one
        // invoice holds i64::MIN, whose `abs` SQLite refuses.
        let c = shop();
        c.execute_batch(&format!(
            "INSERT INTO invoices (id, shop_id, customer_id, ticket_id, number, total_cents, created_at, updated_at)
                 VALUES (30, 1, 2, 11, 'INV-30', {max}, '2026-03-02', '2026-03-02'),
                        (31, 1, 2, 11, 'INV-31', {max}, '2026-03-02', '2026-03-02'),
                        (32, 1, 2, NULL, 'INV-32', {min}, '2026-03-02', '2026-03-02');
             INSERT INTO payments (invoice_id, method, amount_cents, paid_at, created_at, updated_at)
                 VALUES (30, 'cash', {max}, '2026-03-02', '2026-03-02', '2026-03-02'),
                        (31, 'cash', {max}, '2026-03-02', '2026-03-02', '2026-03-02');",
            max = i64::MAX,
            min = i64::MIN
        ))
        .unwrap();
        let held = "92233720368547758.07";
        assert_eq!(export(&c, "tickets", None, "total_cost")[&11], held);
        assert_eq!(export(&c, "tickets", None, "total_cost")[&10], "3.50");
        assert_eq!(export(&c, "customers", None, "lifetime_spend")[&2], held);
        assert_eq!(export(&c, "customers", None, "lifetime_spend")[&1], "3.60");
        let amounts = export(&c, "invoices", None, "amount");
        assert_eq!(amounts[&32], "-92233720368547758.08");
        assert_eq!(amounts[&30], held);
        assert_eq!(amounts[&23], "");
        assert_eq!(
            export(&c, "tickets", None, "total_cost")[&12],
            "",
            "an invoice without a total"
        );
    }

    #[test]
    fn negative_amounts_stay_numbers_and_formulas_starting_with_a_minus_are_defused() {
        for amount in ["-5.00", "-12", "-0.5"] {
            assert_eq!(spreadsheet_safe(amount), amount);
        }
        for formula in [
            "-2+3+cmd|' /C calc'!A0",
            "-",
            "-5.",
            "-.5",
            "-1.2.3",
            "- 5",
            "-5e3",
            "+5.00",
        ] {
            assert_eq!(spreadsheet_safe(formula), format!("'{formula}"), "{formula}");
        }
    }

    #[test]
    fn a_formula_in_text_that_is_not_utf8_is_defused_too() {
        let c = shop();
        // Imported or restored data can hold bytes that are not UTF-8.
        c.execute(
            "UPDATE tickets SET problem = CAST(x'3d636d647c2720ff' AS TEXT) WHERE id = 10",
            [],
        )
        .unwrap();
        assert_eq!(export(&c, "tickets", None, "problem")[&10], "'=cmd|' \u{fffd}");
    }

    #[test]
    fn a_full_disk_stops_the_reading_with_its_own_error() {
        let c = shop();
        c.execute_batch(
            "WITH RECURSIVE k(i) AS (SELECT 100 UNION ALL SELECT i + 1 FROM k WHERE i < 20099)
             INSERT INTO tickets (id, shop_id, customer_id, device_make, device_model, problem, created_at, updated_at)
             SELECT i, 1, 1, 'Apple', 'iPhone', 'cracked', '2026-04-01', '2026-04-01' FROM k;",
        )
        .unwrap();
        let plan = Plan::new(
            &NewExport {
                dataset: "tickets".into(),
                format: "csv".into(),
                delimiter: None,
                filters: None,
            },
            chrono_tz::UTC,
        )
        .unwrap();
        let mut read = 0;
        let err = write(
            &c,
            &plan,
            &mut crate::exports::test_outputs::FillingDisk::with_room(10_000),
            &mut |n| read = n,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no space left on device"), "{err}");
        // Reading stopped within the batches that may wait, not at the end of the table.
        assert!(read < 10_000, "read {read} of 20,003 rows after the output failed");
    }
}
