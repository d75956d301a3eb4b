//! Invoices as a PDF (printpdf): one A4 page an invoice, with the shop, the customer,
//! the lines, the totals and the payments.
//!
//! The text is set in DejaVu Sans, embedded in the file and cut down to Latin, Greek
//! and Cyrillic (`fonts/README.md`): PDF's built-in Helvetica knows only Windows-1252,
//! and a customer called Łukasz Żółć or Ελένη must not read `?ukasz ?ó??` on their
//! invoice. Characters the font lacks print as `?`.
//!
//! printpdf builds the document in memory, so a PDF export is limited to
//! [`MAX_INVOICES`] invoices; the request is refused before work starts with a message
//! to narrow the dates.

use std::io::Write;
use std::sync::OnceLock;

use printpdf::{
    Color, FontId, Line, LinePoint, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt,
    Rgb, TextItem,
};
use rusqlite::{Connection, params_from_iter};

use crate::exports::{ExportError, Plan};

/// Most invoices one PDF holds. printpdf keeps every page in memory until it writes the
/// file, about 45 KB an invoice: measured peaks of the whole process were 62.5 MiB for
/// 1,022 invoices, 85 MiB for 1,528, 106 MiB for 2,019 and 421 MiB for 9,026. This cap
/// keeps a PDF export under the 100 MiB every export stays within.
pub const MAX_INVOICES: u64 = 1_500;

const WIDTH: f32 = 210.0;
const HEIGHT: f32 = 297.0;
/// Lines listed on the page; more are summarised in one line.
const MAX_LINES: usize = 30;

static REGULAR_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// The two faces, parsed once per process.
fn parsed_faces() -> Option<&'static (ParsedFont, ParsedFont)> {
    static FACES: OnceLock<Option<(ParsedFont, ParsedFont)>> = OnceLock::new();
    FACES
        .get_or_init(|| {
            let mut warnings = Vec::new();
            let regular = ParsedFont::from_bytes(REGULAR_TTF, 0, &mut warnings)?;
            let bold = ParsedFont::from_bytes(BOLD_TTF, 0, &mut warnings)?;
            Some((regular, bold))
        })
        .as_ref()
}

/// A face added to one document: its id there, and its glyphs for measuring.
struct Face {
    id: FontId,
    font: &'static ParsedFont,
}

impl Face {
    /// `s` with every character the face lacks replaced by `?`.
    fn printable(&self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if c == ' ' || self.font.lookup_glyph_index(u32::from(c)).is_some() {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }

    /// Width of `s` (already printable) at `size` points, in millimetres.
    fn width_mm(&self, s: &str, size: f32) -> f32 {
        let units: u32 = s
            .chars()
            .filter_map(|c| self.font.lookup_glyph_index(u32::from(c)))
            .filter_map(|g| self.font.get_glyph_width(g))
            .map(u32::from)
            .sum();
        let em = f32::from(self.font.units_per_em.max(1));
        units as f32 / em * size * 25.4 / 72.0
    }
}

/// The regular and bold faces, added to one document.
struct Fonts {
    regular: Face,
    bold: Face,
}

impl Fonts {
    fn add_to(doc: &mut PdfDocument) -> Result<Fonts, ExportError> {
        let (regular, bold) = parsed_faces().ok_or_else(|| {
            ExportError::Io(std::io::Error::other(
                "the invoice font built into this program cannot be read",
            ))
        })?;
        Ok(Fonts {
            regular: Face {
                id: doc.add_font(regular),
                font: regular,
            },
            bold: Face {
                id: doc.add_font(bold),
                font: bold,
            },
        })
    }

    fn face(&self, bold: bool) -> &Face {
        if bold { &self.bold } else { &self.regular }
    }
}

/// Cents as an amount: `1234` → `12.34`.
pub fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

struct Page<'f> {
    fonts: &'f Fonts,
    ops: Vec<Op>,
}

impl<'f> Page<'f> {
    fn new(fonts: &'f Fonts) -> Page<'f> {
        Page { fonts, ops: Vec::new() }
    }

    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str) {
        let face = self.fonts.face(bold);
        let shown: String = s.chars().take(90).collect();
        self.show(x, y, size, face.id.clone(), face.printable(&shown));
    }

    fn show(&mut self, x: f32, y: f32, size: f32, font: FontId, s: String) {
        self.ops.extend([
            Op::StartTextSection,
            Op::SetTextCursor {
                pos: Point::new(Mm(x), Mm(y)),
            },
            Op::SetFont {
                font: PdfFontHandle::External(font),
                size: Pt(size),
            },
            Op::ShowText {
                items: vec![TextItem::Text(s)],
            },
            Op::EndTextSection,
        ]);
    }

    /// Text ending at `x`, measured with the face's own glyph widths.
    fn right(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str) {
        let face = self.fonts.face(bold);
        let shown = face.printable(s);
        let width = face.width_mm(&shown, size);
        self.show(x - width, y, size, face.id.clone(), shown);
    }

