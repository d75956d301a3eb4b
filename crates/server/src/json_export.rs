//! JSON exports: an array with one object per record holding every column of its row,
//! with its relations nested (a ticket with its customer, technician, notes,
//! communications, invoices with their lines and payments, and attachments).
//!
//! Each relation is one query ordered by the id of the record its rows belong to, read
//! alongside the main query the way a merge join reads two sorted inputs: a record's
//! related rows are the next rows of that query whose key is the record's id. Every
//! table is read once, in order, with no query per record. (SQLite's own `json_object`
//! with a subquery per relation, the first version of this writer, ran at a fifth of
//! the speed on the large demo shop: see `docs/benchmarks.md`.)
//!
//! Three threads share the work. This one reads SQLite and copies the values out, with
//! the steps that put them together ([`Batch`]); a second formats the JSON; a third
//! writes it. Memory holds one row of each query, a few batches and a few chunks of
//! output, whatever the size.

use std::cmp::Ordering;
use std::io::Write;
use std::sync::mpsc::{Receiver, Sender};

use rusqlite::fallible_streaming_iterator::FallibleStreamingIterator;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row, Rows, Statement, params_from_iter};

use crate::exports::{CHUNK, Cell, Cells, Dataset, ExportError, Handoff, Plan, behind, table_columns, write_behind};

/// Values, and bytes of their text, a batch holds before it is handed to the
/// formatting thread. (Batches of a quarter of this size made the large demo shop's
/// tickets 5% slower, four times larger ones 5% slower too.)
const BATCH_CELLS: usize = 16384;
const BATCH_BYTES: usize = 256 * 1024;

/// Columns as JSON keys, rendered once: `{"id":`, `,"ticket_id":`, …
struct Shape {
    keys: Vec<Vec<u8>>,
    /// Where the `id` column is, for relations nested one level further.
    id: Option<usize>,
}

impl Shape {
    fn named(names: &[String]) -> Shape {
        let keys = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut key = vec![if i == 0 { b'{' } else { b',' }];
                // Column names come from the schema; quoting them as JSON cannot fail.
                serde_json::to_writer(&mut key, name).unwrap_or_default();
                key.push(b':');
                key
            })
            .collect();
        Shape {
            keys,
            id: names.iter().position(|n| n == "id"),
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The JSON a dataset's export is built of, besides its values: the shapes of its
/// objects and the fixed pieces between them. Made once, read by both the reading and
/// the formatting thread; [`Step`]s refer to it by index.
struct Layout {
    shapes: Vec<Shape>,
    pieces: Vec<Vec<u8>>,
}

/// Pieces every layout starts with, in this order.
const FIRST: u32 = 0;
const NEXT: u32 = 1;
const CLOSE: u32 = 2;
const NULL: u32 = 3;
const END: u32 = 4;
const COMMA: u32 = 5;
const OPEN_ARRAY: u32 = 6;
/// The array's end: handed on by the reading thread once every record was read, so an
/// export that fails part way never looks like a whole JSON document.
const CLOSE_ARRAY: u32 = 7;

impl Layout {
    fn new() -> Layout {
        Layout {
            shapes: Vec::new(),
            pieces: [&b"\n"[..], b",\n", b"}", b"null", b"]", b",", b"[", b"\n]\n"]
                .map(<[u8]>::to_vec)
                .to_vec(),
        }
    }

    fn shape(&mut self, conn: &Connection, table: &str) -> rusqlite::Result<u32> {
        Ok(self.add_shape(Shape::named(&table_columns(conn, table)?)))
    }

    fn add_shape(&mut self, shape: Shape) -> u32 {
        self.shapes.push(shape);
        (self.shapes.len() - 1) as u32
    }

    /// The piece that opens a nested field: `,"name":` followed by `then`.
    fn field(&mut self, name: &str, then: &str) -> u32 {
        let mut piece = b",".to_vec();
        // Field names are constants of this module; quoting them cannot fail.
        serde_json::to_writer(&mut piece, name).unwrap_or_default();
        piece.push(b':');
        piece.extend_from_slice(then.as_bytes());
        self.pieces.push(piece);
        (self.pieces.len() - 1) as u32
    }
}

/// One step of putting the JSON together, in the order it is written.
#[derive(Clone, Copy)]
enum Step {
    /// A fixed piece of JSON (`Layout::pieces`).
    Piece(u32),
    /// The next values as an object of this shape (`Layout::shapes`), without its
    /// closing brace (nested fields may follow).
    Object(u32),
}

/// What the reading thread hands to the formatting thread: steps and the values they
/// take.
#[derive(Default)]
struct Batch {
    steps: Vec<Step>,
    values: Cells,
}

impl Batch {
    fn clear(&mut self) {
        self.steps.clear();
        self.values.clear();
    }
}

/// The reading thread's end: the batch being filled, handed on once full (in the
/// middle of a record too, so that a record with many rows nested in it, such as a
/// customer with thousands of tickets, is never held whole).
struct Reader<'a> {
    batch: Batch,
    layout: &'a Layout,
    handoff: &'a Handoff<Batch>,
}

