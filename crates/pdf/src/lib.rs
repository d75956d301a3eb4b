//! Text-only A4 PDFs, written page by page: what invoices and the desktop's disaster
//! kit need, and nothing else.
//!
//! Every page goes to the output as soon as it is added, so memory stays flat however
//! many pages a document has (a PDF library that builds the whole document first held
//! about 45 KB an invoice). Only the object offsets and the glyphs used are kept until
//! [`Document::finish`] writes the fonts, the page tree and the cross-reference table.
//!
//! The text is set in DejaVu Sans, regular and bold, embedded in every file and cut down
//! to Latin, Greek and Cyrillic (`fonts/README.md`): PDF's built-in Helvetica knows only
//! Windows-1252, and a customer called Łukasz Żółć or Ελένη must not read `?ukasz ?ó??`
//! on their invoice. Characters the font lacks print as `?`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::OnceLock;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::writers::Catalog;
use pdf_writer::{Chunk, Content, Filter, Finish, Name, Rect, Ref, Str, TextStr};

/// A4, in points.
const PAGE_WIDTH_PT: f32 = 595.28;
const PAGE_HEIGHT_PT: f32 = 841.89;

/// Points per millimetre: callers lay pages out in millimetres.
const PT_PER_MM: f32 = 72.0 / 25.4;

static REGULAR_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// Regular or bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Regular,
    Bold,
}

impl Style {
    fn index(self) -> usize {
        match self {
            Style::Regular => 0,
            Style::Bold => 1,
        }
    }

    /// The name a page's resources give the face.
    fn resource(self) -> Name<'static> {
        match self {
            Style::Regular => Name(b"F1"),
            Style::Bold => Name(b"F2"),
        }
    }
}

/// The two faces, parsed once per process; `None` only if the fonts built into this
/// program were damaged.
fn faces() -> Option<&'static [ttf_parser::Face<'static>; 2]> {
    static FACES: OnceLock<Option<[ttf_parser::Face<'static>; 2]>> = OnceLock::new();
    FACES
        .get_or_init(|| {
            Some([
                ttf_parser::Face::parse(REGULAR_TTF, 0).ok()?,
                ttf_parser::Face::parse(BOLD_TTF, 0).ok()?,
            ])
        })
        .as_ref()
}

/// One page being laid out. Coordinates are millimetres from the bottom-left corner.
pub struct Page {
    faces: &'static [ttf_parser::Face<'static>; 2],
    content: Content,
    /// Glyphs this page shows, per face, with the character each stands for.
    used: [BTreeMap<u16, char>; 2],
}

/// The glyph `face` draws `c` with, and the character it stands for: `?` when the face
/// lacks `c`.
fn glyph_of(face: &ttf_parser::Face<'_>, c: char) -> (u16, char) {
    match face.glyph_index(c) {
        Some(g) => (g.0, c),
        None => (face.glyph_index('?').map_or(0, |g| g.0), '?'),
    }
}

impl Page {
    /// The glyphs of `s` in `style`, recorded as used on this page.
    fn glyphs(&mut self, style: Style, s: &str) -> Vec<u16> {
        let face = &self.faces[style.index()];
        let used = &mut self.used[style.index()];
        s.chars()
            .map(|c| {
                let (glyph, shown) = glyph_of(face, c);
                used.insert(glyph, shown);
                glyph
            })
            .collect()
    }

    /// Width of glyphs at `size` points, in millimetres.
    fn glyphs_width_mm(&self, style: Style, glyphs: &[u16], size: f32) -> f32 {
        let face = &self.faces[style.index()];
        let units: u32 = glyphs
            .iter()
            .filter_map(|g| face.glyph_hor_advance(ttf_parser::GlyphId(*g)))
            .map(u32::from)
            .sum();
        units as f32 / f32::from(face.units_per_em().max(1)) * size / PT_PER_MM
    }

    /// Width of `s` at `size` points, in millimetres.
    pub fn width_mm(&self, style: Style, size: f32, s: &str) -> f32 {
        let face = &self.faces[style.index()];
        let glyphs: Vec<u16> = s.chars().map(|c| glyph_of(face, c).0).collect();
        self.glyphs_width_mm(style, &glyphs, size)
    }

