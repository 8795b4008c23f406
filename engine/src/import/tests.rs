//! Tests of whole imports: small inline files and the vectors in
//! `engine/tests/data/import/`.

use super::*;

fn options(file: &str) -> ImportOptions {
    ImportOptions::new(file)
}

fn with_script(file: &str, script: &str) -> ImportOptions {
    ImportOptions {
        script: Some(script.to_owned()),
        ..ImportOptions::new(file)
    }
}

fn vector(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/import/{name}",
        env!("CARGO_MANIFEST_DIR").trim_end_matches('/')
    );
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn read(bytes: &[u8], options: &ImportOptions) -> ImportReport {
    read_csv(bytes, options).expect("the file as a whole is fine")
}

fn messages(issues: &[ImportIssue]) -> Vec<String> {
    issues.iter().map(ToString::to_string).collect()
}

fn field<'a>(record: &'a ImportedRecord, name: &str) -> Option<&'a str> {
    record.fields.get(name).map(String::as_str)
}

#[test]
fn semicolon_file() {
    let report = read(&vector("semicolon.csv"), &options("semicolon.csv"));
    assert_eq!(report.records.len(), 2);
    assert_eq!(
        messages(&report.rejected),
        [
            "semicolon.csv:4: CONTROL_SCRIPT: missing; name the script per row in this column \
             or choose one for the whole import"
        ]
    );
    let first = &report.records[0];
    assert_eq!(first.line, 2);
    assert_eq!(first.record_id, "1001");
    assert_eq!(first.client_reference.as_deref(), Some("C-1"));
    assert_eq!(first.script, "reminder");
    assert_eq!(first.phones, ["+31201234567", "+31612345678"]);
    assert!(!first.invalid_number);
    assert_eq!(field(first, "PERSON_LANGUAGE"), Some("nl"));
    assert_eq!(field(first, "INVOICE_DUE_DATE"), Some("2024-03-17"));
    assert_eq!(field(first, "INVOICE_AMOUNT_OPEN"), Some("125.50"));
    assert_eq!(field(first, "INVOICE_CURRENCY"), Some("EUR"));
    assert_eq!(field(first, "SERVICES_VOICE"), Some("Y"));
    // Belgian address: the national number is read as Belgian.
    let second = &report.records[1];
    assert_eq!(second.phones, ["+3225551212"]);
    assert_eq!(field(second, "SERVICES_VOICE"), Some("Y"));
    assert_eq!(field(second, "INVOICE_AMOUNT_OPEN"), Some("99.95"));
    assert!(
        report.warnings.is_empty(),
        "{:?}",
        messages(&report.warnings)
    );
}

#[test]
fn the_import_script_is_the_default_and_a_row_script_wins() {
    let report = read(
        &vector("semicolon.csv"),
        &with_script("semicolon.csv", "fallback"),
    );
    assert!(report.rejected.is_empty());
    let scripts: Vec<&str> = report.records.iter().map(|r| r.script.as_str()).collect();
    assert_eq!(scripts, ["reminder", "reminder", "fallback"]);
    // 1003 wants no voice, so having no number is fine.
    let third = &report.records[2];
    assert!(third.phones.is_empty());
    assert!(!third.invalid_number);
    assert_eq!(field(third, "CONTROL_SCRIPT"), None);
}

#[test]
fn comma_file_reads_like_the_semicolon_file() {
    let semicolon = read(&vector("semicolon.csv"), &with_script("x.csv", "s"));
    let comma = read(&vector("comma.csv"), &with_script("x.csv", "s"));
    assert_eq!(semicolon, comma);
}

#[test]
fn bom_crlf_and_loose_header_names() {
    let report = read(&vector("bom.csv"), &options("bom.csv"));
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
    let ids: Vec<&str> = report
        .records
        .iter()
        .map(|r| r.record_id.as_str())
        .collect();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(report.records[1].phones, ["+31612345678"]);
    assert_eq!(report.records[1].line, 3);
}

