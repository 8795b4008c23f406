//! Tests of the formats side by side: the fixtures in
//! `engine/tests/data/imports/` (LibreOffice-made XLSX and ODS), XLSX and
//! ODS written here with rust_xlsxwriter and spreadsheet-ods, XML forms,
//! profiles, and files that are damaged.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/imports")
        .join(name)
}

fn options(file: &str) -> ImportOptions {
    ImportOptions::new(file)
}

/// Every row of a file, with the header warnings first as a pseudo-row.
fn rows(path: &Path, options: &ImportOptions) -> (FileFormat, Vec<RowResult>) {
    let rows = open_rows(path, options).unwrap_or_else(|err| panic!("{err}"));
    let format = rows.format();
    assert!(
        rows.header_warnings().is_empty(),
        "{:?}",
        rows.header_warnings()
    );
    let results = rows
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|err| panic!("{err}"));
    (format, results)
}

fn messages(issues: &[ImportIssue]) -> Vec<String> {
    issues.iter().map(ToString::to_string).collect()
}

fn field<'a>(record: &'a ImportedRecord, name: &str) -> Option<&'a str> {
    record.fields.get(name).map(String::as_str)
}

/// What every format must give for the sample delivery (issues name
/// `sample`, whatever the format).
fn check_sample(results: &[RowResult]) {
    let [RowResult::Imported { record: first, .. }, RowResult::Imported { record: second, .. }, RowResult::Rejected { line, errors, .. }] =
        results
    else {
        panic!("two imported rows and one rejected: {results:#?}");
    };
    assert_eq!((first.line, second.line, *line), (2, 3, 5));
    assert_eq!(first.record_id, "1001");
    assert_eq!(first.phones, ["+31201234567", "+31612345678"]);
    assert_eq!(field(first, "CONTACT_MOBILE"), Some("+31612345678"));
    assert_eq!(field(first, "INVOICE_AMOUNT_OPEN"), Some("125.50"));
    assert_eq!(field(first, "INVOICE_DUE_DATE"), Some("2024-03-17"));
    assert_eq!(field(first, "INVOICE_DESCRIPTION"), Some("Water & heating"));
    assert_eq!(second.phones, ["+31612345678"]);
    assert_eq!(field(second, "PERSON_FIRST_NAME"), Some("Bob"));
    assert_eq!(field(second, "INVOICE_AMOUNT_OPEN"), Some("99.95"));
    assert_eq!(
        messages(errors),
        [
            r#"sample:5: INVOICE_AMOUNT_OPEN: "twelve" is not an amount; expected e.g. 125.50 or 125,50"#
        ]
    );
}

#[test]
fn the_same_delivery_in_four_formats_gives_the_same_rows() {
    let options = options("sample");
    let (format, csv) = rows(&fixture("sample.csv"), &options);
    assert_eq!(format, FileFormat::Csv);
    check_sample(&csv);
    for (name, expected) in [
        ("sample.xlsx", FileFormat::Xlsx),
        ("sample.ods", FileFormat::Ods),
        ("sample.xml", FileFormat::Xml),
    ] {
        let (format, results) = rows(&fixture(name), &options);
        assert_eq!(format, expected);
        assert_eq!(results, csv, "{name}");
    }
}

#[test]
fn formats_are_sniffed_without_an_extension() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, expected) in [
        ("sample.csv", FileFormat::Csv),
        ("sample.xlsx", FileFormat::Xlsx),
        ("sample.ods", FileFormat::Ods),
        ("sample.xml", FileFormat::Xml),
    ] {
        let copy = dir.path().join(format!("{name}.upload"));
        std::fs::copy(fixture(name), &copy).expect("copy");
        assert_eq!(
            FileFormat::detect(&copy).expect("detected"),
            expected,
            "{name}"
        );
        let (_, results) = rows(&copy, &options("sample"));
        check_sample(&results);
    }
    assert_eq!(
        FileFormat::detect(Path::new("X.XLSX")).expect("by extension"),
        FileFormat::Xlsx
    );
    let old = dir.path().join("old.bin");
    std::fs::write(&old, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest").expect("write");
    let err = FileFormat::detect(&old).expect_err("old Excel");
    assert!(
        err.to_string().contains("old.bin: unknown file format"),
        "{err}"
    );
}

