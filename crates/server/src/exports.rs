//! Exports of the shop's data: what a request may ask for (checked before any work
//! starts) and the writers that stream CSV, JSON and PDF from `live.db` into any
//! [`Write`]. Rows go out as SQLite produces them, so memory stays flat whatever the
//! size; the server seals the output into an encrypted file (see `export_api`).
//!
//! Column lists come from the schema itself (`PRAGMA table_info`), so every column of
//! the table is exported and a column added by a later migration is exported too.

use std::io::Write;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use repairops_api::{ExportFilters, NewExport};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};

/// What can be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Tickets,
    Customers,
    Invoices,
    Inventory,
    Users,
    Transactions,
}

pub const DATASETS: &str = "tickets, customers, invoices, inventory, users, transactions";

impl Dataset {
    pub fn parse(s: &str) -> Option<Dataset> {
        Some(match s {
            "tickets" => Dataset::Tickets,
            "customers" => Dataset::Customers,
            "invoices" => Dataset::Invoices,
            "inventory" => Dataset::Inventory,
            "users" => Dataset::Users,
            "transactions" => Dataset::Transactions,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Tickets => "tickets",
            Dataset::Customers => "customers",
            Dataset::Invoices => "invoices",
            Dataset::Inventory => "inventory",
            Dataset::Users => "users",
            Dataset::Transactions => "transactions",
        }
    }

    fn table(self) -> &'static str {
        self.as_str()
    }

    /// The statuses a `status` filter may name, when the dataset has a status.
    fn statuses(self) -> Option<&'static [&'static str]> {
        match self {
            Dataset::Tickets => Some(repairops_api::TICKET_STATUSES),
            Dataset::Invoices => Some(repairops_api::INVOICE_STATUSES),
            _ => None,
        }
    }
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Pdf,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "pdf" => Format::Pdf,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Pdf => "pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Pdf => "application/pdf",
        }
    }
}

/// Why an export request cannot be run: the message says what to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{0:?} is not a dataset; choose one of {DATASETS}")]
    UnknownDataset(String),
    #[error("{0:?} is not a format; choose csv, json or pdf")]
    UnknownFormat(String),
    #[error("PDF is only for invoices; export {0} as csv or json")]
    PdfNotForDataset(&'static str),
    #[error(
        "the delimiter must be one ASCII character other than a quote, a letter, a digit or a line break (got {0:?})"
    )]
    BadDelimiter(String),
    #[error("a delimiter only applies to CSV")]
    DelimiterNotCsv,
    #[error("filters.{0} must be a date such as 2026-11-30 (got {1:?})")]
    BadDate(&'static str, String),
    #[error("filters.from ({0}) is after filters.to ({1})")]
    EmptyRange(String, String),
    #[error("{0} have no status; the status filter applies to tickets and invoices")]
    StatusNotApplicable(&'static str),
    #[error("{status:?} is not a status of {dataset}; use one of {allowed}")]
    UnknownStatus {
        status: String,
        dataset: &'static str,
        allowed: String,
    },
    #[error("filters.shop_id must be a positive id")]
    BadShop,
}

/// A checked export request: what the writers run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub dataset: Dataset,
    pub format: Format,
    pub delimiter: u8,
    pub filters: ExportFilters,
    /// `created_at` bounds in stored (UTC, RFC 3339) form: `[from, to)`.
    created_from: Option<String>,
    created_before: Option<String>,
}