    /// `s` starting at (`x`, `y`).
    pub fn text(&mut self, x: f32, y: f32, size: f32, style: Style, s: &str) {
        let glyphs = self.glyphs(style, s);
        self.show(x, y, size, style, &glyphs);
    }

    /// `s` starting at (`x`, `y`), cut short with `…` where it would run past `width`
    /// millimetres: a long name must not print over the column beside it.
    pub fn text_within(&mut self, x: f32, y: f32, size: f32, style: Style, width: f32, s: &str) {
        let glyphs = self.fit(style, size, width, s);
        self.show(x, y, size, style, &glyphs);
    }

    /// The glyphs of `s`, cut to `width` millimetres with `…` at the end when needed.
    fn fit(&mut self, style: Style, size: f32, width: f32, s: &str) -> Vec<u16> {
        let mut glyphs = self.glyphs(style, s);
        if self.glyphs_width_mm(style, &glyphs, size) > width {
            let ellipsis = self.glyphs(style, "…");
            let room = width - self.glyphs_width_mm(style, &ellipsis, size);
            if room < 0.0 {
                return Vec::new(); // not even the ellipsis fits
            }
            let mut taken = 0.0;
            let fits = glyphs
                .iter()
                .take_while(|g| {
                    taken += self.glyphs_width_mm(style, std::slice::from_ref(*g), size);
                    taken <= room
                })
                .count();
            glyphs.truncate(fits);
            glyphs.extend(ellipsis);
        }
        glyphs
    }

    /// `s` ending at `x`.
    pub fn text_right(&mut self, x: f32, y: f32, size: f32, style: Style, s: &str) {
        let glyphs = self.glyphs(style, s);
        let width = self.glyphs_width_mm(style, &glyphs, size);
        self.show(x - width, y, size, style, &glyphs);
    }

    fn show(&mut self, x: f32, y: f32, size: f32, style: Style, glyphs: &[u16]) {
        // Identity-H: two bytes a glyph, big-endian glyph ids.
        let bytes: Vec<u8> = glyphs.iter().flat_map(|g| g.to_be_bytes()).collect();
        self.content
            .begin_text()
            .set_font(style.resource(), size)
            .next_line(x * PT_PER_MM, y * PT_PER_MM)
            .show(Str(&bytes))
            .end_text();
    }

    /// A thin grey line from (`x1`, `y`) to (`x2`, `y`).
    pub fn rule(&mut self, x1: f32, x2: f32, y: f32) {
        self.content
            .set_stroke_rgb(0.6, 0.6, 0.6)
            .set_line_width(0.5)
            .move_to(x1 * PT_PER_MM, y * PT_PER_MM)
            .line_to(x2 * PT_PER_MM, y * PT_PER_MM)
            .stroke();
    }
}

/// The objects that describe one embedded face.
struct FaceRefs {
    font: Ref,
    cid_font: Ref,
    descriptor: Ref,
    file: Ref,
    to_unicode: Ref,
    /// Every glyph shown anywhere in the document.
    used: BTreeMap<u16, char>,
}

/// A PDF being written to `out`, a page at a time.
pub struct Document<W: Write> {
    out: W,
    faces: &'static [ttf_parser::Face<'static>; 2],
    title: String,
    written: u64,
    /// Byte offset of object `i + 1`.
    offsets: Vec<u64>,
    catalog: Ref,
    info: Ref,
    pages: Ref,
    page_ids: Vec<Ref>,
    fonts: [FaceRefs; 2],
    deflater: Deflater,
}

/// Deflate (zlib), for page contents and the embedded fonts. One compressor serves the
/// whole document: a new one for each page zeroed its 256 KiB of tables every time,
/// a quarter of the time a page took.
struct Deflater(flate2::Compress);

impl Deflater {
    fn new() -> Deflater {
        Deflater(flate2::Compress::new(flate2::Compression::new(6), true))
    }

    fn deflate(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        self.0.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let read = usize::try_from(self.0.total_in()).unwrap_or(data.len()).min(data.len());
            match self
                .0
                .compress_vec(&data[read..], &mut out, flate2::FlushCompress::Finish)
                .map_err(io::Error::other)?
            {
                flate2::Status::StreamEnd => return Ok(out),
                flate2::Status::Ok | flate2::Status::BufError => out.reserve(out.capacity().max(64)),
            }
        }
    }
}

