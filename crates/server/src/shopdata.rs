//! Shop data (shops, customers, tickets, invoices, inventory, transactions) as
//! resources: one description per table drives list, get, create, update and delete, so
//! every resource validates, filters and pages the same way.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use serde_json::{Map, Value as Json};

use crate::error::ApiError;

/// A column's type on the wire and in SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Time,
}

/// A writable column of a resource.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// Longest text accepted (bytes).
    pub max_len: usize,
    /// Allowed values, for enumerations.
    pub allowed: Option<&'static [&'static str]>,
    /// Whether `?name=value` filters lists.
    pub filter: bool,
    /// Smallest and largest whole number accepted (`Int` columns).
    pub range: (i64, i64),
    /// Text that must be exactly `max_len` ASCII digits (a card's last four).
    pub digits: bool,
}

/// The largest amount of money accepted in one field, in cents (ten billion in the
/// currency). Exports and the data-subject export add amounts up in SQLite's 64-bit
/// integers: with every amount under this, a customer or invoice would need millions of
/// rows to overflow the sum, where two writes of `i64::MAX` used to make every export of
/// the shop fail.
pub const MAX_CENTS: i64 = 1_000_000_000_000;

/// The largest count of things (stock, a line's quantity) accepted.
pub const MAX_COUNT: i64 = 1_000_000_000;

const fn text(name: &'static str, max_len: usize) -> Column {
    Column {
        name,
        kind: Kind::Text,
        max_len,
        allowed: None,
        filter: false,
        range: (i64::MIN, i64::MAX),
        digits: false,
    }
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int,
        max_len: 0,
        allowed: None,
        filter: false,
        range: (i64::MIN, i64::MAX),
        digits: false,
    }
}

const fn time(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Time,
        max_len: 0,
        allowed: None,
        filter: false,
        range: (i64::MIN, i64::MAX),
        digits: false,
    }
}

/// Exactly `n` digits, such as the last four of a card.
const fn digits(name: &'static str, n: usize) -> Column {
    let mut c = text(name, n);
    c.digits = true;
    c
}

/// An amount of money in cents, positive or negative (a refund, a correction).
const fn money(name: &'static str) -> Column {
    let mut c = int(name);
    c.range = (-MAX_CENTS, MAX_CENTS);
    c
}

/// A price or cost in cents: never below zero.
const fn price(name: &'static str) -> Column {
    let mut c = int(name);
    c.range = (0, MAX_CENTS);
    c
}

/// A count of things, from `min`.
const fn count(name: &'static str, min: i64) -> Column {
    let mut c = int(name);
    c.range = (min, MAX_COUNT);
    c
}

const fn filtered(mut c: Column) -> Column {
    c.filter = true;
    c
}

const fn one_of(mut c: Column, allowed: &'static [&'static str]) -> Column {
    c.allowed = Some(allowed);
    c
}

/// Who may write a resource (reading is open to every role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRule {
    /// Every role.
    Everyone,
    /// Owners, managers and technicians (inventory).
    StockKeepers,
    /// Owners and managers (shops).
    Managers,
}

/// A table exposed as a resource.
#[derive(Debug)]
pub struct Spec {
    /// URL segment, e.g. `tickets`.
    pub path: &'static str,
    pub table: &'static str,
    /// Singular name for messages, e.g. `ticket`.
    pub what: &'static str,
    pub columns: &'static [Column],
    pub write: WriteRule,
    /// Defaults applied on create when a column is not given.
    pub defaults: &'static [(&'static str, &'static str)],
    /// A column that names who wrote the record (a ticket note's author): on create
    /// without it, the signed-in person's user id.
    pub author: Option<&'static str>,
}

pub static SHOPS: Spec = Spec {
    path: "shops",
    table: "shops",
    what: "shop",
    columns: &[
        text("name", 200),
        text("address", 500),
        text("phone", 50),
        text("email", 254),
    ],
    write: WriteRule::Managers,
    defaults: &[],
    author: None,
};