/// The UTC instant a shop-local date starts (the earliest, where a DST change makes
/// midnight ambiguous; the first valid hour where it skips midnight).
fn local_day_start(date: NaiveDate, tz: Tz) -> chrono::DateTime<chrono::Utc> {
    (0..24)
        .find_map(|h| {
            date.and_hms_opt(h, 0, 0)
                .and_then(|t| tz.from_local_datetime(&t).earliest())
        })
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

impl Plan {
    /// Checks a request; `tz` is the account's time zone (filters are shop-local dates).
    pub fn new(req: &NewExport, tz: Tz) -> Result<Plan, PlanError> {
        let dataset = Dataset::parse(&req.dataset).ok_or_else(|| PlanError::UnknownDataset(req.dataset.clone()))?;
        let format = Format::parse(&req.format).ok_or_else(|| PlanError::UnknownFormat(req.format.clone()))?;
        if format == Format::Pdf && dataset != Dataset::Invoices {
            return Err(PlanError::PdfNotForDataset(dataset.as_str()));
        }
        let delimiter = match req.delimiter.as_deref() {
            None => b',',
            Some(_) if format != Format::Csv => return Err(PlanError::DelimiterNotCsv),
            Some(d) => match d.as_bytes() {
                [b] if (b.is_ascii_punctuation() || *b == b' ' || *b == b'\t') && *b != b'"' => *b,
                _ => return Err(PlanError::BadDelimiter(d.to_string())),
            },
        };
        let filters = req.filters.clone().unwrap_or_default();
        let date = |name: &'static str, v: &Option<String>| -> Result<Option<NaiveDate>, PlanError> {
            v.as_deref()
                .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| PlanError::BadDate(name, s.to_string())))
                .transpose()
        };
        let from = date("from", &filters.from)?;
        let to = date("to", &filters.to)?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(PlanError::EmptyRange(f.to_string(), t.to_string()));
        }
        if let Some(status) = &filters.status {
            let allowed = dataset
                .statuses()
                .ok_or(PlanError::StatusNotApplicable(dataset.as_str()))?;
            if !allowed.contains(&status.as_str()) {
                return Err(PlanError::UnknownStatus {
                    status: status.clone(),
                    dataset: dataset.as_str(),
                    allowed: allowed.join(", "),
                });
            }
        }
        if filters.shop_id.is_some_and(|s| s <= 0) {
            return Err(PlanError::BadShop);
        }
        Ok(Plan {
            dataset,
            format,
            delimiter,
            created_from: from.map(|d| crate::shopdata::time_text(local_day_start(d, tz))),
            created_before: to
                .and_then(|d| d.succ_opt())
                .map(|d| crate::shopdata::time_text(local_day_start(d, tz))),
            filters,
        })
    }

    /// A file name safe on every drive format: `tickets-2026-11-30.csv`.
    pub fn file_name(&self, day: NaiveDate) -> String {
        format!("{}-{day}.{}", self.dataset.as_str(), self.format.as_str())
    }

    /// ` WHERE …` on the main table (alias `t`) and its arguments.
    pub(crate) fn filter_sql(&self) -> (String, Vec<Value>) {
        let mut sql = String::from(" WHERE 1 = 1");
        let mut args = Vec::new();
        if let Some(f) = &self.created_from {
            sql.push_str(" AND t.created_at >= ?");
            args.push(Value::Text(f.clone()));
        }
        if let Some(b) = &self.created_before {
            sql.push_str(" AND t.created_at < ?");
            args.push(Value::Text(b.clone()));
        }
        if let Some(s) = &self.filters.status {
            sql.push_str(" AND t.status = ?");
            args.push(Value::Text(s.clone()));
        }
        if let Some(shop) = self.filters.shop_id {
            sql.push_str(" AND t.shop_id = ?");
            args.push(Value::Integer(shop));
        }
        (sql, args)
    }
}

/// Why writing an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the shop's data failed: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the CSV failed: {0}")]
    Csv(#[from] csv::Error),
}

/// The columns of a table, in schema order.
fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

/// Integer cents as a decimal amount (`1234` → `12.34`), NULL stays NULL. `expr` is
/// evaluated several times: pass a column, not a subquery.
fn money(expr: &str) -> String {
    format!(
        "CASE WHEN ({expr}) IS NULL THEN NULL ELSE printf('%s%d.%02d', CASE WHEN ({expr}) < 0 THEN '-' ELSE '' END, abs({expr}) / 100, abs({expr}) % 100) END"
    )
}

