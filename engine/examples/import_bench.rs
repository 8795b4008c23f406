//! Reading a large import file in bounded memory: writes a delivery of N
//! rows (default 1,000,000) as CSV, XLSX (rust_xlsxwriter's constant-memory
//! mode), ODS (content.xml streamed into the zip) and XML, then reads one of
//! them with `import::open_rows` and prints rows/s and the peak resident
//! memory (`VmHWM`). Generate and read in separate runs so that the peak is
//! the reader's own:
//!
//! ```sh
//! cargo run --release -p dialcast-engine --example import_bench -- generate /tmp/bench 1000000
//! cargo run --release -p dialcast-engine --example import_bench -- read /tmp/bench/delivery.xlsx
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use dialcast_engine::import::{open_rows, ImportOptions, RowResult};

const HEADER: [&str; 7] = [
    "IDENTIFICATION_RECORD_ID",
    "CONTROL_SCRIPT",
    "PERSON_FIRST_NAME",
    "CONTACT_PHONE_1",
    "INVOICE_AMOUNT_OPEN",
    "INVOICE_DUE_DATE",
    "INVOICE_DESCRIPTION",
];

/// The values of row `n` (0-based): id, script, name, phone digits, amount
/// in cents, day of March 2024 (1–28), description.
fn row(n: u64) -> (u64, &'static str, String, u64, u64, u64, String) {
    (
        100_000 + n,
        "reminder",
        format!("Name {}", n % 1000),
        31_612_000_000 + n % 1_000_000,
        1000 + n % 100_000,
        1 + n % 28,
        format!("Invoice {n} for services"),
    )
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", dir] => generate(Path::new(dir), 1_000_000),
        ["generate", dir, rows] => generate(Path::new(dir), rows.parse().context("row count")?),
        ["read", file] => read(Path::new(file)),
        _ => bail!("usage: import_bench generate DIR [ROWS] | import_bench read FILE"),
    }
}

fn generate(dir: &Path, rows: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    write_csv(&dir.join("delivery.csv"), rows)?;
    println!("csv written in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    write_xlsx(&dir.join("delivery.xlsx"), rows)?;
    println!("xlsx written in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    write_ods(&dir.join("delivery.ods"), rows)?;
    println!("ods written in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    write_xml(&dir.join("delivery.xml"), rows)?;
    println!("xml written in {:.1} s", started.elapsed().as_secs_f64());
    for name in [
        "delivery.csv",
        "delivery.xlsx",
        "delivery.ods",
        "delivery.xml",
    ] {
        let size = std::fs::metadata(dir.join(name))?.len();
        println!("{name}: {:.1} MB", size as f64 / 1e6);
    }
    println!("peak RSS while writing: {} kB", peak_rss_kb()?);
    Ok(())
}

fn write_csv(path: &Path, rows: u64) -> anyhow::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "{}", HEADER.join(";"))?;
    for n in 0..rows {
        let (id, script, name, phone, cents, day, description) = row(n);
        writeln!(
            out,
            "{id};{script};{name};{phone};{}.{:02};2024-03-{day:02};{description}",
            cents / 100,
            cents % 100
        )?;
    }
    out.flush()?;
    Ok(())
}

fn write_xml(path: &Path, rows: u64) -> anyhow::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(out, "<records>")?;
    for n in 0..rows {
        let (id, script, name, phone, cents, day, description) = row(n);
        writeln!(
            out,
            concat!(
                "<record><IDENTIFICATION><RECORD_ID>{}</RECORD_ID></IDENTIFICATION>",
                "<CONTROL><SCRIPT>{}</SCRIPT></CONTROL><PERSON><FIRST_NAME>{}</FIRST_NAME></PERSON>",
                "<CONTACT><PHONE_1>{}</PHONE_1></CONTACT><INVOICE><AMOUNT_OPEN>{}.{:02}</AMOUNT_OPEN>",
                "<DUE_DATE>2024-03-{:02}</DUE_DATE><DESCRIPTION>{}</DESCRIPTION></INVOICE></record>"
            ),
            id,
            script,
            name,
            phone,
            cents / 100,
            cents % 100,
            day,
            description
        )?;
    }
    writeln!(out, "</records>")?;
    out.flush()?;
    Ok(())
}