pub static CUSTOMERS: Spec = Spec {
    path: "customers",
    table: "customers",
    what: "customer",
    columns: &[
        filtered(int("shop_id")),
        text("first_name", 200),
        text("last_name", 200),
        filtered(text("email", 254)),
        filtered(text("phone", 50)),
        text("address", 500),
        text("city", 200),
        text("postal_code", 20),
        text("notes", 10_000),
    ],
    write: WriteRule::Everyone,
    defaults: &[],
    author: None,
};

pub static TICKETS: Spec = Spec {
    path: "tickets",
    table: "tickets",
    what: "ticket",
    columns: &[
        filtered(int("shop_id")),
        filtered(int("customer_id")),
        text("device_type", 100),
        text("device_make", 100),
        text("device_model", 200),
        text("serial_number", 100),
        text("problem", 10_000),
        filtered(one_of(text("status", 40), repairops_api::TICKET_STATUSES)),
        price("estimate_cents"),
        filtered(int("technician_id")),
        time("completed_at"),
    ],
    write: WriteRule::Everyone,
    defaults: &[("status", "New")],
    author: None,
};

pub static INVOICES: Spec = Spec {
    path: "invoices",
    table: "invoices",
    what: "invoice",
    columns: &[
        filtered(int("shop_id")),
        filtered(int("customer_id")),
        filtered(int("ticket_id")),
        text("number", 50),
        filtered(one_of(text("status", 20), repairops_api::INVOICE_STATUSES)),
        money("subtotal_cents"),
        money("tax_cents"),
        money("total_cents"),
        time("issued_at"),
    ],
    write: WriteRule::Everyone,
    defaults: &[("status", "draft")],
    author: None,
};

pub static INVENTORY: Spec = Spec {
    path: "inventory",
    table: "inventory",
    what: "inventory item",
    columns: &[
        filtered(int("shop_id")),
        filtered(text("sku", 64)),
        text("name", 200),
        count("stock", -MAX_COUNT),
        count("reorder_level", 0),
        price("cost_cents"),
        price("price_cents"),
    ],
    write: WriteRule::StockKeepers,
    defaults: &[],
    author: None,
};

pub static TRANSACTIONS: Spec = Spec {
    path: "transactions",
    table: "transactions",
    what: "transaction",
    columns: &[
        filtered(int("shop_id")),
        filtered(one_of(text("kind", 20), repairops_api::TRANSACTION_KINDS)),
        money("total_cents"),
        filtered(one_of(text("payment_method", 20), repairops_api::PAYMENT_METHODS)),
        filtered(int("customer_id")),
        filtered(int("invoice_id")),
        text("card_brand", 30),
        digits("card_last4", 4),
    ],
    write: WriteRule::Everyone,
    defaults: &[],
    author: None,
};

pub static PAYMENTS: Spec = Spec {
    path: "payments",
    table: "payments",
    what: "payment",
    columns: &[
        filtered(int("invoice_id")),
        filtered(one_of(text("method", 20), repairops_api::PAYMENT_METHODS)),
        money("amount_cents"),
        time("paid_at"),
        text("card_brand", 30),
        digits("card_last4", 4),
    ],
    write: WriteRule::Everyone,
    defaults: &[],
    author: None,
};

/// A note on a ticket (what the technician found, what the customer was told).
pub static TICKET_NOTES: Spec = Spec {
    path: "ticket-notes",
    table: "ticket_notes",
    what: "ticket note",
    columns: &[
        filtered(int("ticket_id")),
        filtered(int("author_id")),
        text("body", 10_000),
    ],
    write: WriteRule::Everyone,
    defaults: &[],
    author: Some("author_id"),
};

/// A message to or from a customer (text, email or call), about a ticket or not.
pub static COMMUNICATIONS: Spec = Spec {
    path: "communications",
    table: "communications",
    what: "communication",
    columns: &[
        filtered(int("customer_id")),
        filtered(int("ticket_id")),
        filtered(one_of(text("channel", 10), repairops_api::COMMUNICATION_CHANNELS)),
        one_of(text("direction", 3), repairops_api::COMMUNICATION_DIRECTIONS),
        text("body", 10_000),
    ],
    write: WriteRule::Everyone,
    defaults: &[],
    author: None,
};