/// The main table with its joins, and the joined columns that lead a CSV row.
fn csv_shape(dataset: Dataset) -> (&'static str, Vec<(&'static str, String)>) {
    let name = "trim(c.first_name || ' ' || c.last_name)".to_string();
    match dataset {
        Dataset::Tickets => (
            // Totals are aggregated once and joined, not looked up row by row.
            "tickets t JOIN customers c ON c.id = t.customer_id LEFT JOIN users u ON u.id = t.technician_id
             LEFT JOIN (SELECT ticket_id, sum(total_cents) AS total FROM invoices WHERE ticket_id IS NOT NULL GROUP BY ticket_id) inv
                 ON inv.ticket_id = t.id",
            vec![
                ("ticket_id", "t.id".into()),
                ("customer_name", name),
                ("status", "t.status".into()),
                ("created_at", "t.created_at".into()),
                ("updated_at", "t.updated_at".into()),
                ("technician", "u.name".into()),
                ("total_cost", money("inv.total")),
            ],
        ),
        Dataset::Customers => (
            "customers t
             LEFT JOIN (SELECT i.customer_id AS cid, sum(p.amount_cents) AS spent FROM invoices i JOIN payments p ON p.invoice_id = i.id
                        GROUP BY i.customer_id) sp ON sp.cid = t.id
             LEFT JOIN (SELECT customer_id AS cid, max(created_at) AS last FROM tickets GROUP BY customer_id) lr ON lr.cid = t.id",
            vec![
                ("customer_id", "t.id".into()),
                ("name", "trim(t.first_name || ' ' || t.last_name)".into()),
                ("phone", "t.phone".into()),
                ("email", "t.email".into()),
                ("address", "t.address".into()),
                ("lifetime_spend", money("coalesce(sp.spent, 0)")),
                ("last_repair_date", "lr.last".into()),
            ],
        ),
        Dataset::Invoices => (
            "invoices t JOIN customers c ON c.id = t.customer_id",
            vec![
                ("invoice_id", "t.id".into()),
                ("ticket_id", "t.ticket_id".into()),
                ("amount", money("t.total_cents")),
                ("date", "coalesce(t.issued_at, t.created_at)".into()),
                ("status", "t.status".into()),
                (
                    "payment_method",
                    "(SELECT group_concat(m, ' + ') FROM (SELECT DISTINCT p.method AS m FROM payments p WHERE p.invoice_id = t.id ORDER BY p.method))".into(),
                ),
                ("customer_name", name),
            ],
        ),
        Dataset::Inventory => ("inventory t", Vec::new()),
        Dataset::Users => ("users t", Vec::new()),
        Dataset::Transactions => ("transactions t", Vec::new()),
    }
}

/// The CSV query: joined columns first, then every column of the table not already
/// there (the table's `id` is the leading `*_id` where one is named).
fn csv_query(conn: &Connection, plan: &Plan) -> Result<(String, Vec<Value>), ExportError> {
    let (from, front) = csv_shape(plan.dataset);
    let mut select: Vec<String> = front.iter().map(|(n, e)| format!("{e} AS \"{n}\"")).collect();
    for col in table_columns(conn, plan.dataset.table())? {
        let shown = front.iter().any(|(n, _)| *n == col) || (col == "id" && !front.is_empty());
        if !shown {
            select.push(format!("t.\"{col}\" AS \"{col}\""));
        }
    }
    let (filter, args) = plan.filter_sql();
    Ok((
        format!("SELECT {} FROM {from}{filter} ORDER BY t.id", select.join(", ")),
        args,
    ))
}

