//! Exports of the shop's data: what a request may ask for (checked before any work
//! starts) and the writers that stream CSV, JSON and PDF from `live.db` into any
//! [`Write`]. Rows go out as SQLite produces them, so memory stays flat whatever the
//! size; the server seals the output into an encrypted file (see `export_api`).
//!
//! Column lists come from the schema itself (`PRAGMA table_info`), so every column of
//! the table is exported and a column added by a later migration is exported too.

use std::io::Write;
use std::sync::mpsc::{Receiver, Sender, SyncSender};

use chrono::NaiveDate;
use chrono_tz::Tz;
use repairops_api::{ExportFilters, NewExport};
use rusqlite::types::Value;
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

    pub(crate) fn table(self) -> &'static str {
        self.as_str()
    }

    /// Whether an export of it can hold a customer's personal data (and so must go when
    /// that customer is deleted on request).
    pub fn holds_customers(self) -> bool {
        matches!(
            self,
            Dataset::Tickets | Dataset::Customers | Dataset::Invoices | Dataset::Transactions
        )
    }

    /// The datasets that [`Dataset::holds_customers`], as an SQL list.
    pub const HOLDING_CUSTOMERS_SQL: &str = "('tickets', 'customers', 'invoices', 'transactions')";

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

/// A rejected value as an error message shows it: whole when short, else its first 64
/// characters and `…`, so a megabyte of nonsense is not sent back in the answer.
pub(crate) fn clip(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value.to_string(),
    }
}

impl Plan {
    /// Checks a request; `tz` is the account's time zone (filters are shop-local dates).
    pub fn new(req: &NewExport, tz: Tz) -> Result<Plan, PlanError> {
        let dataset = Dataset::parse(&req.dataset).ok_or_else(|| PlanError::UnknownDataset(clip(&req.dataset)))?;
        let format = Format::parse(&req.format).ok_or_else(|| PlanError::UnknownFormat(clip(&req.format)))?;
        if format == Format::Pdf && dataset != Dataset::Invoices {
            return Err(PlanError::PdfNotForDataset(dataset.as_str()));
        }
        let delimiter = match req.delimiter.as_deref() {
            None => b',',
            Some(_) if format != Format::Csv => return Err(PlanError::DelimiterNotCsv),
            Some(d) => match d.as_bytes() {
                [b] if (b.is_ascii_punctuation() || *b == b' ' || *b == b'\t') && *b != b'"' => *b,
                _ => return Err(PlanError::BadDelimiter(clip(d))),
            },
        };
        let filters = req.filters.clone().unwrap_or_default();
        let date = |name: &'static str, v: &Option<String>| -> Result<Option<NaiveDate>, PlanError> {
            v.as_deref()
                .map(|s| crate::shopdata::parse_day(s).ok_or_else(|| PlanError::BadDate(name, clip(s))))
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
                    status: clip(status),
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
            created_from: from.map(|d| crate::shopdata::time_text(crate::shopdata::local_day_start(d, tz))),
            // None after 9999-12-31: no stored time is later.
            created_before: to
                .and_then(|d| d.succ_opt())
                .filter(|d| chrono::Datelike::year(d) <= 9999)
                .map(|d| crate::shopdata::time_text(crate::shopdata::local_day_start(d, tz))),
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
pub(crate) fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

pub use crate::csv_export::spreadsheet_safe;

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

/// Writes the export; `progress` is told the records done so far (for CSV, read:
/// the formatting thread is at most a few batches behind), now and then.
/// Returns the number of records.
///
/// The rows are read on this thread while others format them and write the output to
/// `out` (for the server, sealing and hashing it too), so the work overlaps: CSV is
/// formatted and written on a second thread; JSON is formatted on a second thread and
/// written on a third; a PDF, whose layout follows the reading row by row, is written
/// on a second.
pub fn write(
    conn: &Connection,
    plan: &Plan,
    out: &mut (dyn Write + Send),
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    match plan.format {
        Format::Csv => crate::csv_export::write(conn, plan, out, progress),
        Format::Json => crate::json_export::write(conn, plan, out, progress),
        Format::Pdf => write_behind(out, |out| crate::invoice_pdf::write(conn, plan, out, progress)),
    }
}

/// Streams the export described by `plan` out of a live database into `out`, inside one
/// read transaction (a consistent picture however long it takes, writers unblocked).
pub fn write_live(
    live_db: &std::path::Path,
    plan: &Plan,
    out: &mut (dyn Write + Send),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, ExportError> {
    let conn = crate::db::open_existing(live_db)?;
    conn.execute_batch("BEGIN")?;
    let total = count(&conn, plan)?;
    progress(0, total);
    let n = write(&conn, plan, out, &mut |done| progress(done, total))?;
    conn.execute_batch("COMMIT")?;
    Ok(n)
}

/// Values copied out of SQLite for a formatting thread (see [`behind`]): the cells of
/// rows in order, their text and blobs end to end in `bytes`.
#[derive(Default)]
pub(crate) struct Cells {
    pub(crate) cells: Vec<Cell>,
    pub(crate) bytes: Vec<u8>,
}

pub(crate) enum Cell {
    Null,
    Integer(i64),
    Real(f64),
    Text { start: usize, end: usize },
    Blob { start: usize, end: usize },
}

impl Cells {
    /// Text a batch of cells holds before it is handed on.
    pub(crate) const BYTES: usize = 64 * 1024;

    pub(crate) fn push(&mut self, value: rusqlite::types::ValueRef<'_>) {
        use rusqlite::types::ValueRef;
        let mut stored = |data: &[u8]| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(data);
            (start, self.bytes.len())
        };
        let cell = match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(v) => Cell::Integer(v),
            ValueRef::Real(v) => Cell::Real(v),
            ValueRef::Text(t) => {
                let (start, end) = stored(t);
                Cell::Text { start, end }
            }
            ValueRef::Blob(b) => {
                let (start, end) = stored(b);
                Cell::Blob { start, end }
            }
        };
        self.cells.push(cell);
    }

    pub(crate) fn clear(&mut self) {
        self.cells.clear();
        self.bytes.clear();
    }
}

/// Items that may wait between the two threads of [`behind`]: with the one being
/// consumed, the one just filled and the next one being filled, at most this plus three
/// are held, whatever the export's size.
const WAITING: usize = 4;

/// The producing end of [`behind`].
pub(crate) struct Handoff<T> {
    full: SyncSender<T>,
    reusable: Receiver<T>,
}

impl<T> Handoff<T> {
    /// An item the other thread is done with, to be filled again, if one has come back.
    pub(crate) fn reuse(&self) -> Option<T> {
        self.reusable.try_recv().ok()
    }