/// A line of an invoice: a part or labour. The invoice's totals are the invoice's own
/// fields, set by whoever writes the invoice (a till may round or discount).
pub static INVOICE_LINES: Spec = Spec {
    path: "invoice-lines",
    table: "invoice_lines",
    what: "invoice line",
    columns: &[
        filtered(int("invoice_id")),
        one_of(text("kind", 10), repairops_api::INVOICE_LINE_KINDS),
        text("description", 500),
        count("quantity", 1),
        price("unit_price_cents"),
        filtered(int("inventory_id")),
    ],
    write: WriteRule::Everyone,
    defaults: &[],
    author: None,
};

/// Every resource, for routing and tests.
pub static ALL: [&Spec; 10] = [
    &SHOPS,
    &CUSTOMERS,
    &TICKETS,
    &INVOICES,
    &INVENTORY,
    &TRANSACTIONS,
    &PAYMENTS,
    &TICKET_NOTES,
    &COMMUNICATIONS,
    &INVOICE_LINES,
];

/// Parses a timestamp given as RFC 3339 or as a date (midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    parse_time_filter(s).map(|t| t.start(chrono_tz::UTC))
}

/// A calendar day written `YYYY-MM-DD` in the years 1 to 9999. Stored times are text
/// compared as text, which is time order only with four-digit years: chrono would also
/// take `+10000-01-01` or `2026-1-5`, and a bound made from those would turn a filter
/// upside down.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| chrono::Datelike::year(d) >= 1)
}

/// A `from` or `to` query filter: a whole day, or a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeFilter {
    Day(NaiveDate),
    At(DateTime<Utc>),
}

/// Parses a `from` or `to` filter: a date (`2026-11-30`, see [`parse_day`]) or an
/// RFC 3339 time, in UTC in the years 1 to 9999 (as stored, for the same reason).
pub fn parse_time_filter(s: &str) -> Option<TimeFilter> {
    parse_day(s).map(TimeFilter::Day).or_else(|| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
            .map(TimeFilter::At)
    })
}

impl TimeFilter {
    /// Where `from` starts: the moment, or for a day the moment the shop's day begins
    /// in `zone` (the shop's time zone: a manager asking for 30 November means their 30
    /// November, not UTC's).
    pub fn start(self, zone: Tz) -> DateTime<Utc> {
        match self {
            TimeFilter::Day(d) => local_day_start(d, zone),
            TimeFilter::At(t) => t,
        }
    }

    /// Where `to` ends: for a day, the moment the next day begins in `zone` (so all of
    /// it is in), else the moment; `None` after 9999-12-31, where no stored time can be.
    pub fn end(self, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            TimeFilter::Day(d) => d
                .succ_opt()
                .filter(|n| chrono::Datelike::year(n) <= 9999)
                .map(|n| local_day_start(n, zone)),
            TimeFilter::At(t) => Some(t),
        }
    }
}