const HEADER: [&str; 6] = [
    "IDENTIFICATION_RECORD_ID",
    "CONTACT_PHONE_1",
    "INVOICE_AMOUNT_OPEN",
    "INVOICE_DUE_DATE",
    "INVOICE_DESCRIPTION",
    "PERSON_DATE_OF_BIRTH",
];

#[test]
fn xlsx_written_by_rust_xlsxwriter_dates_numbers_and_row_errors() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("typed.xlsx");
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    for (column, name) in (0u16..).zip(HEADER) {
        sheet.write_string(0, column, name).expect("header");
    }
    // Row 2: a phone typed as a number, an integer amount, a date cell.
    sheet.write_number(1, 0, 1.0).expect("id");
    sheet.write_number(1, 1, 31_612_345_678.0).expect("phone");
    sheet.write_number(1, 2, 125.0).expect("amount");
    let due = ExcelDateTime::from_ymd(2024, 3, 17).expect("date");
    sheet
        .write_datetime_with_format(1, 3, &due, &date)
        .expect("due");
    sheet.write_string(1, 4, "  two\nlines ").expect("text");
    // Row 3 left empty; row 4: a float amount and a bad date of birth.
    sheet.write_string(3, 0, "2").expect("id");
    sheet.write_string(3, 1, "06 12345678").expect("phone");
    sheet.write_number(3, 2, 1250000.05).expect("amount");
    sheet.write_string(3, 5, "31-02-1980").expect("bad date");
    workbook.save(&path).expect("save");

    let report = read_file(&path, &with_script("typed.xlsx")).expect("readable");
    let [record] = report.records.as_slice() else {
        panic!("one record: {report:#?}");
    };
    assert_eq!(record.line, 2);
    assert_eq!(record.record_id, "1");
    assert_eq!(record.phones, ["+31612345678"]);
    assert_eq!(field(record, "INVOICE_AMOUNT_OPEN"), Some("125.00"));
    assert_eq!(field(record, "INVOICE_DUE_DATE"), Some("2024-03-17"));
    assert_eq!(field(record, "INVOICE_DESCRIPTION"), Some("two\nlines"));
    let [error] = report.rejected.as_slice() else {
        panic!("one error: {:?}", messages(&report.rejected));
    };
    assert_eq!(error.line, 4);
    assert_eq!(error.field.as_deref(), Some("PERSON_DATE_OF_BIRTH"));
    assert!(
        error
            .to_string()
            .starts_with("typed.xlsx:4: PERSON_DATE_OF_BIRTH: "),
        "{error}"
    );
}

fn with_script(file: &str) -> ImportOptions {
    ImportOptions {
        script: Some("s".to_owned()),
        ..ImportOptions::new(file)
    }
}

#[test]
fn ods_written_by_spreadsheet_ods_reads_like_the_xlsx() {
    use spreadsheet_ods::{Sheet, WorkBook};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("typed.ods");
    let mut book = WorkBook::new_empty();
    let mut sheet = Sheet::new("Debtors");
    for (column, name) in (0u32..).zip(HEADER) {
        sheet.set_value(0, column, name);
    }
    sheet.set_value(1, 0, 1.0);
    sheet.set_value(1, 1, 31_612_345_678.0);
    sheet.set_value(1, 2, 125.0);
    sheet.set_value(
        1,
        3,
        chrono::NaiveDate::from_ymd_opt(2024, 3, 17).expect("date"),
    );
    sheet.set_value(1, 4, "two words");
    sheet.set_value(3, 0, "2");
    sheet.set_value(3, 1, "06 12345678");
    sheet.set_value(3, 2, 1250000.05);
    sheet.set_value(3, 5, "31-02-1980");
    book.push_sheet(sheet);
    spreadsheet_ods::write_ods(&mut book, &path).expect("write");

    let report = read_file(&path, &with_script("typed.ods")).expect("readable");
    let [record] = report.records.as_slice() else {
        panic!("one record: {report:#?}");
    };
    assert_eq!(record.line, 2);
    assert_eq!(record.phones, ["+31612345678"]);
    assert_eq!(field(record, "INVOICE_AMOUNT_OPEN"), Some("125.00"));
    assert_eq!(field(record, "INVOICE_DUE_DATE"), Some("2024-03-17"));
    assert_eq!(field(record, "INVOICE_DESCRIPTION"), Some("two words"));
    assert_eq!(
        report
            .rejected
            .iter()
            .map(|issue| (issue.line, issue.field.as_deref()))
            .collect::<Vec<_>>(),
        [(4, Some("PERSON_DATE_OF_BIRTH"))]
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(bytes))
        .expect("write");
    path
}