#[test]
fn quoted_newlines_keep_physical_line_numbers() {
    let report = read(&vector("quoted_newlines.csv"), &with_script("q.csv", "s"));
    let lines: Vec<u64> = report.records.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 7]);
    assert_eq!(
        field(&report.records[0], "INVOICE_DESCRIPTION"),
        Some("Two lines:\nwater; \"heating\"")
    );
    assert_eq!(
        messages(&report.rejected),
        [
            r#"q.csv:4: INVOICE_AMOUNT_OPEN: "twelve" is not an amount; expected e.g. 125.50 or 125,50"#
        ]
    );
}

#[test]
fn dutch_and_english_amounts() {
    let report = read(
        &vector("dutch_amounts.csv"),
        &with_script("debtors.csv", "s"),
    );
    assert_eq!(report.records.len(), 1);
    let record = &report.records[0];
    assert_eq!(field(record, "INVOICE_AMOUNT_OPEN"), Some("1250.50"));
    assert_eq!(field(record, "INVOICE_AMOUNT_TOTAL"), Some("1250000.00"));
    assert_eq!(
        field(record, "INVOICE_ARRANGEMENT_TERM_AMOUNT"),
        Some("125.00")
    );
    assert_eq!(field(record, "INVOICELINES_1_AMOUNT"), Some("0.50"));
    assert_eq!(field(record, "INVOICELINES_2_AMOUNT"), Some("1250000.05"));
    assert_eq!(
        messages(&report.rejected),
        [
            r#"debtors.csv:3: INVOICE_AMOUNT_OPEN: "12,3,4" is not an amount; expected e.g. 125.50 or 125,50"#,
            r#"debtors.csv:3: INVOICE_AMOUNT_TOTAL: "1.250" is ambiguous (thousands or decimals?); write 1250 or 1250.00 for thousands, or use at most two decimals"#,
            r#"debtors.csv:4: INVOICE_AMOUNT_TOTAL: "€ 10" is not an amount; expected e.g. 125.50 or 125,50"#,
            r#"debtors.csv:4: INVOICE_ARRANGEMENT_TERM_AMOUNT: "-5" is negative; expected an amount of zero or more, e.g. 125.50"#,
        ]
    );
    assert_eq!(report.rejected_lines(), [3, 4]);
}

#[test]
fn duplicate_and_missing_record_ids() {
    let report = read(&vector("duplicate_ids.csv"), &with_script("ids.csv", "s"));
    let ids: Vec<&str> = report
        .records
        .iter()
        .map(|r| r.record_id.as_str())
        .collect();
    assert_eq!(ids, ["A1", "A2"]);
    assert_eq!(
        messages(&report.rejected),
        [
            r#"ids.csv:4: IDENTIFICATION_RECORD_ID: "A1" is already used on line 2; record ids must be unique in the file"#,
            "ids.csv:5: IDENTIFICATION_RECORD_ID: missing; every row needs a record id, unique in the file",
            r#"ids.csv:6: IDENTIFICATION_RECORD_ID: "A2" is already used on line 3; record ids must be unique in the file"#,
        ]
    );
}