fn write_xlsx(path: &Path, rows: u64) -> anyhow::Result<()> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    for (column, name) in (0u16..).zip(HEADER) {
        sheet.write_string(0, column, name)?;
    }
    for n in 0..rows {
        let (id, script, name, phone, cents, day, description) = row(n);
        let r = u32::try_from(n + 1)?;
        sheet.write_number(r, 0, id as f64)?;
        sheet.write_string(r, 1, script)?;
        sheet.write_string(r, 2, &name)?;
        sheet.write_number(r, 3, phone as f64)?;
        sheet.write_number(r, 4, cents as f64 / 100.0)?;
        let due = ExcelDateTime::from_ymd(2024, 3, u8::try_from(day)?)?;
        sheet.write_datetime_with_format(r, 5, &due, &date)?;
        sheet.write_string(r, 6, &description)?;
    }
    workbook.save(path)?;
    Ok(())
}

/// A minimal valid ODS, its content.xml written row by row into the zip.
fn write_ods(path: &Path, rows: u64) -> anyhow::Result<()> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new(BufWriter::new(File::create(path)?));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("mimetype", stored)?;
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")?;
    zip.start_file("META-INF/manifest.xml", deflated)?;
    zip.write_all(
        br#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">
 <manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>
 <manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>
</manifest:manifest>
"#,
    )?;
    zip.start_file("content.xml", deflated)?;
    let mut out = BufWriter::new(&mut zip);
    out.write_all(
        br#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3"><office:body><office:spreadsheet><table:table table:name="Delivery"><table:table-row>"#,
    )?;
    for name in HEADER {
        write!(
            out,
            r#"<table:table-cell office:value-type="string"><text:p>{name}</text:p></table:table-cell>"#
        )?;
    }
    out.write_all(b"</table:table-row>\n")?;
    for n in 0..rows {
        let (id, script, name, phone, cents, day, description) = row(n);
        let amount = cents as f64 / 100.0;
        write!(
            out,
            concat!(
                r#"<table:table-row><table:table-cell office:value-type="float" office:value="{id}"><text:p>{id}</text:p></table:table-cell>"#,
                r#"<table:table-cell office:value-type="string"><text:p>{script}</text:p></table:table-cell>"#,
                r#"<table:table-cell office:value-type="string"><text:p>{name}</text:p></table:table-cell>"#,
                r#"<table:table-cell office:value-type="float" office:value="{phone}"><text:p>{phone}</text:p></table:table-cell>"#,
                r#"<table:table-cell office:value-type="float" office:value="{amount}"><text:p>{amount}</text:p></table:table-cell>"#,
                r#"<table:table-cell office:value-type="date" office:date-value="2024-03-{day:02}"><text:p>{day:02}/03/24</text:p></table:table-cell>"#,
                r#"<table:table-cell office:value-type="string"><text:p>{description}</text:p></table:table-cell>"#,
                r#"<table:table-cell table:number-columns-repeated="16377"/></table:table-row>"#,
                "\n"
            ),
            id = id,
            script = script,
            name = name,
            phone = phone,
            amount = amount,
            day = day,
            description = description,
        )?;
    }
    out.write_all(b"<table:table-row table:number-rows-repeated=\"1048000\"><table:table-cell table:number-columns-repeated=\"16384\"/></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>\n")?;
    out.flush()?;
    drop(out);
    zip.finish()?;
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<()> {
    let file: PathBuf = path.to_owned();
    let options = ImportOptions::new(file.display().to_string());
    let started = Instant::now();
    let rows = open_rows(&file, &options)?;
    let format = rows.format();
    let (mut imported, mut rejected, mut warnings) = (0u64, 0u64, 0u64);
    for row in rows {
        match row? {
            RowResult::Imported { warnings: w, .. } => {
                imported += 1;
                warnings += w.len() as u64;
            }
            RowResult::Rejected { .. } => rejected += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let total = imported + rejected;
    println!(
        "{format}: {total} rows ({imported} imported, {rejected} rejected, {warnings} warnings) in {seconds:.2} s = {:.0} rows/s; peak RSS {} kB",
        total as f64 / seconds,
        peak_rss_kb()?
    );
    Ok(())
}

/// `VmHWM` of this process, in kB.
fn peak_rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}