/// Makes a cell safe to open in a spreadsheet: text that a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a leading `'`.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Counts the records an export will hold (for progress).
pub fn count(conn: &Connection, plan: &Plan) -> rusqlite::Result<u64> {
    let (filter, args) = plan.filter_sql();
    let table = plan.dataset.table();
    conn.query_row(
        &format!("SELECT count(*) FROM {table} t{filter}"),
        params_from_iter(args.iter()),
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

/// Writes the export; `progress` is told the records written so far, now and then.
/// Returns the number of records.
pub fn write(
    conn: &Connection,
    plan: &Plan,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    match plan.format {
        Format::Csv => write_csv(conn, plan, out, progress),
        Format::Json => write_json(conn, plan, out, progress),
        Format::Pdf => crate::invoice_pdf::write(conn, plan, out, progress),
    }
}

fn write_csv(
    conn: &Connection,
    plan: &Plan,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    let (sql, args) = csv_query(conn, plan)?;
    let mut stmt = conn.prepare(&sql)?;
    let mut w = csv::WriterBuilder::new()
        .delimiter(plan.delimiter)
        .buffer_capacity(256 * 1024)
        .from_writer(out);
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    w.write_record(&names)?;
    let columns = names.len();
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut n = 0u64;
    let mut number = itoa::Buffer::new();
    while let Some(r) = rows.next()? {
        for i in 0..columns {
            match r.get_ref(i)? {
                ValueRef::Null => w.write_field(b"")?,
                ValueRef::Integer(v) => w.write_field(number.format(v))?,
                ValueRef::Real(v) => w.write_field(v.to_string())?,
                ValueRef::Text(t) => match std::str::from_utf8(t) {
                    Ok(s) => w.write_field(spreadsheet_safe(s).as_bytes())?,
                    Err(_) => w.write_field(String::from_utf8_lossy(t).as_bytes())?,
                },
                ValueRef::Blob(b) => w.write_field(hex::encode(b))?,
            }
        }
        w.write_record(None::<&[u8]>)?;
        n += 1;
        if n.is_multiple_of(4096) {
            progress(n);
        }
    }
    w.flush()?;
    progress(n);
    Ok(n)
}

/// `'col', a."col", …` over every column of a table: the arguments of a `json_object`.
pub(crate) fn pairs(conn: &Connection, table: &str, alias: &str) -> rusqlite::Result<String> {
    let pairs: Vec<String> = table_columns(conn, table)?
        .iter()
        .map(|c| format!("'{c}', {alias}.\"{c}\""))
        .collect();
    Ok(pairs.join(", "))
}

/// The JSON query: one JSON text per record, relations nested by SQLite's JSON
/// functions (each nested array wrapped in `json()` so it stays JSON, not a string).
fn json_query(conn: &Connection, plan: &Plan) -> Result<(String, Vec<Value>), ExportError> {
    let all = |table: &str, alias: &str| -> rusqlite::Result<String> {
        Ok(format!("json_object({})", pairs(conn, table, alias)?))
    };
    let array = |inner: String, from: &str, alias: &str| {
        format!("json((SELECT json_group_array({inner} ORDER BY {alias}.id) FROM {from}))")
    };
    // An invoice's own fields, its lines and its payments (without the closing paren).
    let invoice = |alias: &str| -> rusqlite::Result<String> {
        Ok(format!(
            "json_object({}, 'lines', {}, 'payments', {}",
            pairs(conn, "invoices", alias)?,
            array(
                all("invoice_lines", "l")?,
                &format!("invoice_lines l WHERE l.invoice_id = {alias}.id"),
                "l"
            ),
            array(
                all("payments", "p")?,
                &format!("payments p WHERE p.invoice_id = {alias}.id"),
                "p"
            ),
        ))
    };
    let (record, from) = match plan.dataset {
        Dataset::Tickets => (
            format!(
                "json_object({}, 'customer', {}, 'technician', CASE WHEN u.id IS NULL THEN NULL ELSE {} END, 'notes', {}, 'communications', {}, 'invoices', {}, 'attachments', {})",
                pairs(conn, "tickets", "t")?,
                all("customers", "c")?,
                all("users", "u")?,
                array(
                    all("ticket_notes", "n")?,
                    "ticket_notes n WHERE n.ticket_id = t.id",
                    "n"
                ),
                array(
                    all("communications", "m")?,
                    "communications m WHERE m.ticket_id = t.id",
                    "m"
                ),
                array(
                    format!("{})", invoice("i")?),
                    "invoices i WHERE i.ticket_id = t.id",
                    "i"
                ),
                array(all("attachments", "a")?, "attachments a WHERE a.ticket_id = t.id", "a"),
            ),
            "tickets t JOIN customers c ON c.id = t.customer_id LEFT JOIN users u ON u.id = t.technician_id",
        ),
        Dataset::Customers => (
            format!(
                "json_object({}, 'lifetime_spend_cents', coalesce((SELECT sum(p.amount_cents) FROM invoices i JOIN payments p ON p.invoice_id = i.id WHERE i.customer_id = t.id), 0), 'last_repair_date', (SELECT max(k.created_at) FROM tickets k WHERE k.customer_id = t.id), 'tickets', {})",
                pairs(conn, "customers", "t")?,
                array(all("tickets", "k")?, "tickets k WHERE k.customer_id = t.id", "k"),
            ),
            "customers t",
        ),
        Dataset::Invoices => (
            format!("{}, 'customer', {})", invoice("t")?, all("customers", "c")?),
            "invoices t JOIN customers c ON c.id = t.customer_id",
        ),
        Dataset::Inventory => (all("inventory", "t")?, "inventory t"),
        Dataset::Users => (all("users", "t")?, "users t"),
        Dataset::Transactions => (all("transactions", "t")?, "transactions t"),
    };
    let (filter, args) = plan.filter_sql();
    Ok((format!("SELECT {record} FROM {from}{filter} ORDER BY t.id"), args))
}

fn write_json(
    conn: &Connection,
    plan: &Plan,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    let (sql, args) = json_query(conn, plan)?;
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, out);
    out.write_all(b"[")?;
    let mut n = 0u64;
    while let Some(r) = rows.next()? {
        out.write_all(if n == 0 { b"\n" } else { b",\n" })?;
        out.write_all(r.get_ref(0)?.as_bytes().map_err(rusqlite::Error::from)?)?;
        n += 1;
        if n.is_multiple_of(4096) {
            progress(n);
        }
    }
    out.write_all(b"\n]\n")?;
    out.flush()?;
    progress(n);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(dataset: &str, format: &str) -> NewExport {
        NewExport {
            dataset: dataset.into(),
            format: format.into(),
            ..Default::default()
        }
    }

    #[test]
    fn requests_are_checked_with_messages_that_say_what_to_change() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        assert!(matches!(
            Plan::new(&req("orders", "csv"), tz),
            Err(PlanError::UnknownDataset(_))
        ));
        assert!(matches!(
            Plan::new(&req("tickets", "xlsx"), tz),
            Err(PlanError::UnknownFormat(_))
        ));
        assert_eq!(
            Plan::new(&req("tickets", "pdf"), tz).unwrap_err().to_string(),
            "PDF is only for invoices; export tickets as csv or json"
        );
        let mut r = req("tickets", "csv");
        for bad in ["", ";;", "a", "7", "\"", "\n", "é"] {
            r.delimiter = Some(bad.into());
            assert!(matches!(Plan::new(&r, tz), Err(PlanError::BadDelimiter(_))), "{bad:?}");
        }
        r.delimiter = Some(";".into());
        assert_eq!(Plan::new(&r, tz).unwrap().delimiter, b';');
        let mut r = req("inventory", "json");
        r.filters = Some(ExportFilters {
            status: Some("New".into()),
            ..Default::default()
        });
        assert!(matches!(
            Plan::new(&r, tz),
            Err(PlanError::StatusNotApplicable("inventory"))
        ));
        let mut r = req("tickets", "csv");
        r.filters = Some(ExportFilters {
            from: Some("2026-13-01".into()),
            ..Default::default()
        });
        assert!(matches!(Plan::new(&r, tz), Err(PlanError::BadDate("from", _))));
        r.filters = Some(ExportFilters {
            from: Some("2026-11-02".into()),
            to: Some("2026-11-01".into()),
            ..Default::default()
        });
        assert!(matches!(Plan::new(&r, tz), Err(PlanError::EmptyRange(..))));
    }

    #[test]
    fn dates_are_whole_shop_local_days() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        let mut r = req("tickets", "csv");
        r.filters = Some(ExportFilters {
            from: Some("2026-11-01".into()),
            to: Some("2026-11-01".into()),
            ..Default::default()
        });
        let p = Plan::new(&r, tz).unwrap();
        // 1 November 2026 is the day Chicago leaves daylight time: 25 hours long.
        assert_eq!(p.created_from.as_deref(), Some("2026-11-01T05:00:00.000000Z"));
        assert_eq!(p.created_before.as_deref(), Some("2026-11-02T06:00:00.000000Z"));
    }
}