/// The moment a calendar day begins in `zone`: its midnight, the earlier one where a
/// clock change repeats midnight, the first hour that exists where one skips it.
pub fn local_day_start(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    (0..24)
        .find_map(|h| {
            date.and_hms_opt(h, 0, 0)
                .and_then(|t| zone.from_local_datetime(&t).earliest())
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| date.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// Stored form of a time.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Checks and converts one JSON field to its stored value.
fn to_value(spec: &Spec, col: &Column, v: &Json) -> Result<Value, ApiError> {
    let bad = |expect: &str| ApiError::invalid(format!("{}.{} must be {expect}", spec.what, col.name));
    match (col.kind, v) {
        (_, Json::Null) => Ok(Value::Null),
        (Kind::Int, Json::Number(n)) => match n.as_i64() {
            Some(i) if (col.range.0..=col.range.1).contains(&i) => Ok(Value::Integer(i)),
            Some(_) => Err(bad(&format!("a whole number from {} to {}", col.range.0, col.range.1))),
            None => Err(bad("a whole number")),
        },
        (Kind::Text, Json::String(s)) => {
            if col.digits && (s.len() != col.max_len || !s.bytes().all(|b| b.is_ascii_digit())) {
                return Err(bad(&format!("{} digits", col.max_len)));
            }
            if s.len() > col.max_len {
                return Err(bad(&format!("at most {} characters", col.max_len)));
            }
            if s.chars().any(|c| c == '\0') {
                return Err(bad("text without NUL characters"));
            }

            if let Some(allowed) = col.allowed
                && !allowed.contains(&s.as_str())
            {
                return Err(bad(&format!("one of: {}", allowed.join(", "))));
            }
            Ok(Value::Text(s.clone()))
        }
        (Kind::Time, Json::String(s)) => parse_time(s)
            .map(|t| Value::Text(time_text(t)))
            .ok_or_else(|| bad("a time such as 2026-11-30T09:00:00Z")),
        (Kind::Int, _) => Err(bad("a whole number")),
        (Kind::Text, _) => Err(bad("text")),
        (Kind::Time, _) => Err(bad("a time such as 2026-11-30T09:00:00Z")),
    }
}

fn json_of(v: Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::from(i),
        Value::Real(f) => Json::from(f),
        Value::Text(s) => Json::String(s),
        Value::Blob(b) => Json::String(hex::encode(b)),
    }
}

fn select_list(spec: &Spec) -> String {
    let mut cols = vec!["id"];
    cols.extend(spec.columns.iter().map(|c| c.name));
    cols.push("created_at");
    cols.push("updated_at");
    cols.join(", ")
}

fn row_to_json(spec: &Spec, row: &rusqlite::Row<'_>) -> rusqlite::Result<Map<String, Json>> {
    let mut m = Map::new();
    m.insert("id".into(), json_of(row.get(0)?));
    for (i, c) in spec.columns.iter().enumerate() {
        m.insert(c.name.into(), json_of(row.get(i + 1)?));
    }
    let n = spec.columns.len();
    m.insert("created_at".into(), json_of(row.get(n + 1)?));
    m.insert("updated_at".into(), json_of(row.get(n + 2)?));
    Ok(m)
}

/// Lists ask for one row more than `limit`; this trims it and names the cursor of the
/// next page (the last row's key), or none at the end.
pub fn page_of<T>(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> Option<String>) -> (Vec<T>, Option<String>) {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        let next = items.last().and_then(&key);
        (items, next)
    } else {
        (items, None)
    }
}

/// A list's `limit`: 1 to [`MAX_LIMIT`].
pub fn parse_limit(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| ApiError::bad_request(format!("limit must be a number from 1 to {MAX_LIMIT}")))
}

/// A list's `cursor`: the `next` of the page before.
pub fn parse_cursor(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request("cursor must be the `next` value of a previous page"))
}

/// `limit` (1 to [`MAX_LIMIT`], 50 by default) and `cursor` (an id) of a list that takes
/// nothing else; any other parameter is an error naming what is accepted.
pub fn limit_and_cursor(query: &HashMap<String, String>) -> Result<(i64, Option<i64>), ApiError> {
    let mut limit = 50;
    let mut cursor = None;
    for (key, raw) in query {
        match key.as_str() {
            "limit" => limit = parse_limit(raw)?,
            "cursor" => cursor = Some(parse_cursor(raw)?),
            other => {
                return Err(ApiError::bad_request(format!(
                    "{other:?} is not a parameter of this list; use limit and cursor"
                )));
            }
        }
    }
    Ok((limit, cursor))
}

