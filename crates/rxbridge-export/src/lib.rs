//! The export adapter: renders the core's typed reports (month-end exports, the warehouse orders
//! file, register extracts) as bytes — the rows as CSV, the whole report as a plain, printable
//! A4-landscape PDF with the base-14 Helvetica fonts (nothing embedded).

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use rxbridge_app::finance::Report;

/// The rows as CSV (RFC 4180, header row first). Totals and differences are in the PDF and
/// recomputable from the rows.
pub fn to_csv(r: &Report) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(&r.columns);
    for row in &r.rows {
        // A spreadsheet would run a cell starting with = + - @ as a formula: neutralise it.
        let _ = w.write_record(row.iter().map(|c| {
            if c.starts_with(['=', '+', '@']) || (c.starts_with('-') && c.parse::<f64>().is_err()) {
                format!("'{c}")
            } else {
                c.clone()
            }
        }));
    }
    w.into_inner().unwrap_or_default()
}

const W: f32 = 842.0;
const H: f32 = 595.0;
const MARGIN: f32 = 36.0;
const LINE: f32 = 11.0;
const SIZE: f32 = 7.5;

enum Line {
    Title(String),
    Text(String),
    Bold(String),
    TableHeader,
    Row(Vec<String>),
    Gap,
}

/// WinAnsi bytes for a string: ASCII as is, £ and the ellipsis mapped, the rest `?`.
fn ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '£' => 0xA3,
            '…' => 0x85,
            '×' => 0xD7,
            _ => b'?',
        })
        .collect()
}

/// Approximate Helvetica advance widths (in em) by character class.
fn em(c: char) -> f32 {
    match c {
        'A'..='Z' | 'm' | 'w' | '@' | '%' => 0.72,
        'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.28,
        ' ' | 'f' | 't' | 'r' | '-' | '(' | ')' | '/' => 0.34,
        _ => 0.56,
    }
}

fn text_width(s: &str, size: f32) -> f32 {
    s.chars().map(em).sum::<f32>() * size
}

fn fit(s: &str, width: f32, size: f32) -> String {
    if text_width(s, size) <= width {
        return s.to_string();
    }
    let mut t = String::new();
    let mut w = text_width("…", size);
    for c in s.chars() {
        w += em(c) * size;
        if w > width {
            break;
        }
        t.push(c);
    }
    t.push('…');
    t
}

