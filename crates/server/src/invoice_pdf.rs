//! Invoices as a PDF: one A4 page an invoice, with the shop, the customer, the lines,
//! the totals and the payments, written a page at a time (`repairops-pdf`), so memory
//! stays flat however many invoices the dates cover.

use std::io::Write;

use repairops_pdf::{Document, Style};
use rusqlite::{Connection, params_from_iter};

use crate::exports::{ExportError, Plan};

const WIDTH: f32 = 210.0;
const HEIGHT: f32 = 297.0;
/// Lines listed on the page; more are summarised in one line.
const MAX_LINES: usize = 30;

/// Cents as an amount: `1234` → `12.34`.
pub fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

/// The page's margins and columns, in millimetres.
const LEFT: f32 = 20.0;
const RIGHT: f32 = WIDTH - LEFT;
/// Where the invoice's number, date and status start, beside the shop's details.
const META: f32 = 130.0;
/// The right edges of the quantity and unit price columns.
const QTY: f32 = 135.0;
const UNIT: f32 = 162.0;

fn style(bold: bool) -> Style {
    if bold { Style::Bold } else { Style::Regular }
}

fn opt(v: Option<String>) -> String {
    v.unwrap_or_default()
}

/// Writes the plan's invoices as one PDF; returns how many.
pub fn write(
    conn: &Connection,
    plan: &Plan,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    let (filter, args) = plan.filter_sql();
    let mut invoices = conn.prepare(&format!(
        "SELECT t.id, t.number, t.status, t.subtotal_cents, t.tax_cents, t.total_cents, coalesce(t.issued_at, t.created_at),
                t.ticket_id, s.name, s.address, s.phone, s.email,
                trim(c.first_name || ' ' || c.last_name), c.email, c.phone,
                trim(coalesce(c.address, '') || ' ' || coalesce(c.postal_code, '') || ' ' || coalesce(c.city, '')),
                k.device_make, k.device_model, k.serial_number
         FROM invoices t JOIN shops s ON s.id = t.shop_id JOIN customers c ON c.id = t.customer_id
              LEFT JOIN tickets k ON k.id = t.ticket_id{filter} ORDER BY t.id"
    ))?;
    let mut lines = conn.prepare(
        "SELECT kind, description, quantity, unit_price_cents FROM invoice_lines WHERE invoice_id = ?1 ORDER BY id",
    )?;
    let mut payments = conn.prepare(
        "SELECT method, card_brand, card_last4, amount_cents, paid_at FROM payments WHERE invoice_id = ?1 ORDER BY id",
    )?;
    let mut rows = invoices.query(params_from_iter(args.iter()))?;
    // Pages go out as they are made; the buffer only evens out the writes.
    let mut doc = Document::new(std::io::BufWriter::with_capacity(256 * 1024, out), "Invoices")?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let number: String = r.get(1)?;
        let mut p = doc.page();
        let bold = Style::Bold;
        let plain = Style::Regular;
        // The shop, and the invoice's number, date and status beside it.
        let mut y = HEIGHT - 25.0;
        let invoice_width = p.width_mm(bold, 18.0, "INVOICE");
        p.text_within(
            LEFT,
            y,
            18.0,
            bold,
            RIGHT - invoice_width - 5.0 - LEFT,
            &r.get::<_, String>(8)?,
        );
        p.text_right(RIGHT, y, 18.0, bold, "INVOICE");
        y -= 7.0;
        for v in [opt(r.get(9)?), opt(r.get(10)?), opt(r.get(11)?)] {
            if !v.is_empty() {
                p.text_within(LEFT, y, 10.0, plain, META - 5.0 - LEFT, &v);
                y -= 5.0;
            }
        }
        let date: String = r.get(6)?;
        let status: String = r.get(2)?;
        for (i, v) in [
            format!("Invoice {number}"),
            format!("Date {}", date.get(..10).unwrap_or(&date)),
            format!("Status {status}"),
        ]
        .iter()
        .enumerate()
        {
            p.text_within(META, HEIGHT - 32.0 - 5.0 * i as f32, 10.0, plain, RIGHT - META, v);
        }
        // The customer, and the repair the invoice is for.
        y = y.min(HEIGHT - 50.0) - 6.0;
        p.text(LEFT, y, 11.0, bold, "Bill to");
        y -= 6.0;
        for v in [opt(r.get(12)?), opt(r.get(13)?), opt(r.get(14)?), opt(r.get(15)?)] {
            if !v.is_empty() {
                p.text_within(LEFT, y, 10.0, plain, RIGHT - LEFT, &v);
                y -= 5.0;
            }
        }
        if let Some(ticket) = r.get::<_, Option<i64>>(7)? {
            let device = format!("{} {}", opt(r.get(16)?), opt(r.get(17)?));
            let serial = opt(r.get(18)?);
            let serial = if serial.is_empty() {
                String::new()
            } else {
                format!(", serial {serial}")
            };
            let repair = format!("Repair ticket #{ticket}: {}{serial}", device.trim());
            p.text_within(LEFT, y - 2.0, 10.0, plain, RIGHT - LEFT, &repair);
            y -= 7.0;
        }
        // The lines.
        y -= 6.0;
        let qty_width = p.width_mm(bold, 10.0, "Qty");
        p.text(LEFT, y, 10.0, bold, "Description");
        p.text_right(QTY, y, 10.0, bold, "Qty");
        p.text_right(UNIT, y, 10.0, bold, "Unit");
        p.text_right(RIGHT, y, 10.0, bold, "Amount");
        y -= 2.5;
        p.rule(LEFT, RIGHT, y);
        y -= 5.5;
        let description_width = QTY - qty_width - 5.0 - LEFT;
        let mut line_rows = lines.query([id])?;
        let mut shown = 0usize;
        let mut hidden = (0usize, 0i64);
        while let Some(l) = line_rows.next()? {
            let kind: String = l.get(0)?;
            let description: String = l.get(1)?;
            let quantity: i64 = l.get(2)?;
            let unit: i64 = l.get(3)?;
            let line_total = quantity.saturating_mul(unit);
            if shown == MAX_LINES {
                hidden = (hidden.0 + 1, hidden.1.saturating_add(line_total));
                continue;
            }
            let label = if kind == "labor" && !description.to_lowercase().starts_with("labor") {
                format!("Labor: {description}")
            } else {
                description
            };
            p.text_within(LEFT, y, 10.0, plain, description_width, &label);
            p.text_right(QTY, y, 10.0, plain, &quantity.to_string());
            p.text_right(UNIT, y, 10.0, plain, &amount(unit));
            p.text_right(RIGHT, y, 10.0, plain, &amount(line_total));
            y -= 5.5;
            shown += 1;
        }
        if hidden.0 > 0 {
            p.text(LEFT, y, 10.0, plain, &format!("… and {} more lines", hidden.0));
            p.text_right(RIGHT, y, 10.0, plain, &amount(hidden.1));
            y -= 5.5;
        }
        p.rule(LEFT, RIGHT, y + 2.5);
        // The totals.
        y -= 4.0;
        for (label, col, strong) in [("Subtotal", 3, false), ("Tax", 4, false), ("Total", 5, true)] {
            let v: Option<i64> = r.get(col)?;
            p.text_right(UNIT, y, 11.0, style(strong), label);
            p.text_right(
                RIGHT,
                y,
                11.0,
                style(strong),
                &v.map(amount).unwrap_or_else(|| "-".into()),
            );
            y -= 6.0;
        }
        // The payments.
        y -= 6.0;
        p.text(LEFT, y, 11.0, bold, "Payments");
        y -= 6.0;
        let mut pay_rows = payments.query([id])?;
        let mut any = false;
        while let Some(pay) = pay_rows.next()? {
            any = true;
            let method: String = pay.get(0)?;
            let card = match (pay.get::<_, Option<String>>(1)?, pay.get::<_, Option<String>>(2)?) {
                (Some(b), Some(l)) => format!(" ({b} ending {l})"),
                (Some(b), None) => format!(" ({b})"),
                _ => String::new(),
            };
            let paid: String = pay.get(4)?;
            let line = format!("{} {method}{card}", paid.get(..10).unwrap_or(&paid));
            p.text_within(LEFT, y, 10.0, plain, UNIT - LEFT, &line);
            p.text_right(RIGHT, y, 10.0, plain, &amount(pay.get(3)?));
            y -= 5.5;
            if y < 20.0 {
                break;
            }
        }
        if !any {
            p.text(LEFT, y, 10.0, plain, "No payment recorded.");
        }
        doc.add_page(p)?;
        if doc.pages().is_multiple_of(256) {
            progress(doc.pages() as u64);
        }
    }
    let n = doc.pages() as u64;
    doc.finish()?.flush()?;
    progress(n);
    Ok(n)
}