/// A page of control-plane rows, newest first. `select` is a `SELECT … WHERE …` whose
/// placeholders `?1…` take `args`; paging by `limit` and `cursor` from `query` is added.
pub async fn newest_first<T: Send + 'static>(
    db: &crate::db::Db,
    select: String,
    mut args: Vec<Value>,
    query: &HashMap<String, String>,
    from_row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    id: fn(&T) -> i64,
) -> Result<repairops_api::Page<T>, ApiError> {
    let (limit, cursor) = limit_and_cursor(query)?;
    let sql = format!(
        "{select} AND id < ?{} ORDER BY id DESC LIMIT ?{}",
        args.len() + 1,
        args.len() + 2
    );
    args.push(Value::Integer(cursor.unwrap_or(i64::MAX)));
    args.push(Value::Integer(limit + 1));
    let items = db
        .read(move |c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(args.iter()), from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?;
    let (items, next) = page_of(items, limit, |t| Some(id(t).to_string()));
    Ok(repairops_api::Page { items, next })
}

/// A record as JSON fields.
pub type Record = Map<String, Json>;

/// Largest page.
pub const MAX_LIMIT: i64 = 500;

/// A list query: filters, date range on `created_at` (dates are the shop's days in
/// `zone`), paging.
pub fn list(
    conn: &Connection,
    spec: &Spec,
    query: &HashMap<String, String>,
    zone: Tz,
) -> Result<(Vec<Record>, Option<String>), ApiError> {
    let mut sql = format!("SELECT {} FROM {} WHERE 1 = 1", select_list(spec), spec.table);
    let mut args: Vec<Value> = Vec::new();
    let mut limit = 50i64;
    for (key, raw) in query {
        match key.as_str() {
            "limit" => limit = parse_limit(raw)?,
            "cursor" => {
                let after = parse_cursor(raw)?;
                sql.push_str(" AND id > ?");
                args.push(Value::Integer(after));
            }
            "from" | "to" => {
                let t = parse_time_filter(raw).ok_or_else(|| {
                    ApiError::bad_request(format!("{key} must be a date (2026-11-30) or a time (RFC 3339)"))
                })?;
                if key == "from" {
                    sql.push_str(" AND created_at >= ?");
                    args.push(Value::Text(time_text(t.start(zone))));
                } else if let Some(end) = t.end(zone) {
                    // A date means the whole day; a time, up to and including it.
                    sql.push_str(if matches!(t, TimeFilter::Day(_)) {
                        " AND created_at < ?"
                    } else {
                        " AND created_at <= ?"
                    });
                    args.push(Value::Text(time_text(end)));
                }
            }
            other => {
                let col = spec
                    .columns
                    .iter()
                    .find(|c| c.name == other && c.filter)
                    .ok_or_else(|| {
                        let names: Vec<&str> = spec.columns.iter().filter(|c| c.filter).map(|c| c.name).collect();
                        ApiError::bad_request(format!(
                            "{other:?} is not a filter of {}; use limit, cursor, from, to{}{}",
                            spec.path,
                            if names.is_empty() { "" } else { ", " },
                            names.join(", ")
                        ))
                    })?;
                let v = match col.kind {
                    Kind::Int => Json::from(
                        raw.parse::<i64>()
                            .map_err(|_| ApiError::bad_request(format!("{other} must be a whole number")))?,
                    ),
                    _ => Json::String(raw.clone()),
                };
                sql.push_str(&format!(" AND {} = ?", col.name));
                args.push(to_value(spec, col, &v)?);
            }
        }
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    args.push(Value::Integer(limit + 1));
    let mut stmt = conn.prepare_cached(&sql)?;
    let items: Vec<Map<String, Json>> = stmt
        .query_map(params_from_iter(args.iter()), |r| row_to_json(spec, r))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(page_of(items, limit, |m| m.get("id").map(|id| id.to_string())))
}

pub fn get(conn: &Connection, spec: &Spec, id: i64) -> Result<Map<String, Json>, ApiError> {
    let sql = format!("SELECT {} FROM {} WHERE id = ?1", select_list(spec), spec.table);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(row_to_json(spec, r)?),
        None => Err(ApiError::not_found(&format!("{} {id}", spec.what))),
    }
}

/// Inserts a record from a validated body (the typed input already refused unknown
/// fields and wrong shapes); returns it as stored.
pub fn create(
    conn: &Connection,
    spec: &Spec,
    body: &Map<String, Json>,
    now: DateTime<Utc>,
) -> Result<Map<String, Json>, ApiError> {
    let mut names = Vec::new();
    let mut args = Vec::new();
    for col in spec.columns {
        let v = match body.get(col.name) {
            Some(v) => to_value(spec, col, v)?,
            None => match spec.defaults.iter().find(|(n, _)| *n == col.name) {
                Some((_, d)) => Value::Text((*d).to_string()),
                None => continue,
            },
        };
        names.push(col.name);
        args.push(v);
    }
    let stamp = time_text(now);
    names.push("created_at");
    names.push("updated_at");
    args.push(Value::Text(stamp.clone()));
    args.push(Value::Text(stamp));
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        spec.table,
        names.join(", "),
        vec!["?"; names.len()].join(", ")
    );
    conn.prepare_cached(&sql)?.execute(params_from_iter(args.iter()))?;
    get(conn, spec, conn.last_insert_rowid())
}