pub fn to_pdf(r: &Report) -> Vec<u8> {
    // Column widths from their longest cell; the font shrinks (to 5 pt) before anything is
    // cut, and then only the widest columns (names, notes) are cut.
    let n = r.columns.len().max(1);
    let longest: Vec<String> = (0..n)
        .map(|i| {
            r.rows
                .iter()
                .filter_map(|row| row.get(i))
                .chain(r.columns.get(i))
                .max_by(|a, b| text_width(a, 1.0).total_cmp(&text_width(b, 1.0)))
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let avail = W - 2.0 * MARGIN;
    let widths_at = |size: f32| -> Vec<f32> {
        longest
            .iter()
            .map(|s| text_width(s, size).min(30.0 * size) + 6.0)
            .collect()
    };
    let mut size = SIZE;
    while widths_at(size).iter().sum::<f32>() > avail && size > 5.0 {
        size -= 0.25;
    }
    let mut want = widths_at(size);
    let mut guard = 0;
    while want.iter().sum::<f32>() > avail + 0.5 && guard < 1000 {
        guard += 1;
        let over = want.iter().sum::<f32>() - avail;
        let (widest, _) = want
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("at least one column");
        want[widest] -= over.min(want[widest] * 0.1).max(0.5);
    }

    let mut lines = vec![Line::Title(r.title.clone())];
    for (k, v) in &r.header {
        lines.push(Line::Text(format!("{k}: {v}")));
    }
    lines.push(Line::Gap);
    lines.push(Line::TableHeader);
    if r.rows.is_empty() {
        lines.push(Line::Text("(no entries this month)".into()));
    }
    for row in &r.rows {
        lines.push(Line::Row(row.clone()));
    }
    lines.push(Line::Gap);
    lines.push(Line::Bold("Totals".into()));
    for (k, v) in &r.totals {
        lines.push(Line::Text(format!("{k}: {v}")));
    }
    if !r.differences.is_empty() {
        lines.push(Line::Gap);
        lines.push(Line::Bold(format!(
            "Differences and warnings ({})",
            r.differences.len()
        )));
        for d in &r.differences {
            lines.push(Line::Text(d.clone()));
        }
    }

    // Paginate: repeat the table header on each page the table continues on.
    let per_page = ((H - 2.0 * MARGIN - 2.0 * LINE) / LINE) as usize;
    let mut pages: Vec<Vec<&Line>> = vec![Vec::new()];
    let header_line = Line::TableHeader;
    let mut in_table = false;
    for l in &lines {
        match l {
            Line::TableHeader => in_table = true,
            Line::Gap if in_table => in_table = false,
            _ => {}
        }
        if pages.last().is_some_and(|p| p.len() >= per_page) {
            pages.push(Vec::new());
            if in_table && !matches!(l, Line::TableHeader) {
                pages.last_mut().expect("just pushed").push(&header_line);
            }
        }
        pages.last_mut().expect("never empty").push(l);
    }

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let mut next = 6;
    let page_ids: Vec<(Ref, Ref)> = pages
        .iter()
        .map(|_| {
            let ids = (Ref::new(next), Ref::new(next + 1));
            next += 2;
            ids
        })
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().map(|(p, _)| *p))
        .count(page_ids.len() as i32);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(pdf_writer::TextStr(&format!("{} {}", r.title, r.month)))
        .producer(pdf_writer::TextStr("rxbridge"));
    let total_pages = pages.len();
    for (i, (page_lines, (page_id, content_id))) in pages.iter().zip(&page_ids).enumerate() {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, W, H));
        page.parent(tree);
        page.contents(*content_id);
        {
            let mut res = page.resources();
            let mut fonts = res.fonts();
            fonts.pair(Name(b"F1"), regular);
            fonts.pair(Name(b"F2"), bold);
        }
        page.finish();

        let mut c = Content::new();
        let mut y = H - MARGIN;
        let text = |c: &mut Content, font: &[u8], size: f32, x: f32, y: f32, s: &str| {
            c.begin_text();
            c.set_font(Name(font), size);
            c.next_line(x, y);
            c.show(Str(&ansi(s)));
            c.end_text();
        };
        for l in page_lines {
            match l {
                Line::Title(t) => {
                    text(&mut c, b"F2", 13.0, MARGIN, y - 4.0, t);
                    y -= LINE * 1.6;
                }
                Line::Text(t) => {
                    text(
                        &mut c,
                        b"F1",
                        8.5,
                        MARGIN,
                        y,
                        &fit(t, W - 2.0 * MARGIN, 8.5),
                    );
                    y -= LINE;
                }
                Line::Bold(t) => {
                    text(&mut c, b"F2", 9.5, MARGIN, y, t);
                    y -= LINE;
                }
                Line::Gap => y -= LINE * 0.6,
                Line::TableHeader | Line::Row(_) => {
                    let (font, cells): (&[u8], Vec<String>) = match l {
                        Line::Row(cells) => (b"F1", cells.clone()),
                        _ => (b"F2", r.columns.clone()),
                    };
                    let mut x = MARGIN;
                    for (cell, w) in cells.iter().zip(&want) {
                        text(&mut c, font, size, x, y, &fit(cell, *w - 4.0, size));
                        x += w;
                    }
                    if matches!(l, Line::TableHeader) {
                        c.set_line_width(0.5);
                        c.move_to(MARGIN, y - 2.5);
                        c.line_to(W - MARGIN, y - 2.5);
                        c.stroke();
                    }
                    y -= LINE;
                }
            }
        }
        if i > 0 {
            // Every page says what it is (a CD register names the drug at the head of each).
            text(
                &mut c,
                b"F2",
                9.0,
                MARGIN,
                H - MARGIN / 2.0 - 6.0,
                &format!("{} {}", r.title, r.month),
            );
        }
        text(
            &mut c,
            b"F1",
            7.0,
            MARGIN,
            MARGIN / 2.0,
            &format!(
                "{} {} - page {} of {}",
                r.title,
                r.month,
                i + 1,
                total_pages
            ),
        );
        pdf.stream(*content_id, &c.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxbridge_app::finance::ExportKind;

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let r = Report {
            kind: ExportKind::Payments,
            month: "2026-11".into(),
            title: "t".into(),
            header: vec![],
            columns: vec!["a".into(), "b".into()],
            rows: vec![
                vec!["=HYPERLINK(\"x\")".into(), "-9.90".into()],
                vec!["a,b".into(), "-x".into()],
            ],
            totals: vec![],
            differences: vec![],
        };
        let s = String::from_utf8(to_csv(&r)).unwrap();
        assert_eq!(s, "a,b\n\"'=HYPERLINK(\"\"x\"\")\",-9.90\n\"a,b\",'-x\n");
    }

    #[test]
    fn pdf_is_a_pdf_with_every_page_numbered() {
        let r = Report {
            kind: ExportKind::NhsClaim,
            month: "2026-11".into(),
            title: "NHS claim".into(),
            header: vec![("Month".into(), "2026-11".into())],
            columns: vec!["a".into(), "b".into()],
            rows: (0..150)
                .map(|i| vec![format!("row {i}"), "£9.90".into()])
                .collect(),
            totals: vec![("Charges".into(), "£1.00".into())],
            differences: vec![],
        };
        let bytes = to_pdf(&r);
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("page 1 of 4"), "150 rows at ~43 a page");
        assert!(text.contains("page 4 of 4"));
    }
}