impl Reader<'_> {
    fn piece(&mut self, piece: u32) {
        self.batch.steps.push(Step::Piece(piece));
    }

    /// Columns `first..` of `row` as an object of `shape`, without its closing brace.
    fn object(&mut self, shape: u32, row: &Row<'_>, first: usize) -> rusqlite::Result<()> {
        self.batch.steps.push(Step::Object(shape));
        for i in first..first + self.layout.shapes[shape as usize].len() {
            self.batch.values.push(row.get_ref(i)?);
        }
        Ok(())
    }

    fn spill(&mut self) -> std::io::Result<()> {
        let values = &self.batch.values;
        if values.cells.len() >= BATCH_CELLS || values.bytes.len() >= BATCH_BYTES {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> std::io::Result<()> {
        let next = self.handoff.reuse().unwrap_or_default();
        self.handoff.send(std::mem::replace(&mut self.batch, next))
    }
}

/// The formatting thread: turns batches into JSON and hands it to `sink` a chunk at a
/// time.
fn format(
    layout: &Layout,
    batches: Receiver<Batch>,
    spent: Sender<Batch>,
    sink: &mut dyn Write,
) -> Result<(), ExportError> {
    let mut out = Vec::with_capacity(CHUNK + 64 * 1024);
    let mut number = itoa::Buffer::new();
    for mut batch in batches {
        let bytes = &batch.values.bytes;
        let mut values = batch.values.cells.iter();
        for step in &batch.steps {
            match *step {
                Step::Piece(piece) => out.extend_from_slice(&layout.pieces[piece as usize]),
                Step::Object(shape) => {
                    for (key, cell) in layout.shapes[shape as usize].keys.iter().zip(&mut values) {
                        out.extend_from_slice(key);
                        value(cell, bytes, &mut number, &mut out);
                    }
                    if out.len() >= CHUNK {
                        sink.write_all(&out)?;
                        out.clear();
                    }
                }
            }
        }
        batch.clear();
        // The reading thread may have finished; then the batch is dropped.
        let _ = spent.send(batch);
    }
    sink.write_all(&out)?;
    Ok(())
}

/// One SQLite value as JSON: text as a string, a blob as a hex string (as in CSV), a
/// real that is not finite as `null`.
fn value(cell: &Cell, bytes: &[u8], number: &mut itoa::Buffer, out: &mut Vec<u8>) {
    match *cell {
        Cell::Null => out.extend_from_slice(b"null"),
        Cell::Integer(i) => out.extend_from_slice(number.format(i).as_bytes()),
        // serde_json writes a real that is not finite as null; into a Vec it cannot fail.
        Cell::Real(f) => {
            let _ = serde_json::to_writer(&mut *out, &f);
        }
        Cell::Text { start, end } => string(&bytes[start..end], out),
        Cell::Blob { start, end } => {
            out.push(b'"');
            out.extend_from_slice(hex::encode(&bytes[start..end]).as_bytes());
            out.push(b'"');
        }
    }
}

/// Text as a JSON string, bytes that are not UTF-8 replaced. Most text (names,
/// statuses, timestamps) is ASCII with nothing to escape: that is checked in one pass
/// the compiler vectorises and copied as it is; the rest goes through serde_json.
fn string(text: &[u8], out: &mut Vec<u8>) {
    let plain = text.iter().fold(true, |plain, &b| {
        plain & (0x20..0x80).contains(&b) & (b != b'"') & (b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
        return;
    }
    // Writing a string into a Vec cannot fail.
    let _ = match std::str::from_utf8(text) {
        Ok(s) => serde_json::to_writer(&mut *out, s),
        Err(_) => serde_json::to_writer(&mut *out, &String::from_utf8_lossy(text)),
    };
}

/// Rows of another table nested in a record as an array (the piece `opening` is
/// `,"name":[`). The query selects the key columns first (the record's id, or the ids
/// of the chain of records above it), then the table's own columns, ordered by the keys
/// and then by id.
struct Relation {
    name: &'static str,
    opening: u32,
    shape: u32,
    keys: usize,
    sql: String,
    nested: Vec<Relation>,
}

/// What one dataset's JSON is made of.
struct Spec {
    /// The main query: the record's own columns (and computed ones), then joined rows.
    sql: String,
    shape: u32,
    /// Rows joined one-to-one, as objects (or `null` when the join found none): the
    /// piece `,"name":` and the shape.
    joined: Vec<(u32, u32)>,
    relations: Vec<Relation>,
}

fn spec(conn: &Connection, plan: &Plan, filter: &str, filtered: bool, layout: &mut Layout) -> rusqlite::Result<Spec> {
    let main = plan.dataset.as_str();
    // A relation of a filtered export reads only the rows of the records picked.
    let within = |key: &str| {
        if filtered {
            format!(" JOIN {main} t ON t.id = {key}{filter}")
        } else {
            String::new()
        }
    };
    let relation =
        |layout: &mut Layout, name, table: &str, from: &str, keys: &[&str], nested| -> rusqlite::Result<Relation> {
            let keys_sql = keys.join(", ");
            Ok(Relation {
                name,
                opening: layout.field(name, "["),
                shape: layout.shape(conn, table)?,
                keys: keys.len(),
                sql: format!(
                    "SELECT {keys_sql}, x.* FROM {from}{} ORDER BY {keys_sql}, x.id",
                    within(keys[0])
                ),
                nested,
            })
        };
    // An invoice's lines and payments, keyed by the invoice's id, and first by its
    // ticket's when tickets are the records. (Keyed by `i.id` rather than
    // `x.invoice_id`, SQLite reads them in that order through the indexes instead of
    // sorting them.)
    let invoice_parts = |layout: &mut Layout, under_ticket: bool| -> rusqlite::Result<Vec<Relation>> {
        let (from, keys): (&str, &[&str]) = if under_ticket {
            (" JOIN invoices i ON i.id = x.invoice_id", &["i.ticket_id", "i.id"])
        } else {
            ("", &["x.invoice_id"])
        };
        Ok(vec![
            relation(
                layout,
                "lines",
                "invoice_lines",
                &format!("invoice_lines x{from}"),
                keys,
                vec![],
            )?,
            relation(
                layout,
                "payments",
                "payments",
                &format!("payments x{from}"),
                keys,
                vec![],
            )?,
        ])
    };
    Ok(match plan.dataset {
        Dataset::Tickets => Spec {
            sql: format!(
                "SELECT t.*, c.*, u.* FROM tickets t JOIN customers c ON c.id = t.customer_id \
                 LEFT JOIN users u ON u.id = t.technician_id{filter} ORDER BY t.id"
            ),
            shape: layout.shape(conn, main)?,
            joined: vec![
                (layout.field("customer", ""), layout.shape(conn, "customers")?),
                (layout.field("technician", ""), layout.shape(conn, "users")?),
            ],
            relations: vec![
                relation(
                    layout,
                    "notes",
                    "ticket_notes",
                    "ticket_notes x",
                    &["x.ticket_id"],
                    vec![],
                )?,
                relation(
                    layout,
                    "communications",
                    "communications",
                    "communications x",
                    &["x.ticket_id"],
                    vec![],
                )?,
                {
                    let parts = invoice_parts(layout, true)?;
                    relation(layout, "invoices", "invoices", "invoices x", &["x.ticket_id"], parts)?
                },
                relation(
                    layout,
                    "attachments",
                    "attachments",
                    "attachments x",
                    &["x.ticket_id"],
                    vec![],
                )?,
            ],
        },
        Dataset::Invoices => Spec {
            sql: format!(
                "SELECT t.*, c.* FROM invoices t JOIN customers c ON c.id = t.customer_id{filter} ORDER BY t.id"
            ),
            shape: layout.shape(conn, main)?,
            joined: vec![(layout.field("customer", ""), layout.shape(conn, "customers")?)],
            relations: invoice_parts(layout, false)?,
        },
        Dataset::Customers => {
            let mut names = table_columns(conn, "customers")?;
            names.extend(["lifetime_spend_cents".to_string(), "last_repair_date".to_string()]);
            Spec {
                sql: format!(
                    "SELECT t.*, \
                     coalesce((SELECT {} FROM invoices i JOIN payments p ON p.invoice_id = i.id WHERE i.customer_id = t.id), 0), \
                     (SELECT max(k.created_at) FROM tickets k WHERE k.customer_id = t.id) \
                     FROM customers t{filter} ORDER BY t.id",
                    crate::csv_export::sum_within_range("p.amount_cents")
                ),
                shape: layout.add_shape(Shape::named(&names)),
                joined: vec![],
                relations: vec![relation(
                    layout,
                    "tickets",
                    "tickets",
                    "tickets x",
                    &["x.customer_id"],
                    vec![],
                )?],
            }
        }
        Dataset::Inventory | Dataset::Users | Dataset::Transactions => Spec {
            sql: format!("SELECT t.* FROM {main} t{filter} ORDER BY t.id"),
            shape: layout.shape(conn, main)?,
            joined: vec![],
            relations: vec![],
        },
    })
}

/// A relation's statement, prepared, with those of the relations nested in it.
struct Prepared<'c> {
    relation: Relation,
    statement: Statement<'c>,
    nested: Vec<Prepared<'c>>,
}

fn prepare(conn: &Connection, mut relation: Relation) -> rusqlite::Result<Prepared<'_>> {
    let statement = conn.prepare(&relation.sql)?;
    let nested = std::mem::take(&mut relation.nested)
        .into_iter()
        .map(|r| prepare(conn, r))
        .collect::<rusqlite::Result<_>>()?;
    Ok(Prepared {
        relation,
        statement,
        nested,
    })
}

/// A relation being read: its rows, positioned at the first row not yet written.
struct Cursor<'s> {
    relation: &'s Relation,
    rows: Rows<'s>,
    started: bool,
    nested: Vec<Cursor<'s>>,
}