impl<W: Write> Document<W> {
    /// Starts a document titled `title`; nothing is shown until pages are added.
    pub fn new(out: W, title: &str) -> io::Result<Document<W>> {
        let faces = faces().ok_or_else(|| io::Error::other("the PDF font built into this program cannot be read"))?;
        let mut doc = Document {
            out,
            faces,
            title: title.to_string(),
            written: 0,
            offsets: Vec::new(),
            catalog: Ref::new(1),
            info: Ref::new(2),
            pages: Ref::new(3),
            page_ids: Vec::new(),
            deflater: Deflater::new(),
            fonts: [0, 1].map(|i| {
                let base = 4 + i * 5;
                FaceRefs {
                    font: Ref::new(base),
                    cid_font: Ref::new(base + 1),
                    descriptor: Ref::new(base + 2),
                    file: Ref::new(base + 3),
                    to_unicode: Ref::new(base + 4),
                    used: BTreeMap::new(),
                }
            }),
        };
        doc.offsets.resize(13, 0);
        // A binary comment after the header tells tools the file holds binary data.
        doc.emit_raw(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")?;
        Ok(doc)
    }

    /// A blank page to lay out, then pass to [`Document::add_page`].
    pub fn page(&self) -> Page {
        Page {
            faces: self.faces,
            content: Content::new(),
            used: [BTreeMap::new(), BTreeMap::new()],
        }
    }

    /// How many pages have been added.
    pub fn pages(&self) -> usize {
        self.page_ids.len()
    }

    fn alloc(&mut self) -> Ref {
        self.offsets.push(0);
        Ref::new(self.offsets.len() as i32)
    }

    fn emit_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes a chunk holding the one object `id`.
    fn emit(&mut self, id: Ref, chunk: &Chunk) -> io::Result<()> {
        let slot = usize::try_from(id.get() - 1).map_err(|_| io::Error::other("bad PDF object id"))?;
        self.offsets[slot] = self.written;
        self.emit_raw(chunk.as_bytes())
    }

    /// Writes `page` to the output.
    pub fn add_page(&mut self, page: Page) -> io::Result<()> {
        let Page { content, used, .. } = page;
        for (all, page_used) in self.fonts.iter_mut().zip(used) {
            all.used.extend(page_used);
        }
        let data = self.deflater.deflate(&content.finish())?;
        let content_id = self.alloc();
        let mut chunk = Chunk::new();
        chunk.stream(content_id, &data).filter(Filter::FlateDecode);
        self.emit(content_id, &chunk)?;

        let page_id = self.alloc();
        let mut chunk = Chunk::new();
        let mut p = chunk.page(page_id);
        p.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH_PT, PAGE_HEIGHT_PT));
        p.parent(self.pages);
        p.contents(content_id);
        p.resources()
            .fonts()
            .pair(Style::Regular.resource(), self.fonts[0].font)
            .pair(Style::Bold.resource(), self.fonts[1].font);
        p.finish();
        self.emit(page_id, &chunk)?;
        self.page_ids.push(page_id);
        Ok(())
    }

    /// Writes the fonts, the page tree, the cross-reference table and the trailer;
    /// returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        for i in 0..2 {
            self.write_face(i)?;
        }
        let mut chunk = Chunk::new();
        chunk
            .pages(self.pages)
            .kids(self.page_ids.iter().copied())
            .count(self.page_ids.len() as i32);
        self.emit(self.pages, &chunk)?;
        let mut chunk = Chunk::new();
        chunk.indirect(self.catalog).start::<Catalog>().pages(self.pages);
        self.emit(self.catalog, &chunk)?;
        let mut chunk = Chunk::new();
        let title = self.title.clone();
        {
            let mut info = chunk.indirect(self.info).dict();
            info.pair(Name(b"Title"), TextStr(&title));
            info.pair(Name(b"Producer"), TextStr("RepairOps Backup"));
        }
        self.emit(self.info, &chunk)?;

        let xref_at = self.written;
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", self.offsets.len() + 1);
        for offset in &self.offsets {
            xref.push_str(&format!("{offset:010} 00000 n \n"));
        }
        xref.push_str(&format!(
            "trailer\n<< /Size {} /Root {} 0 R /Info {} 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            self.offsets.len() + 1,
            self.catalog.get(),
            self.info.get()
        ));
        self.emit_raw(xref.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// The objects of face `i`: the font program, its descriptor, the CID font with
    /// the widths of the glyphs used, the map back to Unicode, and the font itself.
    fn write_face(&mut self, i: usize) -> io::Result<()> {
        let face = &self.faces[i];
        let (ttf, base_name, stem_v): (&[u8], Name<'static>, f32) = if i == 0 {
            (REGULAR_TTF, Name(b"DejaVuSans"), 80.0)
        } else {
            (BOLD_TTF, Name(b"DejaVuSans-Bold"), 140.0)
        };
        let refs = &self.fonts[i];
        let (font_ref, cid_ref, descriptor_ref, file_ref, cmap_ref) =
            (refs.font, refs.cid_font, refs.descriptor, refs.file, refs.to_unicode);
        let used = refs.used.clone();
        let per_unit = 1000.0 / f32::from(face.units_per_em().max(1));
        let scaled = |v: i16| f32::from(v) * per_unit;

        let mut chunk = Chunk::new();
        let program = self.deflater.deflate(ttf)?;
        chunk
            .stream(file_ref, &program)
            .filter(Filter::FlateDecode)
            .pair(Name(b"Length1"), ttf.len() as i32);
        self.emit(file_ref, &chunk)?;

        let bbox = face.global_bounding_box();
        let mut chunk = Chunk::new();
        chunk
            .font_descriptor(descriptor_ref)
            .name(base_name)
            .flags(FontFlags::NON_SYMBOLIC)
            .bbox(Rect::new(
                scaled(bbox.x_min),
                scaled(bbox.y_min),
                scaled(bbox.x_max),
                scaled(bbox.y_max),
            ))
            .italic_angle(0.0)
            .ascent(scaled(face.ascender()))
            .descent(scaled(face.descender()))
            .cap_height(scaled(face.capital_height().unwrap_or(face.ascender())))
            .stem_v(stem_v)
            .font_file2(file_ref);
        self.emit(descriptor_ref, &chunk)?;

        let system_info = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };
        let mut chunk = Chunk::new();
        {
            let mut cid = chunk.cid_font(cid_ref);
            cid.subtype(CidFontType::Type2)
                .base_font(base_name)
                .system_info(system_info)
                .font_descriptor(descriptor_ref)
                .cid_to_gid_map_predefined(Name(b"Identity"));
            let mut widths = cid.widths();
            for gid in used.keys() {
                let advance = face.glyph_hor_advance(ttf_parser::GlyphId(*gid)).unwrap_or(0);
                widths.consecutive(*gid, [f32::from(advance) * per_unit]);
            }
        }
        self.emit(cid_ref, &chunk)?;

        let mut cmap = UnicodeCmap::new(Name(b"Custom"), system_info);
        for (gid, c) in &used {
            cmap.pair(*gid, *c);
        }
        let cmap = cmap.finish();
        let mut chunk = Chunk::new();
        chunk.stream(cmap_ref, &cmap);
        self.emit(cmap_ref, &chunk)?;

        let mut chunk = Chunk::new();
        chunk
            .type0_font(font_ref)
            .base_font(base_name)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid_ref)
            .to_unicode(cmap_ref);
        self.emit(font_ref, &chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(pages: usize, text: &str) -> Vec<u8> {
        let mut doc = Document::new(Vec::new(), "Test").unwrap();
        for n in 0..pages {
            let mut page = doc.page();
            page.text(20.0, 270.0, 12.0, Style::Bold, &format!("Page {}", n + 1));
            page.text(20.0, 260.0, 10.0, Style::Regular, text);
            page.text_right(190.0, 250.0, 10.0, Style::Regular, "1234.50");
            page.rule(20.0, 190.0, 245.0);
            doc.add_page(page).unwrap();
        }
        doc.finish().unwrap()
    }

    #[test]
    fn characters_outside_the_font_show_a_question_mark() {
        let doc = Document::new(Vec::new(), "t").unwrap();
        let mut page = doc.page();
        let kept = page.glyphs(Style::Regular, "Łukasz Ελένη Дмитрий Nguyễn");
        assert!(!kept.contains(&page.glyphs(Style::Regular, "?")[0]));
        let replaced = page.glyphs(Style::Regular, "王 ש 😀");
        let question = page.glyphs(Style::Regular, "?")[0];
        assert_eq!(replaced.iter().filter(|g| **g == question).count(), 3);
        let one = page.width_mm(Style::Regular, 10.0, "1");
        assert!(one > 1.0 && one < 3.0, "a digit at 10 pt is about 2 mm: {one}");
        assert!(page.width_mm(Style::Bold, 11.0, "Total") > page.width_mm(Style::Regular, 11.0, "Total"));
    }

    #[test]
    fn text_too_wide_for_its_column_is_cut_with_an_ellipsis() {
        let doc = Document::new(Vec::new(), "t").unwrap();
        let mut page = doc.page();
        let fits = page.fit(Style::Regular, 10.0, 100.0, "Short enough");
        assert_eq!(
            fits,
            page.glyphs(Style::Regular, "Short enough"),
            "text that fits is left whole"
        );

        let cut = page.fit(Style::Bold, 10.0, 100.0, &"W".repeat(80));
        assert_eq!(cut.last(), page.glyphs(Style::Bold, "…").first());
        assert!(cut.len() < 80);
        let width = page.glyphs_width_mm(Style::Bold, &cut, 10.0);
        assert!(
            width <= 100.0 && width > 95.0,
            "cut to the column, not far short of it: {width} mm"
        );
    }

    #[test]
    fn the_cross_reference_table_points_at_every_object() {
        let pdf = document(3, "Łukasz Żółć-Ελένη");
        let text = String::from_utf8_lossy(&pdf);
        let at = text.rfind("startxref\n").unwrap();
        let xref_at: usize = text[at + 10..].lines().next().unwrap().parse().unwrap();
        assert!(pdf[xref_at..].starts_with(b"xref\n"));
        let table = String::from_utf8_lossy(&pdf[xref_at..]);
        let entries: Vec<&str> = table.lines().skip(3).take_while(|l| l.ends_with(" n ")).collect();
        assert_eq!(entries.len(), 13 + 3 * 2, "fixed objects and two a page");
        for (i, line) in entries.iter().enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            assert!(
                pdf[offset..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {} is not where the table says",
                i + 1
            );
        }
    }
}