/// A zip with the given members, stored uncompressed.
fn zip_of(members: &[(&str, &str)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in members {
        zip.start_file(*name, stored).expect("member");
        zip.write_all(text.as_bytes()).expect("member text");
    }
    zip.finish().expect("zip");
    out.into_inner()
}

#[test]
fn damaged_spreadsheets_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = |path: &Path| {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        read_file(path, &with_script(name))
            .expect_err("damaged")
            .to_string()
    };
    let xlsx = std::fs::read(fixture("sample.xlsx")).expect("fixture");
    let cut = write(dir.path(), "cut.xlsx", &xlsx[..xlsx.len() / 2]);
    let message = error(&cut);
    assert!(
        message.starts_with("cut.xlsx: not a readable XLSX workbook"),
        "{message}"
    );

    let ods = std::fs::read(fixture("sample.ods")).expect("fixture");
    let cut = write(dir.path(), "cut.ods", &ods[..ods.len() / 2]);
    let message = error(&cut);
    assert!(
        message.starts_with("cut.ods: not a readable zip archive"),
        "{message}"
    );

    let no_content = write(
        dir.path(),
        "empty.ods",
        &zip_of(&[("mimetype", "application/vnd.oasis.opendocument.spreadsheet")]),
    );
    assert_eq!(
        error(&no_content),
        "empty.ods: the archive has no content.xml; it is not an ODS spreadsheet or it is damaged"
    );

    let no_sheets = write(
        dir.path(),
        "nosheets.xlsx",
        &zip_of(&[
            (
                "[Content_Types].xml",
                r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#,
            ),
            (
                "_rels/.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
            ),
            (
                "xl/workbook.xml",
                r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets/></workbook>"#,
            ),
            (
                "xl/_rels/workbook.xml.rels",
                r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"></Relationships>"#,
            ),
        ]),
    );
    assert_eq!(
        error(&no_sheets),
        "nosheets.xlsx: the workbook has no sheet; the records must be on the first sheet"
    );

    let header_only = write(dir.path(), "empty.xml", b"<?xml version=\"1.0\"?>\n");
    assert!(error(&header_only).starts_with("empty.xml: the file is empty"));
}

fn xml_report(text: &[u8]) -> Result<ImportReport, ImportError> {
    let rows = xml_rows(text, &with_script("d.xml"))?;
    collect_report(Vec::new(), rows)
}

#[test]
fn xml_group_forms_entities_and_unknown_fields() {
    let text = br#"<?xml version="1.0" encoding="utf-8"?>
<records>
  <record>
    <IDENTIFICATION><RECORD_ID>A&lt;1&gt;</RECORD_ID></IDENTIFICATION>
    <CONTACT><PHONE_1>0612345678</PHONE_1></CONTACT>
    <INVOICELINES n="1"><DESCRIPTION><![CDATA[Water & <gas>]]></DESCRIPTION><AMOUNT>1,50</AMOUNT></INVOICELINES>
    <INVOICELINES_2><AMOUNT>2</AMOUNT></INVOICELINES_2>
    <INVOICELINES><INVOICELINES_3_AMOUNT>3</INVOICELINES_3_AMOUNT></INVOICELINES>
    <EXTRA><DOSSIER>77</DOSSIER></EXTRA>
  </record>
  <!-- a comment -->
  <record>
    <IDENTIFICATION><RECORD_ID>A2</RECORD_ID></IDENTIFICATION>
    <EXTRA><DOSSIER>78</DOSSIER></EXTRA>
    <SERVICES><VOICE>N</VOICE></SERVICES>
  </record>
  <record><IDENTIFICATION><RECORD_ID>A3</RECORD_ID><RECORD_ID>A4</RECORD_ID></IDENTIFICATION></record>
</records>
"#;
    let report = xml_report(text).expect("readable");
    let [first, second] = report.records.as_slice() else {
        panic!("two records: {report:#?}");
    };
    assert_eq!((first.line, second.line), (3, 12));
    assert_eq!(first.record_id, "A<1>");
    assert_eq!(
        field(first, "INVOICELINES_1_DESCRIPTION"),
        Some("Water & <gas>")
    );
    assert_eq!(field(first, "INVOICELINES_1_AMOUNT"), Some("1.50"));
    assert_eq!(field(first, "INVOICELINES_2_AMOUNT"), Some("2.00"));
    assert_eq!(field(first, "INVOICELINES_3_AMOUNT"), Some("3.00"));
    assert_eq!(field(second, "EXTRA_DOSSIER"), Some("78"));
    assert_eq!(
        messages(&report.warnings),
        ["d.xml:3: EXTRA_DOSSIER: unknown column; its values are kept as a custom field"]
    );
    assert_eq!(
        messages(&report.rejected),
        ["d.xml:17: field IDENTIFICATION_RECORD_ID appears twice in the record"]
    );
}