fn open<'s>(prepared: &'s mut Prepared<'_>, args: &[rusqlite::types::Value]) -> rusqlite::Result<Cursor<'s>> {
    let Prepared {
        relation,
        statement,
        nested,
    } = prepared;
    Ok(Cursor {
        relation,
        rows: statement.query(params_from_iter(args.iter()))?,
        started: false,
        nested: nested
            .iter_mut()
            .map(|p| open(p, args))
            .collect::<rusqlite::Result<_>>()?,
    })
}

/// Compares a row's key columns with a record's key. A key that is not an integer (a
/// communication with no ticket, or imported data with text there) belongs to no
/// record: it compares below every record's, and so is passed over.
fn compare_key(row: &Row<'_>, key: &[i64]) -> rusqlite::Result<Ordering> {
    for (i, want) in key.iter().enumerate() {
        let have = match row.get_ref(i)? {
            ValueRef::Integer(k) => k,
            _ => i64::MIN,
        };
        match have.cmp(want) {
            Ordering::Equal => {}
            other => return Ok(other),
        }
    }
    Ok(Ordering::Equal)
}

impl Cursor<'_> {
    /// Adds `,"name":[…]`: the rows whose key is `key`, leaving the cursor at the first
    /// row past them.
    fn write(&mut self, key: &[i64], out: &mut Reader<'_>) -> Result<(), ExportError> {
        let relation = self.relation;
        out.piece(relation.opening);
        if !self.started {
            self.rows.advance()?;
            self.started = true;
        }
        let mut first = true;
        while let Some(row) = self.rows.get() {
            match compare_key(row, key)? {
                // Rows of records not exported (or with no record): passed over.
                Ordering::Less => {
                    self.rows.advance()?;
                    continue;
                }
                Ordering::Greater => break,
                Ordering::Equal => {}
            }
            if !first {
                out.piece(COMMA);
            }
            first = false;
            out.object(relation.shape, row, relation.keys)?;
            if !self.nested.is_empty() {
                // The rows nested here are keyed by this row's key and then its id.
                let id_column = out.layout.shapes[relation.shape as usize]
                    .id
                    .ok_or_else(|| no_id(relation.name))?;
                let mut inner = key.to_vec();
                inner.push(row.get(relation.keys + id_column)?);
                for cursor in &mut self.nested {
                    cursor.write(&inner, out)?;
                }
            }
            out.piece(CLOSE);
            out.spill()?;
            self.rows.advance()?;
        }
        out.piece(END);
        Ok(())
    }
}