/// Changes the given fields.
pub fn update(
    conn: &Connection,
    spec: &Spec,
    id: i64,
    body: &Map<String, Json>,
    now: DateTime<Utc>,
) -> Result<Map<String, Json>, ApiError> {
    let mut sets = Vec::new();
    let mut args = Vec::new();
    for col in spec.columns {
        if let Some(v) = body.get(col.name) {
            sets.push(format!("{} = ?", col.name));
            args.push(to_value(spec, col, v)?);
        }
    }
    sets.push("updated_at = ?".into());
    args.push(Value::Text(time_text(now)));
    args.push(Value::Integer(id));
    let sql = format!("UPDATE {} SET {} WHERE id = ?", spec.table, sets.join(", "));
    let changed = conn.prepare_cached(&sql)?.execute(params_from_iter(args.iter()))?;
    if changed == 0 {
        return Err(ApiError::not_found(&format!("{} {id}", spec.what)));
    }
    get(conn, spec, id)
}

pub fn delete(conn: &Connection, spec: &Spec, id: i64) -> Result<(), ApiError> {
    let sql = format!("DELETE FROM {} WHERE id = ?1", spec.table);
    match conn.execute(&sql, [id]) {
        Ok(0) => Err(ApiError::not_found(&format!("{} {id}", spec.what))),
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(ApiError::conflict(format!(
                "{} {id} is still used by other records (for example tickets or invoices); delete or reassign those first",
                spec.what
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// The JSON object of a typed body.
pub fn body_map(body: &impl serde::Serialize) -> Result<Map<String, Json>, ApiError> {
    match serde_json::to_value(body) {
        Ok(Json::Object(m)) => Ok(m),
        _ => Err(ApiError::bad_request("the request body must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_outside_the_years_1_to_9999_are_refused() {
        assert!(parse_time("2026-11-30T09:00:00Z").is_some());
        assert!(parse_time("9999-12-31T23:59:59Z").is_some());
        // Stored as text, these would sort before year 1 or after 9999.
        assert_eq!(parse_time("0000-06-01T00:00:00Z"), None);
        assert_eq!(parse_time("0001-01-01T00:00:00+01:00"), None);
        assert_eq!(parse_time("9999-12-31T23:00:00-02:00"), None);
    }

    #[test]
    fn amounts_and_counts_past_their_range_are_refused_with_the_range() {
        let column = |spec: &'static Spec, name: &str| *spec.columns.iter().find(|c| c.name == name).unwrap();
        let amount = column(&PAYMENTS, "amount_cents");
        assert_eq!(
            to_value(&PAYMENTS, &amount, &serde_json::json!(MAX_CENTS)).unwrap(),
            Value::Integer(MAX_CENTS)
        );
        assert_eq!(
            to_value(&PAYMENTS, &amount, &serde_json::json!(-4_599)).unwrap(),
            Value::Integer(-4_599)
        );
        for too_big in [MAX_CENTS + 1, i64::MAX, -MAX_CENTS - 1, i64::MIN] {
            let e = to_value(&PAYMENTS, &amount, &serde_json::json!(too_big)).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(
                e.message,
                "payment.amount_cents must be a whole number from -1000000000000 to 1000000000000"
            );
        }
        let last4 = column(&PAYMENTS, "card_last4");
        assert!(to_value(&PAYMENTS, &last4, &serde_json::json!("4242")).is_ok());
        for bad in ["", "424", "42x2", "٤٢٤٢"] {
            let e = to_value(&PAYMENTS, &last4, &serde_json::json!(bad)).unwrap_err();
            assert_eq!(e.message, "payment.card_last4 must be 4 digits", "{bad:?}");
        }
        let quantity = column(&INVOICE_LINES, "quantity");
        assert!(to_value(&INVOICE_LINES, &quantity, &serde_json::json!(0)).is_err());
        assert!(to_value(&INVOICE_LINES, &quantity, &serde_json::json!(3)).is_ok());
        // References are checked by the database (a missing row is refused there).
        let invoice = column(&PAYMENTS, "invoice_id");
        assert!(to_value(&PAYMENTS, &invoice, &serde_json::json!(i64::MAX)).is_ok());
    }
}