#[test]
fn bad_numbers_are_warnings_and_never_dialled() {
    let report = read(&vector("bad_number.csv"), &with_script("numbers.csv", "s"));
    assert!(
        report.rejected.is_empty(),
        "{:?}",
        messages(&report.rejected)
    );
    let [one, two, three, four] = report.records.as_slice() else {
        panic!("four records, got {}", report.records.len());
    };
    // Duplicates collapse; the bad first number is skipped, not dialled.
    assert_eq!(one.phones, ["+31201234567", "+31612345678"]);
    assert_eq!(field(one, "CONTACT_PHONE_1"), None);
    assert_eq!(field(one, "CONTRACT_CONTACT_PHONE"), Some("+31201234599"));
    assert_eq!(
        one.rejected_phones,
        [("CONTACT_PHONE_1".to_owned(), "12345".to_owned())]
    );
    assert!(!one.invalid_number);
    assert!(two.phones.is_empty());
    assert!(two.invalid_number);
    assert!(!three.invalid_number, "SERVICES_VOICE=N needs no number");
    assert!(!four.invalid_number);
    assert_eq!(
        messages(&report.warnings),
        [
            r#"numbers.csv:2: CONTACT_PHONE_1: "12345" is not a valid phone number (read with country NL); it is left out and never dialled"#,
            r#"numbers.csv:3: CONTACT_PHONE_1: "12345" is not a valid phone number (read with country NL); it is left out and never dialled"#,
            r#"numbers.csv:3: CONTACT_PHONE_2: "call me" is not a phone number (read with country NL); it is left out and never dialled"#,
            "numbers.csv:3: no valid phone number in CONTACT_PHONE_1, CONTACT_PHONE_2, CONTACT_PHONE_3, \
             CONTACT_MOBILE; the record is imported as invalid_number and not dialled",
            r#"numbers.csv:5: CONTRACT_CONTACT_PHONE: "not a number" is not a phone number (read with country NL); it is left out and never dialled"#,
        ]
    );
}

#[test]
fn unknown_columns_warn_once_and_are_kept() {
    let report = read(&vector("unknown_column.csv"), &with_script("u.csv", "s"));
    assert_eq!(
        messages(&report.warnings),
        [
            "u.csv:1: LOYALTY_TIER: unknown column; its values are kept as a custom field",
            "u.csv:1: INVOICELINES_4_AMOUNT: unknown column; its values are kept as a custom field",
            "u.csv:1: SERVICES_FAX: unknown column; its values are kept as a custom field",
        ]
    );
    assert!(report.rejected.is_empty());
    let first = &report.records[0];
    assert_eq!(field(first, "LOYALTY_TIER"), Some("gold"));
    // Custom columns are kept as written, not read as amounts.
    assert_eq!(field(first, "INVOICELINES_4_AMOUNT"), Some("12,50"));
    assert_eq!(field(first, "SERVICES_FAX"), Some("Y"));
    assert_eq!(field(&report.records[1], "SERVICES_FAX"), Some("N"));
    assert_eq!(field(&report.records[2], "LOYALTY_TIER"), None);
}