fn no_id(table: &str) -> ExportError {
    ExportError::Db(rusqlite::Error::InvalidColumnName(format!(
        "{table}.id (rows nested under {table} need its id)"
    )))
}

/// A dataset's queries, prepared: the records' own and those of their relations.
struct Query<'c> {
    main: Statement<'c>,
    args: Vec<rusqlite::types::Value>,
    shape: u32,
    id_column: usize,
    joined: Vec<(u32, u32)>,
    relations: Vec<Prepared<'c>>,
}

impl<'c> Query<'c> {
    fn prepare(conn: &'c Connection, plan: &Plan, layout: &mut Layout) -> Result<Query<'c>, ExportError> {
        let (filter, args) = plan.filter_sql();
        let Spec {
            sql,
            shape,
            joined,
            relations,
        } = spec(conn, plan, &filter, !args.is_empty(), layout)?;
        let id_column = layout.shapes[shape as usize]
            .id
            .ok_or_else(|| no_id(plan.dataset.as_str()))?;
        Ok(Query {
            main: conn.prepare(&sql)?,
            args,
            shape,
            id_column,
            joined,
            relations: relations
                .into_iter()
                .map(|r| prepare(conn, r))
                .collect::<rusqlite::Result<_>>()?,
        })
    }
}

/// Writes the dataset as a JSON array into `sink`; `progress` is told the records read
/// now and then. Returns the number of records.
pub fn write(
    conn: &Connection,
    plan: &Plan,
    sink: &mut (dyn Write + Send),
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    let mut layout = Layout::new();
    let mut query = Query::prepare(conn, plan, &mut layout)?;
    let layout = &layout;
    behind(
        move |batches, spent| write_behind(sink, |w| format(layout, batches, spent, w)),
        |handoff| read(&mut query, layout, handoff, progress),
    )
}

/// The reading thread: every record with its relations, as steps and the values they
/// take, handed on a batch at a time. Returns the number of records.
fn read(
    query: &mut Query<'_>,
    layout: &Layout,
    handoff: &Handoff<Batch>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    let Query {
        main,
        args,
        shape,
        id_column,
        joined,
        relations,
    } = query;
    let (shape, id_column) = (*shape, *id_column);
    let mut cursors = relations
        .iter_mut()
        .map(|p| open(p, args))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut rows = main.query(params_from_iter(args.iter()))?;
    let mut out = Reader {
        batch: Batch::default(),
        layout,
        handoff,
    };
    out.piece(OPEN_ARRAY);
    let mut n = 0u64;
    while let Some(row) = rows.next()? {
        out.piece(if n == 0 { FIRST } else { NEXT });
        out.object(shape, row, 0)?;
        let mut column = layout.shapes[shape as usize].len();
        for &(field, joined) in joined.iter() {
            out.piece(field);
            let joined_shape = &layout.shapes[joined as usize];
            // A left join that found nothing leaves the joined row's id NULL.
            let found = joined_shape
                .id
                .is_none_or(|id| !matches!(row.get_ref(column + id), Ok(ValueRef::Null)));
            if found {
                out.object(joined, row, column)?;
                out.piece(CLOSE);
            } else {
                out.piece(NULL);
            }
            column += joined_shape.len();
        }
        let id: i64 = row.get(id_column)?;
        for cursor in &mut cursors {
            cursor.write(&[id], &mut out)?;
        }
        out.piece(CLOSE);
        out.spill()?;
        n += 1;
        if n.is_multiple_of(4096) {
            progress(n);
        }
    }
    out.piece(CLOSE_ARRAY);
    out.send()?;
    progress(n);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use repairops_api::{ExportFilters, NewExport};
    use serde_json::{Value, json};

    use super::*;

    /// The tables the writer reads, cut down to the columns it relies on.
    fn shop() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT, shop_id INTEGER);
             CREATE TABLE tickets (id INTEGER PRIMARY KEY, shop_id INTEGER, customer_id INTEGER,
                 technician_id INTEGER, status TEXT, created_at TEXT);
             CREATE TABLE ticket_notes (id INTEGER PRIMARY KEY, ticket_id INTEGER, body TEXT);
             CREATE INDEX ticket_notes_ticket ON ticket_notes (ticket_id);
             CREATE TABLE communications (id INTEGER PRIMARY KEY, ticket_id INTEGER, body TEXT);
             CREATE TABLE invoices (id INTEGER PRIMARY KEY, shop_id INTEGER, ticket_id INTEGER,
                 customer_id INTEGER, status TEXT, created_at TEXT);
             CREATE TABLE invoice_lines (id INTEGER PRIMARY KEY, invoice_id INTEGER, what TEXT);
             CREATE TABLE payments (id INTEGER PRIMARY KEY, invoice_id INTEGER, amount_cents INTEGER);
             CREATE TABLE attachments (id INTEGER PRIMARY KEY, ticket_id INTEGER, data BLOB, ratio REAL);