    fn rule(&mut self, y: f32) {
        self.ops.extend([
            Op::SetOutlineColor {
                col: Color::Rgb(Rgb {
                    r: 0.6,
                    g: 0.6,
                    b: 0.6,
                    icc_profile: None,
                }),
            },
            Op::SetOutlineThickness { pt: Pt(0.5) },
            Op::DrawLine {
                line: Line {
                    points: vec![
                        LinePoint {
                            p: Point::new(Mm(20.0), Mm(y)),
                            bezier: false,
                        },
                        LinePoint {
                            p: Point::new(Mm(WIDTH - 20.0), Mm(y)),
                            bezier: false,
                        },
                    ],
                    is_closed: false,
                },
            },
        ]);
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
    let total = crate::exports::count(conn, plan)?;
    if total > MAX_INVOICES {
        return Err(ExportError::TooLarge(too_many(total)));
    }
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
    let mut doc = PdfDocument::new("Invoices");
    let fonts = Fonts::add_to(&mut doc)?;
    let mut pages = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let number: String = r.get(1)?;
        let mut p = Page::new(&fonts);
        let mut y = HEIGHT - 25.0;
        p.text(20.0, y, 18.0, true, &r.get::<_, String>(8)?);
        p.right(WIDTH - 20.0, y, 18.0, true, "INVOICE");
        y -= 7.0;
        for v in [opt(r.get(9)?), opt(r.get(10)?), opt(r.get(11)?)] {
            if !v.is_empty() {
                p.text(20.0, y, 10.0, false, &v);
                y -= 5.0;
            }
        }
        let date: String = r.get(6)?;
        p.text(130.0, HEIGHT - 32.0, 10.0, false, &format!("Invoice {number}"));
        p.text(
            130.0,
            HEIGHT - 37.0,
            10.0,
            false,
            &format!("Date {}", date.get(..10).unwrap_or(&date)),
        );
        p.text(
            130.0,
            HEIGHT - 42.0,
            10.0,
            false,
            &format!("Status {}", r.get::<_, String>(2)?),
        );
        y = y.min(HEIGHT - 50.0) - 6.0;
        p.text(20.0, y, 11.0, true, "Bill to");
        y -= 6.0;
        for v in [opt(r.get(12)?), opt(r.get(13)?), opt(r.get(14)?), opt(r.get(15)?)] {
            if !v.is_empty() {
                p.text(20.0, y, 10.0, false, &v);
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
            p.text(
                20.0,
                y - 2.0,
                10.0,
                false,
                &format!("Repair ticket #{ticket}: {}{serial}", device.trim()),
            );
            y -= 7.0;
        }
        y -= 6.0;
        p.text(20.0, y, 10.0, true, "Description");
        p.right(135.0, y, 10.0, true, "Qty");
        p.right(162.0, y, 10.0, true, "Unit");
        p.right(WIDTH - 20.0, y, 10.0, true, "Amount");
        y -= 2.5;
        p.rule(y);
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
            p.text(20.0, y, 10.0, false, &label.chars().take(60).collect::<String>());
            p.right(135.0, y, 10.0, false, &quantity.to_string());
            p.right(162.0, y, 10.0, false, &amount(unit));
            p.right(WIDTH - 20.0, y, 10.0, false, &amount(line_total));
            y -= 5.5;
            shown += 1;
        }
        if hidden.0 > 0 {
            p.text(20.0, y, 10.0, false, &format!("… and {} more lines", hidden.0));
            p.right(WIDTH - 20.0, y, 10.0, false, &amount(hidden.1));
            y -= 5.5;
        }
        p.rule(y + 2.5);
        y -= 4.0;
        for (label, col, bold) in [("Subtotal", 3, false), ("Tax", 4, false), ("Total", 5, true)] {
            let v: Option<i64> = r.get(col)?;
            p.right(162.0, y, 11.0, bold, label);
            p.right(
                WIDTH - 20.0,
                y,
                11.0,
                bold,
                &v.map(amount).unwrap_or_else(|| "-".into()),
            );
            y -= 6.0;
        }
        y -= 6.0;
        p.text(20.0, y, 11.0, true, "Payments");
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
            p.text(
                20.0,
                y,
                10.0,
                false,
                &format!("{} {method}{card}", paid.get(..10).unwrap_or(&paid)),
            );
            p.right(WIDTH - 20.0, y, 10.0, false, &amount(pay.get(3)?));
            y -= 5.5;
            if y < 20.0 {
                break;
            }
        }
        if !any {
            p.text(20.0, y, 10.0, false, "No payment recorded.");
        }
        pages.push(PdfPage::new(Mm(WIDTH), Mm(HEIGHT), p.ops));
        if pages.len().is_multiple_of(256) {
            progress(pages.len() as u64);
        }
    }
    let n = pages.len() as u64;
    doc.with_pages(pages);
    let mut warnings = Vec::new();
    // Saved to memory first: `save_writer` would swallow a failed write (a full disk).
    let bytes = doc.save(&PdfSaveOptions::default(), &mut warnings);
    drop(doc);
    out.write_all(&bytes)?;
    progress(n);
    Ok(n)
}

/// The message for a PDF export over [`MAX_INVOICES`].
pub fn too_many(n: u64) -> String {
    format!(
        "{n} invoices are too many for one PDF (at most {MAX_INVOICES}); narrow the dates, or export them as CSV or JSON"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_latin_greek_and_cyrillic_print_and_other_scripts_show_a_question_mark() {
        let mut doc = PdfDocument::new("test");
        let fonts = Fonts::add_to(&mut doc).expect("the built-in font parses");
        for face in [&fonts.regular, &fonts.bold] {
            assert_eq!(
                face.printable("Łukasz Żółć, Ελένη, Дмитрий, Nguyễn"),
                "Łukasz Żółć, Ελένη, Дмитрий, Nguyễn"
            );
            assert_eq!(face.printable("王芳 שלום 😀"), "?? ???? ?");
            let one = face.width_mm("1", 10.0);
            assert!(one > 1.0 && one < 3.0, "a digit at 10 pt is about 2 mm: {one}");
            assert!((face.width_mm("11.00", 10.0) - (4.0 * one + face.width_mm(".", 10.0))).abs() < 0.01);
        }
        assert!(fonts.bold.width_mm("Total", 11.0) > fonts.regular.width_mm("Total", 11.0));
    }
}