#[test]
fn missing_record_id_column_is_a_file_error() {
    let err = read_csv(
        vector("missing_record_id.csv").as_slice(),
        &options("missing.csv"),
    )
    .expect_err("no IDENTIFICATION_RECORD_ID");
    assert!(matches!(
        err,
        ImportError::MissingColumn {
            column: "IDENTIFICATION_RECORD_ID",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "missing.csv:1: the header has no IDENTIFICATION_RECORD_ID column; the first line must \
         be a header row naming the columns, and every row needs a record id"
    );
}

#[test]
fn missing_script_column_without_an_import_script_is_a_file_error() {
    let err = read_csv(&b"IDENTIFICATION_RECORD_ID\n1\n"[..], &options("s.csv"))
        .expect_err("no CONTROL_SCRIPT");
    assert!(matches!(
        err,
        ImportError::MissingColumn {
            column: "CONTROL_SCRIPT",
            ..
        }
    ));
    let report = read(b"IDENTIFICATION_RECORD_ID\n1\n", &with_script("s.csv", "s"));
    assert_eq!(report.records.len(), 1);
    // A blank script option counts as none.
    let blank = with_script("s.csv", "  ");
    assert!(read_csv(&b"IDENTIFICATION_RECORD_ID\n1\n"[..], &blank).is_err());
}

#[test]
fn not_utf8_is_a_file_error_naming_the_line() {
    let err = read_csv(
        vector("not_utf8.csv").as_slice(),
        &with_script("latin1.csv", "s"),
    )
    .expect_err("latin-1");
    assert_eq!(
        err.to_string(),
        "latin1.csv:3: the file is not UTF-8 text; save it as CSV UTF-8"
    );
    // Streaming: the good row comes first, then the error, then the end.
    let bytes = vector("not_utf8.csv");
    let mut rows = csv_rows(bytes.as_slice(), &with_script("latin1.csv", "s")).expect("header");
    assert!(matches!(rows.next(), Some(Ok(RowResult::Imported { .. }))));
    assert!(matches!(
        rows.next(),
        Some(Err(ImportError::NotUtf8 { line: 3, .. }))
    ));
    assert!(rows.next().is_none());
}

#[test]
fn empty_files_are_file_errors() {
    for empty in [&b""[..], b"\xEF\xBB\xBF", b"\n\n", b"\xEF\xBB\xBF\r\n"] {
        let err = read_csv(empty, &options("empty.csv")).expect_err("empty");
        assert!(matches!(err, ImportError::Empty { .. }), "{empty:?}: {err}");
        assert!(err.to_string().starts_with("empty.csv: the file is empty"));
    }
}

#[test]
fn a_header_only_file_has_no_rows() {
    let report = read(
        b"IDENTIFICATION_RECORD_ID;CONTROL_SCRIPT\r\n",
        &options("h.csv"),
    );
    assert_eq!(report, ImportReport::default());
}

#[test]
fn duplicate_columns_are_a_file_error() {
    let err = read_csv(
        &b"IDENTIFICATION_RECORD_ID;contact_phone_1;CONTACT_PHONE_1 \n"[..],
        &with_script("d.csv", "s"),
    )
    .expect_err("twice");
    assert_eq!(
        err.to_string(),
        "d.csv:1: column CONTACT_PHONE_1 appears twice in the header (columns 2 and 3)"
    );
}

#[test]
fn unknown_default_country_is_an_error() {
    let options = ImportOptions {
        default_country: "Holland".to_owned(),
        ..with_script("c.csv", "s")
    };
    let err = read_csv(&b"IDENTIFICATION_RECORD_ID\n1\n"[..], &options).expect_err("country");
    assert!(matches!(err, ImportError::UnknownDefaultCountry { .. }));
    // Lower case is fine.
    let options = ImportOptions {
        default_country: "be".to_owned(),
        ..with_script("c.csv", "s")
    };
    let report = read(
        b"IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1\n1;02 555 12 12\n",
        &options,
    );
    assert_eq!(report.records[0].phones, ["+3225551212"]);
}

#[test]
fn wrong_cell_counts_are_rejected_and_blank_rows_skipped() {
    let file = b"IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;PERSON_LAST_NAME\n\
        1;0201234567;Jansen\n\
        2;0201234567\n\
        ;;\n\
        \n\
        3;0201234567;de Vries;extra\n\
        4;0201234567;Bakker\n";
    let report = read(file, &with_script("cells.csv", "s"));
    let ids: Vec<&str> = report
        .records
        .iter()
        .map(|r| r.record_id.as_str())
        .collect();
    assert_eq!(ids, ["1", "4"]);
    assert_eq!(report.records[1].line, 7);
    assert_eq!(
        messages(&report.rejected),
        [
            "cells.csv:3: the row has 2 cells but the header has 3 columns; quote values that \
             contain the delimiter",
            "cells.csv:6: the row has 4 cells but the header has 3 columns; quote values that \
             contain the delimiter",
        ]
    );
}

#[test]
fn every_bad_value_of_a_row_is_reported() {
    let file = "IDENTIFICATION_RECORD_ID;INVOICE_DATE;INVOICE_CURRENCY;PERSON_LANGUAGE;\
                ADDRESS_COUNTRY;SERVICES_SMS;CONTACT_PHONE_1\n\
                1;31-02-2024;EURO;Dutch;Netherlands;ja;0201234567\n";
    let report = read(file.as_bytes(), &with_script("v.csv", "s"));
    assert!(report.records.is_empty());
    assert_eq!(
        messages(&report.rejected),
        [
            r#"v.csv:2: INVOICE_DATE: "31-02-2024" is not a day of the calendar; expected YYYY-MM-DD or DD-MM-YYYY"#,
            r#"v.csv:2: INVOICE_CURRENCY: "EURO" is not a currency code; expected three letters (ISO 4217), e.g. EUR"#,
            r#"v.csv:2: PERSON_LANGUAGE: "Dutch" is not a language code; expected two letters (ISO 639-1), e.g. nl"#,
            r#"v.csv:2: ADDRESS_COUNTRY: "Netherlands" is not a country code; expected two letters (ISO 3166-1 alpha-2), e.g. NL"#,
            r#"v.csv:2: SERVICES_SMS: "ja" is not Y or N; expected Y or N"#,
        ]
    );
}

#[test]
fn unnamed_columns_with_values_warn_once() {
    let file = b"IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;\n1;0201234567;\n2;0201234567;x\n3;0201234567;y\n";
    let report = read(file, &with_script("n.csv", "s"));
    assert_eq!(report.records.len(), 3);
    assert_eq!(
        messages(&report.warnings),
        [r#"n.csv:3: column 3 has no name in the header; its values, such as "x", are ignored"#]
    );
}

#[test]
fn dates_fields_and_currency_are_normalised() {
    let file = "Identification_Record_Id,Person_Date_Of_Birth,Emandate_Valid_Until,\
                Control_Start_Date,Invoice_Currency,Contact_Email\n\
                7,1-2-1980,2025-12-31,05-01-2024,usd, jan@example.nl \n";
    let report = read(file.as_bytes(), &with_script("d.csv", "s"));
    let record = &report.records[0];
    assert_eq!(field(record, "PERSON_DATE_OF_BIRTH"), Some("1980-02-01"));
    assert_eq!(field(record, "EMANDATE_VALID_UNTIL"), Some("2025-12-31"));
    assert_eq!(field(record, "CONTROL_START_DATE"), Some("2024-01-05"));
    assert_eq!(field(record, "INVOICE_CURRENCY"), Some("USD"));
    assert_eq!(field(record, "CONTACT_EMAIL"), Some("jan@example.nl"));
    assert_eq!(field(record, "IDENTIFICATION_RECORD_ID"), Some("7"));
    assert!(record.invalid_number);
}

#[test]
fn streaming_gives_the_same_rows_as_collecting() {
    let bytes = vector("bad_number.csv");
    let options = with_script("numbers.csv", "s");
    let rows = csv_rows(bytes.as_slice(), &options).expect("header");
    assert!(rows.header_warnings().is_empty());
    let mut imported = Vec::new();
    for row in rows {
        if let RowResult::Imported { record, .. } = row.expect("utf-8") {
            imported.push(record);
        }
    }
    assert_eq!(imported, read(&bytes, &options).records);
}

#[test]
fn a_large_file_streams_row_by_row() {
    // A reader that makes rows on the fly: nothing holds the whole file.
    struct Generated {
        next: u64,
        rows: u64,
        pending: Vec<u8>,
    }
    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pending.is_empty() && self.next <= self.rows {
                self.pending = if self.next == 0 {
                    b"IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN\n".to_vec()
                } else {
                    format!("{};020 {:07};{},50\n", self.next, self.next, self.next).into_bytes()
                };
                self.next += 1;
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }
    let rows = 20_000;
    let source = Generated {
        next: 0,
        rows,
        pending: Vec::new(),
    };
    let mut count = 0u64;
    for row in csv_rows(source, &with_script("big.csv", "s")).expect("header") {
        match row.expect("utf-8") {
            RowResult::Imported { record, .. } => {
                count += 1;
                assert_eq!(record.line, count + 1);
            }
            RowResult::Rejected { errors, .. } => panic!("{errors:?}"),
        }
    }
    assert_eq!(count, rows);
}

#[test]
fn issues_display_with_and_without_a_field() {
    let issue = ImportIssue {
        file: "debtors.csv".to_owned(),
        line: 17,
        field: Some("INVOICE_AMOUNT_OPEN".to_owned()),
        message: "bad".to_owned(),
    };
    assert_eq!(
        issue.to_string(),
        "debtors.csv:17: INVOICE_AMOUNT_OPEN: bad"
    );
    let issue = ImportIssue {
        field: None,
        ..issue
    };
    assert_eq!(issue.to_string(), "debtors.csv:17: bad");
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_rows_are_accounted_for(body in "([0-9a-z;,\" .\\n-]{0,12}){0,12}") {
            let file = format!(
                "IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;INVOICE_DATE\n{body}"
            );
            let report = read_csv(file.as_bytes(), &with_script("p.csv", "s"))
                .expect("UTF-8 with a header");
            for record in &report.records {
                prop_assert!(!record.record_id.is_empty());
                prop_assert!(record.phones.iter().all(|p| p.starts_with('+')));
            }
        }
    }
}

#[test]
fn line_numbers_survive_crlf_blank_lines_and_quoted_breaks() {
    let file = b"\r\n\r\nIDENTIFICATION_RECORD_ID;INVOICE_DESCRIPTION\r\n\
        1;one\r\n\
        \r\n\
        2;\"two\r\nlines\"\r\n\
        \n\
        3;\"x\ny\nz\"\n\
        4;last";
    let report = read(file, &with_script("lines.csv", "s"));
    let lines: Vec<u64> = report.records.iter().map(|r| r.line).collect();
    assert_eq!(lines, [4, 6, 9, 12]);
    let err = read_csv(&b"\n\nA;B\n"[..], &options("late.csv")).expect_err("no id column");
    assert!(
        err.to_string().starts_with("late.csv:3: the header has no"),
        "{err}"
    );
}

#[test]
fn e_mail_addresses_are_checked_and_a_record_without_one_gets_no_e_mail() {
    let file = "IDENTIFICATION_RECORD_ID;SERVICES_VOICE;SERVICES_EMAIL;CONTACT_EMAIL\n\
                1;N;Y;jan@example.nl\n\
                2;N;Y;jan at example.nl\n\
                3;N;Y;\n\
                4;N;N;piet@localhost\n\
                5;N;Y;ann@mail.example.co.uk\n";
    let report = read(file.as_bytes(), &with_script("e.csv", "s"));
    assert!(report.rejected.is_empty());
    assert_eq!(report.records.len(), 5, "a bad address rejects no record");
    let email = |i: usize| field(&report.records[i], "CONTACT_EMAIL");
    assert_eq!(email(0), Some("jan@example.nl"));
    assert_eq!(email(1), None);
    assert_eq!(email(3), None);
    assert_eq!(email(4), Some("ann@mail.example.co.uk"));
    assert_eq!(
        messages(&report.warnings),
        [
            r#"e.csv:3: CONTACT_EMAIL: "jan at example.nl" is not an e-mail address; it is left out and no e-mail goes to it"#,
            "e.csv:3: CONTACT_EMAIL: SERVICES_EMAIL is Y but there is no valid CONTACT_EMAIL; no e-mail is sent",
            "e.csv:4: CONTACT_EMAIL: SERVICES_EMAIL is Y but there is no valid CONTACT_EMAIL; no e-mail is sent",
            r#"e.csv:5: CONTACT_EMAIL: "piet@localhost" is not an e-mail address; it is left out and no e-mail goes to it"#,
        ]
    );
    for bad in ["a@b", "@b.nl", "a@b..nl", "a@@b.nl", "a b@c.nl", "a@b.nl."] {
        assert!(super::normalise::email(bad).is_err(), "{bad}");
    }
}