             INSERT INTO users VALUES (7, 'Sarah');
             INSERT INTO customers VALUES (1, 'Ann', '2026-01-01', 1), (2, 'Bo', '2026-01-02', 1);
             INSERT INTO tickets VALUES
                 (10, 1, 1, 7, 'Completed', '2026-03-01T10:00:00Z'),
                 (11, 1, 2, NULL, 'New', '2026-03-02T10:00:00Z'),
                 (12, 1, 1, 7, 'Completed', '2026-03-03T10:00:00Z');
             -- Inserted out of order; one belongs to no ticket that exists.
             INSERT INTO ticket_notes VALUES (3, 12, 'c'), (1, 10, 'a'), (5, 99, 'stray'), (2, 10, 'b');
             INSERT INTO communications VALUES (1, NULL, 'no ticket'), (2, 11, 'called'), (3, 'eleven', 'text key');
             INSERT INTO invoices VALUES (20, 1, 12, 1, 'paid', '2026-03-03'), (21, 1, NULL, 2, 'open', '2026-03-04'),
                 (22, 1, 10, 1, 'paid', '2026-03-01');
             INSERT INTO invoice_lines VALUES (1, 20, 'screen'), (2, 22, 'battery'), (3, 20, 'labour'), (4, 21, 'case');
             INSERT INTO payments VALUES (1, 20, 500), (2, 22, 300);
             INSERT INTO attachments VALUES (1, 12, x'00ff', 1.5), (2, 12, NULL, 1e999);",
        )
        .unwrap();
        conn
    }

    fn plan(dataset: &str, filters: Option<ExportFilters>) -> Plan {
        let req = NewExport {
            dataset: dataset.into(),
            format: "json".into(),
            delimiter: None,
            filters,
        };
        Plan::new(&req, chrono_tz::UTC).unwrap()
    }

    /// Adds tickets 100 to `last` for customer 1.
    fn add_tickets(conn: &Connection, last: u32) {
        conn.execute_batch(&format!(
            "WITH RECURSIVE k(i) AS (SELECT 100 UNION ALL SELECT i + 1 FROM k WHERE i < {last})
             INSERT INTO tickets SELECT i, 1, 1, 7, 'Completed', '2026-04-01T10:00:00Z' FROM k;"
        ))
        .unwrap();
    }

    fn export(conn: &Connection, dataset: &str, filters: Option<ExportFilters>) -> Value {
        let plan = plan(dataset, filters);
        let mut out = Vec::new();
        let mut told = 0;
        let n = write(conn, &plan, &mut out, &mut |n| told = n).unwrap();
        assert_eq!(n, told);
        let parsed: Value = serde_json::from_slice(&out).expect("the export parses");
        assert_eq!(parsed.as_array().map(Vec::len), Some(n as usize));
        parsed
    }

    #[test]
    fn related_rows_land_under_their_record_in_order_and_strays_are_passed_over() {
        let conn = shop();
        let tickets = export(&conn, "tickets", None);
        let ids: Vec<i64> = tickets
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [10, 11, 12]);
        let [first, second, third] = [&tickets[0], &tickets[1], &tickets[2]];
        assert_eq!(
            first["customer"],
            json!({"id": 1, "name": "Ann", "created_at": "2026-01-01", "shop_id": 1})
        );
        assert_eq!(first["technician"], json!({"id": 7, "name": "Sarah"}));
        assert_eq!(second["technician"], Value::Null, "a ticket with no technician");
        assert_eq!(
            first["notes"],
            json!([{"id": 1, "ticket_id": 10, "body": "a"}, {"id": 2, "ticket_id": 10, "body": "b"}])
        );
        assert_eq!(second["notes"], json!([]));
        assert_eq!(third["notes"], json!([{"id": 3, "ticket_id": 12, "body": "c"}]));
        assert_eq!(
            second["communications"],
            json!([{"id": 2, "ticket_id": 11, "body": "called"}])
        );
        assert_eq!(
            third["invoices"],
            json!([{"id": 20, "shop_id": 1, "ticket_id": 12, "customer_id": 1, "status": "paid", "created_at": "2026-03-03",
                    "lines": [{"id": 1, "invoice_id": 20, "what": "screen"}, {"id": 3, "invoice_id": 20, "what": "labour"}],
                    "payments": [{"id": 1, "invoice_id": 20, "amount_cents": 500}]}])
        );
        assert_eq!(
            first["invoices"][0]["lines"],
            json!([{"id": 2, "invoice_id": 22, "what": "battery"}])
        );
        // A blob as hex, a real as a number, an infinite real as null.
        assert_eq!(
            third["attachments"],
            json!([{"id": 1, "ticket_id": 12, "data": "00ff", "ratio": 1.5},
                   {"id": 2, "ticket_id": 12, "data": null, "ratio": null}])
        );
        let text = serde_json::to_string(&tickets).unwrap();
        assert!(!text.contains("stray") && !text.contains("no ticket") && !text.contains("case"));
        assert!(
            !text.contains("text key"),
            "a key that is not an integer belongs to no ticket"
        );
    }

    #[test]
    fn a_filtered_export_nests_only_the_picked_records_rows() {
        let conn = shop();
        let picked = export(
            &conn,
            "tickets",
            Some(ExportFilters {
                status: Some("Completed".into()),
                from: Some("2026-03-02".into()),
                ..Default::default()
            }),
        );
        assert_eq!(picked.as_array().unwrap().len(), 1);
        assert_eq!(picked[0]["id"], 12);
        assert_eq!(picked[0]["notes"], json!([{"id": 3, "ticket_id": 12, "body": "c"}]));
        assert_eq!(picked[0]["invoices"][0]["lines"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn invoices_and_customers_nest_their_own_relations() {
        let conn = shop();
        let invoices = export(&conn, "invoices", None);
        assert_eq!(invoices.as_array().unwrap().len(), 3);
        assert_eq!(invoices[1]["id"], 21);
        assert_eq!(
            invoices[1]["lines"],
            json!([{"id": 4, "invoice_id": 21, "what": "case"}])
        );
        assert_eq!(invoices[1]["payments"], json!([]));
        assert_eq!(invoices[1]["customer"]["name"], "Bo");
        let customers = export(&conn, "customers", None);
        assert_eq!(customers[0]["lifetime_spend_cents"], 800);
        assert_eq!(customers[0]["last_repair_date"], "2026-03-03T10:00:00Z");
        let tickets: Vec<&Value> = customers[0]["tickets"].as_array().unwrap().iter().collect();
        assert_eq!(
            tickets.iter().map(|t| t["id"].as_i64().unwrap()).collect::<Vec<_>>(),
            [10, 12]
        );
        assert_eq!(customers[1]["lifetime_spend_cents"], 0);
    }

    #[test]
    fn a_customer_whose_payments_pass_the_64_bit_range_is_exported_at_the_bound() {
        let conn = shop();
        conn.execute_batch(&format!(
            "INSERT INTO payments (invoice_id, amount_cents) VALUES (20, {max}), (20, {max});",
            max = i64::MAX
        ))
        .unwrap();
        let customers = export(&conn, "customers", None);
        let spend: Vec<i64> = customers
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["lifetime_spend_cents"].as_i64().unwrap())
            .collect();
        assert!(spend.contains(&i64::MAX), "{spend:?}");
        assert!(spend.contains(&0), "{spend:?}");
    }

    #[test]
    fn text_is_escaped_and_bad_utf8_is_replaced() {
        let conn = shop();
        let odd = "\"quoted\", back\\slash, line\nbreak, tab\t, bell\u{7}, emoji 😀, שלום";
        conn.execute("UPDATE users SET name = ?1 WHERE id = 7", [odd]).unwrap();
        conn.execute("INSERT INTO users VALUES (8, CAST(x'4f6b20ff' AS TEXT))", [])
            .unwrap();
        let users = export(&conn, "users", None);
        assert_eq!(users[0]["name"], odd);
        assert_eq!(users[1]["name"], "Ok \u{fffd}");
    }

    #[test]
    fn a_record_with_thousands_of_rows_is_handed_on_a_chunk_at_a_time() {
        let conn = shop();
        add_tickets(&conn, 5099);
        let mut out = crate::exports::test_outputs::Largest::default();
        write(&conn, &plan("customers", None), &mut out, &mut |_| {}).unwrap();
        let customers: Value = serde_json::from_slice(&out.taken).unwrap();
        let tickets = customers[0]["tickets"].as_array().unwrap();
        assert_eq!(tickets.len(), 5002);
        assert!(
            out.taken.len() > 2 * CHUNK,
            "the customer's record is {} bytes",
            out.taken.len()
        );
        assert!(out.largest < CHUNK + 4096, "a write of {} bytes", out.largest);
    }

    #[test]
    fn text_is_written_as_serde_json_writes_it() {
        let mut samples: Vec<Vec<u8>> = (0u8..=0x7f).map(|b| vec![b'a', b, b'z']).collect();
        samples.extend(
            [
                "",
                "plain ascii 2024-12-12T18:08:17Z",
                "quote \" inside",
                "emoji 😀 שלום",
                "tab\tand\r\n",
            ]
            .map(|s| s.as_bytes().to_vec()),
        );
        samples.push(b"bad \xff utf8".to_vec());
        for text in samples {
            let mut out = Vec::new();
            string(&text, &mut out);
            let expected = serde_json::to_vec(&String::from_utf8_lossy(&text)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_full_disk_stops_the_reading_with_the_disks_error() {
        let conn = shop();
        add_tickets(&conn, 50099);
        let mut read = 0;
        let err = write(
            &conn,
            &plan("tickets", None),
            &mut crate::exports::test_outputs::FillingDisk::with_room(10_000),
            &mut |n| read = n,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no space left on device"), "{err}");
        // Reading stopped within the batches and chunks that may wait, not at the end.
        assert!(read < 40_000, "read {read} of 50,003 tickets after the output failed");
    }

    #[test]
    fn an_export_that_fails_part_way_does_not_end_as_a_whole_document() {
        let conn = shop();
        add_tickets(&conn, 50099);
        let interrupt = conn.get_interrupt_handle();
        let mut out = Vec::new();
        // The reading fails at its next step once 4,096 records are read.
        let err = write(&conn, &plan("tickets", None), &mut out, &mut |n| {
            if n > 0 {
                interrupt.interrupt();
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("interrupt"), "{err}");
        assert!(out.starts_with(b"[\n{"), "the records read were written");
        assert!(!out.ends_with(b"]\n"), "the array was closed after a failure");
        assert!(serde_json::from_slice::<Value>(&out).is_err());
    }

    #[test]
    fn a_record_with_thousands_of_rows_is_read_out_in_batches_of_bounded_size() {
        let conn = shop();
        add_tickets(&conn, 5099);
        let mut layout = Layout::new();
        let mut query = Query::prepare(&conn, &plan("customers", None), &mut layout).unwrap();
        let (mut batches, mut most_values, mut most_bytes) = (0, 0, 0);
        let n = behind(
            |full: Receiver<Batch>, _spent| {
                for batch in full {
                    batches += 1;
                    most_values = most_values.max(batch.values.cells.len());
                    most_bytes = most_bytes.max(batch.values.bytes.len());
                }
                Ok(())
            },
            |handoff| read(&mut query, &layout, handoff, &mut |_| {}),
        )
        .unwrap();
        assert_eq!(n, 2);
        // Customer 1's 5,002 tickets are 30,012 values: handed on part way through it.
        assert!(batches >= 2, "{batches} batches");
        assert!(most_values < BATCH_CELLS + 16, "a batch of {most_values} values");
        assert!(most_bytes < BATCH_BYTES + 1024, "a batch of {most_bytes} bytes");
    }
}
