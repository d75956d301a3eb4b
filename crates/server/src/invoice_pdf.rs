//! Invoices as a PDF: one A4 page an invoice, with the shop, the customer, the lines,
//! the totals and the payments, written a page at a time (`repairops-pdf`), so memory
//! stays flat however many invoices the dates cover.

use std::io::Write;

use repairops_pdf::{Document, Page, Style};
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

/// The layout helpers an invoice uses, over [`Page`].
trait Invoice {
    /// Text from `x`, cut at 90 characters.
    fn put(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str);
    /// Text ending at `x`.
    fn put_right(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str);
    /// A rule across the page between the margins.
    fn rule_across(&mut self, y: f32);
}

fn style(bold: bool) -> Style {
    if bold { Style::Bold } else { Style::Regular }
}

impl Invoice for Page {
    fn put(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str) {
        let shown: String = s.chars().take(90).collect();
        self.text(x, y, size, style(bold), &shown);
    }

    fn put_right(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str) {
        self.text_right(x, y, size, style(bold), s);
    }

    fn rule_across(&mut self, y: f32) {
        self.rule(20.0, WIDTH - 20.0, y);
    }
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
        let mut y = HEIGHT - 25.0;
        p.put(20.0, y, 18.0, true, &r.get::<_, String>(8)?);
        p.put_right(WIDTH - 20.0, y, 18.0, true, "INVOICE");
        y -= 7.0;
        for v in [opt(r.get(9)?), opt(r.get(10)?), opt(r.get(11)?)] {
            if !v.is_empty() {
                p.put(20.0, y, 10.0, false, &v);
                y -= 5.0;
            }
        }
        let date: String = r.get(6)?;
        p.put(130.0, HEIGHT - 32.0, 10.0, false, &format!("Invoice {number}"));
        p.put(
            130.0,
            HEIGHT - 37.0,
            10.0,
            false,
            &format!("Date {}", date.get(..10).unwrap_or(&date)),
        );
        p.put(
            130.0,
            HEIGHT - 42.0,
            10.0,
            false,
            &format!("Status {}", r.get::<_, String>(2)?),
        );
        y = y.min(HEIGHT - 50.0) - 6.0;
        p.put(20.0, y, 11.0, true, "Bill to");
        y -= 6.0;
        for v in [opt(r.get(12)?), opt(r.get(13)?), opt(r.get(14)?), opt(r.get(15)?)] {
            if !v.is_empty() {
                p.put(20.0, y, 10.0, false, &v);
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
            p.put(
                20.0,
                y - 2.0,
                10.0,
                false,
                &format!("Repair ticket #{ticket}: {}{serial}", device.trim()),
            );
            y -= 7.0;
        }
        y -= 6.0;
        p.put(20.0, y, 10.0, true, "Description");
        p.put_right(135.0, y, 10.0, true, "Qty");
        p.put_right(162.0, y, 10.0, true, "Unit");
        p.put_right(WIDTH - 20.0, y, 10.0, true, "Amount");
        y -= 2.5;
        p.rule_across(y);
        y -= 5.5;
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
            p.put(20.0, y, 10.0, false, &label.chars().take(60).collect::<String>());
            p.put_right(135.0, y, 10.0, false, &quantity.to_string());
            p.put_right(162.0, y, 10.0, false, &amount(unit));
            p.put_right(WIDTH - 20.0, y, 10.0, false, &amount(line_total));
            y -= 5.5;
            shown += 1;
        }
        if hidden.0 > 0 {
            p.put(20.0, y, 10.0, false, &format!("… and {} more lines", hidden.0));
            p.put_right(WIDTH - 20.0, y, 10.0, false, &amount(hidden.1));
            y -= 5.5;
        }
        p.rule_across(y + 2.5);
        y -= 4.0;
        for (label, col, bold) in [("Subtotal", 3, false), ("Tax", 4, false), ("Total", 5, true)] {
            let v: Option<i64> = r.get(col)?;
            p.put_right(162.0, y, 11.0, bold, label);
            p.put_right(
                WIDTH - 20.0,
                y,
                11.0,
                bold,
                &v.map(amount).unwrap_or_else(|| "-".into()),
            );
            y -= 6.0;
        }
        y -= 6.0;
        p.put(20.0, y, 11.0, true, "Payments");
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
            p.put(
                20.0,
                y,
                10.0,
                false,
                &format!("{} {method}{card}", paid.get(..10).unwrap_or(&paid)),
            );
            p.put_right(WIDTH - 20.0, y, 10.0, false, &amount(pay.get(3)?));
            y -= 5.5;
            if y < 20.0 {
                break;
            }
        }
        if !any {
            p.put(20.0, y, 10.0, false, "No payment recorded.");
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