#[test]
fn broken_xml_is_an_error_naming_file_and_line() {
    let mismatched = b"<records>\n<record>\n<A><B>1</B></A>\n</recrd>\n</records>\n";
    let err = xml_report(mismatched).expect_err("mismatched");
    assert!(
        err.to_string()
            .starts_with("d.xml:4: the XML is not well-formed"),
        "{err}"
    );

    let cut = b"<records>\n<record><A><B>1</B></A></record>\n<record><A>";
    let err = xml_report(cut).expect_err("cut off");
    assert_eq!(
        err.to_string(),
        "d.xml:3: the file ends in the middle of the data; it is cut off or damaged"
    );

    let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><records/>";
    let err = xml_report(latin1).expect_err("latin-1");
    assert_eq!(
        err.to_string(),
        "d.xml: the XML declares encoding \"iso-8859-1\"; only UTF-8 is read, save it as UTF-8"
    );

    let undeclared = b"<records>\n<record><PERSON><LAST_NAME>Fran\xe7ois</LAST_NAME></PERSON></record></records>";
    let err = xml_report(undeclared).expect_err("not UTF-8");
    assert!(err.to_string().starts_with("d.xml:2: "), "{err}");

    let wrong_root = b"<rows><row/></rows>";
    let err = xml_report(wrong_root).expect_err("wrong root");
    assert_eq!(
        err.to_string(),
        "d.xml:1: found <rows> where <records> was expected"
    );

    let entity = b"<records><record><A><B>&nbsp;</B></A></record></records>";
    let err = xml_report(entity).expect_err("unknown entity");
    assert!(
        err.to_string()
            .starts_with("d.xml:1: the XML is not well-formed"),
        "{err}"
    );
}

#[test]
fn a_profile_renames_columns_and_fills_defaults_in_every_format() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/example.toml"),
    )
    .expect("example profile");
    let profile = ColumnProfile::from_toml(&text, "example.toml").expect("valid");
    let options = ImportOptions {
        profile: Some(profile),
        ..ImportOptions::new("acme")
    };
    let csv = "Klantnummer;Telefoon;Openstaand bedrag;CONTROL_SCRIPT\n\
               K1;020 123 4567;10,00;\n\
               K2;06 12345678;5;special\n";
    let report = read_csv(csv.as_bytes(), &options).expect("readable");
    assert!(
        report.rejected.is_empty(),
        "{:?}",
        messages(&report.rejected)
    );
    assert!(
        report.warnings.is_empty(),
        "{:?}",
        messages(&report.warnings)
    );
    let scripts: Vec<(&str, &str)> = report
        .records
        .iter()
        .map(|r| (r.record_id.as_str(), r.script.as_str()))
        .collect();
    assert_eq!(scripts, [("K1", "reminder"), ("K2", "special")]);
    assert_eq!(
        field(&report.records[0], "INVOICE_AMOUNT_OPEN"),
        Some("10.00")
    );
    assert_eq!(field(&report.records[0], "ADDRESS_COUNTRY"), Some("NL"));

    let xml = b"<records><record><KLANTNUMMER>K1</KLANTNUMMER><TELEFOON>020 123 4567</TELEFOON></record></records>";
    let rows = xml_rows(&xml[..], &options).expect("readable");
    let report = collect_report(Vec::new(), rows).expect("readable");
    assert_eq!(report.records.len(), 1, "{:?}", messages(&report.rejected));
    assert_eq!(report.records[0].script, "reminder");
    assert_eq!(report.records[0].phones, ["+31201234567"]);

    let clash = "Klantnummer;IDENTIFICATION_RECORD_ID;CONTROL_SCRIPT\nK1;K1;s\n";
    let err = read_csv(clash.as_bytes(), &options).expect_err("mapped onto a present column");
    assert!(
        err.to_string()
            .contains("column IDENTIFICATION_RECORD_ID appears twice"),
        "{err}"
    );
}