#[cfg(test)]
mod read_back {
    //! The file read back by poppler (`pdfinfo`, `pdftotext`, `pdffonts`), as a PDF
    //! viewer would read it.

    use super::*;

    fn poppler(tool: &str, file: &std::path::Path, extra: &[&str]) -> String {
        let out = std::process::Command::new(tool)
            .args(extra)
            .arg(file)
            .args(if tool == "pdftotext" { &["-"][..] } else { &[][..] })
            .output()
            .unwrap_or_else(|e| panic!("{tool} (apt-get install poppler-utils): {e}"));
        assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.stderr.is_empty(),
            "{tool} complained: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn poppler_reads_the_pages_the_text_and_the_embedded_fonts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.pdf");
        let out = std::fs::File::create(&file).unwrap();
        let mut doc = Document::new(out, "Invoices").unwrap();
        for n in 1..=4 {
            let mut page = doc.page();
            page.text(20.0, 270.0, 18.0, Style::Bold, &format!("Invoice INV-{n}"));
            page.text(
                20.0,
                250.0,
                10.0,
                Style::Regular,
                "Łukasz Żółć-Ελένη Дмитриева, Nguyễn Văn An 王",
            );
            page.text_right(190.0, 240.0, 10.0, Style::Bold, "1234.50");
            page.rule(20.0, 190.0, 235.0);
            doc.add_page(page).unwrap();
        }
        doc.finish().unwrap();

        let info = poppler("pdfinfo", &file, &[]);
        assert!(info.contains("Pages:           4"), "{info}");
        assert!(info.contains("Title:           Invoices"), "{info}");
        let fonts = poppler("pdffonts", &file, &[]);
        assert!(
            fonts.contains("DejaVuSans-Bold") && fonts.contains("CID TrueType"),
            "{fonts}"
        );
        assert_eq!(
            fonts.matches(" yes ").count(),
            4,
            "both faces embedded, with a Unicode map: {fonts}"
        );
        let page3 = poppler("pdftotext", &file, &["-f", "3", "-l", "3"]);
        assert!(page3.contains("Invoice INV-3"), "{page3}");
        assert!(
            page3.contains("Łukasz Żółć-Ελένη Дмитриева, Nguyễn Văn An ?"),
            "{page3}"
        );
        assert!(page3.contains("1234.50"), "{page3}");
    }
}