    /// Hands `item` on; fails once the other thread has stopped.
    pub(crate) fn send(&self, item: T) -> std::io::Result<()> {
        self.full
            .send(item)
            .map_err(|_| std::io::Error::other("the export's output stopped"))
    }
}

/// Runs `produce` on this thread while `consume` takes what it hands on in a second
/// thread and sends the items it is done with back for reuse. If `consume` fails,
/// `produce` is stopped at its next hand-off and `consume`'s error is returned.
pub(crate) fn behind<T: Send, R>(
    consume: impl FnOnce(Receiver<T>, Sender<T>) -> Result<(), ExportError> + Send,
    produce: impl FnOnce(&Handoff<T>) -> Result<R, ExportError>,
) -> Result<R, ExportError> {
    let (full, to_consume) = std::sync::mpsc::sync_channel::<T>(WAITING);
    let (spent, reusable) = std::sync::mpsc::channel::<T>();
    std::thread::scope(|scope| {
        let consumer = scope.spawn(move || consume(to_consume, spent));
        let handoff = Handoff { full, reusable };
        let produced = produce(&handoff);
        // Dropping the sender ends the consumer's input.
        drop(handoff);
        let consumed = consumer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the thread writing the export stopped").into()));
        consumed.and(produced)
    })
}

/// Bytes handed from the formatting thread to the writing thread at a time.
pub(crate) const CHUNK: usize = 256 * 1024;

/// Runs `produce` on this thread while a second thread writes what it produces into
/// `sink`. If writing fails, `produce` is stopped at its next write and the write's
/// error is returned.
pub(crate) fn write_behind<T>(
    sink: &mut (dyn Write + Send),
    produce: impl FnOnce(&mut dyn Write) -> Result<T, ExportError>,
) -> Result<T, ExportError> {
    behind(
        |chunks: Receiver<Vec<u8>>, spent| {
            for mut chunk in chunks {
                sink.write_all(&chunk)?;
                chunk.clear();
                // The formatting thread may have finished; then the chunk is dropped.
                let _ = spent.send(chunk);
            }
            Ok(sink.flush()?)
        },
        |handoff| {
            let mut pipe = Pipe {
                chunk: Vec::with_capacity(CHUNK),
                handoff,
            };
            let produced = produce(&mut pipe)?;
            pipe.send()?;
            Ok(produced)
        },
    )
}

/// The formatting thread's end of [`write_behind`].
struct Pipe<'h> {
    chunk: Vec<u8>,
    handoff: &'h Handoff<Vec<u8>>,
}

impl Pipe<'_> {
    fn send(&mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = self.handoff.reuse().unwrap_or_else(|| Vec::with_capacity(CHUNK));
        self.handoff.send(std::mem::replace(&mut self.chunk, next))
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // Cut into chunks of at most CHUNK bytes, however much comes at once.
        let mut rest = data;
        while !rest.is_empty() {
            let (now, later) = rest.split_at((CHUNK - self.chunk.len()).min(rest.len()));
            self.chunk.extend_from_slice(now);
            rest = later;
            if self.chunk.len() >= CHUNK {
                self.send()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `'col', a."col", …` over every column of a table: the arguments of a `json_object`.
pub(crate) fn pairs(conn: &Connection, table: &str, alias: &str) -> rusqlite::Result<String> {
    let pairs: Vec<String> = table_columns(conn, table)?
        .iter()
        .map(|c| format!("'{c}', {alias}.\"{c}\""))
        .collect();
    Ok(pairs.join(", "))
}

/// Outputs for the writers' tests.
#[cfg(test)]
pub(crate) mod test_outputs {
    use std::io::Write;

    /// An output that takes `room` bytes, then fails as a full disk does.
    pub(crate) struct FillingDisk {
        pub room: usize,
        pub taken: Vec<u8>,
    }

    impl FillingDisk {
        pub(crate) fn with_room(room: usize) -> FillingDisk {
            FillingDisk {
                room,
                taken: Vec::new(),
            }
        }
    }

    impl Write for FillingDisk {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if self.taken.len() + data.len() > self.room {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
            self.taken.extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An output that keeps what it is given and the largest single write.
    #[derive(Default)]
    pub(crate) struct Largest {
        pub largest: usize,
        pub taken: Vec<u8>,
    }

    impl Write for Largest {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.largest = self.largest.max(data.len());
            self.taken.extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_outputs::{FillingDisk, Largest};
    use super::*;

    /// Writes the numbers 0.. in pieces of uneven size, `total` bytes in all; returns
    /// how many bytes it got to write.
    fn numbers(out: &mut dyn Write, total: usize) -> Result<usize, ExportError> {
        let mut written = 0;
        let mut i = 0u32;
        while written < total {
            let piece: Vec<u8> = (0..(i % 37) + 1).flat_map(|k| (i + k).to_le_bytes()).collect();
            out.write_all(&piece)?;
            written += piece.len();
            i += 1;
        }
        Ok(written)
    }

    #[test]
    fn write_behind_delivers_every_byte_in_order() {
        let mut expected = Vec::new();
        let n = numbers(&mut expected, 3 * CHUNK + 12_345).unwrap();
        let mut disk = FillingDisk::with_room(usize::MAX);
        assert_eq!(
            write_behind(&mut disk, |out| numbers(out, 3 * CHUNK + 12_345)).unwrap(),
            n
        );
        assert_eq!(disk.taken, expected);
    }

    #[test]
    fn one_large_write_is_passed_on_in_chunks() {
        let big: Vec<u8> = (0..3 * CHUNK + 5).map(|i| (i % 251) as u8).collect();
        let mut out = Largest::default();
        write_behind(&mut out, |w| Ok(w.write_all(&big)?)).unwrap();
        assert_eq!(out.taken, big);
        assert_eq!(out.largest, CHUNK, "a record of any size is held a chunk at a time");
    }

    #[test]
    fn a_failing_output_stops_the_export_with_its_own_error() {
        let mut disk = FillingDisk::with_room(CHUNK * 2);
        let mut attempted = 0;
        let err = write_behind(&mut disk, |out| -> Result<(), ExportError> {
            let mut i = 0;
            let mut piece = [0u8; 1000];
            loop {
                piece[0] = i as u8;
                out.write_all(&piece)?;
                attempted += piece.len();
                i += 1;
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("no space left on device"), "{err}");
        // The producer stopped within the chunks that may wait, not at the end of time.
        assert!(
            attempted <= CHUNK * (WAITING + 4),
            "wrote {attempted} bytes after the output failed"
        );
    }

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
        // A huge value is not sent back whole.
        let said = Plan::new(&req(&"é".repeat(100_000), "csv"), tz)
            .unwrap_err()
            .to_string();
        assert!(
            said.starts_with(&format!("\"{}…\" is not a dataset", "é".repeat(64))),
            "{said}"
        );
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
        // Years past 9999 would be stored as `+10000-…`, which sorts before `2026-…`.
        for bad in ["+10000-01-01", "10000-01-01", "2026-1-5", " 2026-11-05", "0000-01-01"] {
            r.filters = Some(ExportFilters {
                from: Some(bad.into()),
                ..Default::default()
            });
            assert!(
                matches!(Plan::new(&r, tz), Err(PlanError::BadDate("from", _))),
                "{bad:?}"
            );
        }
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
        // The last day there is: no upper bound at all, rather than one in year 10000.
        r.filters = Some(ExportFilters {
            to: Some("9999-12-31".into()),
            ..Default::default()
        });
        assert_eq!(Plan::new(&r, tz).unwrap().created_before, None);
    }
}
