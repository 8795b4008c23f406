//! The CSV result file: `;` as delimiter, UTF-8 without BOM, CRLF line ends
//! (RFC 4180), quotes only where a value needs them (a `;`, a quote or a
//! line break), a header row even when there are no rows.

use std::io::{self, Write};

use super::{call_values, Layout, ResultRow, CALL_FIELDS};

/// Writes `rows` as a CSV result file (see the module docs of
/// [`crate::results`] for the columns).
pub fn write_csv(rows: &[ResultRow], out: impl Write) -> io::Result<()> {
    let layout = Layout::of(rows);
    let mut writer = ::csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(::csv::Terminator::CRLF)
        .from_writer(out);
    writer.write_record(layout.header())?;
    let mut cells: Vec<String> = Vec::new();
    for row in rows {
        cells.clear();
        cells.push(row.record_id.clone());
        cells.push(row.client_reference.clone().unwrap_or_default());
        for n in 0..layout.calls {
            match row.calls.get(n) {
                Some(call) => {
                    cells.extend(call_values(call).into_iter().map(Option::unwrap_or_default))
                }
                None => cells.extend(CALL_FIELDS.iter().map(|_| String::new())),
            }
        }
        for n in 0..layout.custom {
            let (key, value) = row.custom.get(n).cloned().unwrap_or_default();
            cells.push(key);
            cells.push(value);
        }
        writer.write_record(&cells)?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, row};
    use super::*;

    fn written(rows: &[ResultRow]) -> String {
        let mut out = Vec::new();
        write_csv(rows, &mut out).expect("in memory");
        String::from_utf8(out).expect("UTF-8")
    }

    /// The file read back with the csv crate: header and rows.
    fn parsed(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.as_bytes());
        let header = reader
            .headers()
            .expect("a header")
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader
            .records()
            .map(|record| {
                record
                    .expect("a record")
                    .iter()
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        (header, rows)
    }

    #[test]
    fn an_empty_day_is_a_header_only_file() {
        let text = written(&[]);
        assert!(!text.starts_with('\u{feff}'));
        assert!(text.ends_with("CALLRESULTS_CALL_1_VOICELOG_ID\r\n"));
        assert_eq!(text.matches("\r\n").count(), 1);
        let (header, rows) = parsed(&text);
        assert_eq!(header.len(), 2 + CALL_FIELDS.len());
        assert_eq!(
            header[..3],
            [
                "IDENTIFICATION_RECORD_ID",
                "IDENTIFICATION_CLIENT_REFERENCE",
                "CALLRESULTS_CALL_1_STARTED_AT"
            ]
        );
        assert!(rows.is_empty());
    }

    #[test]
    fn one_row_exactly() {
        let mut one = row("1001", vec![call(5, "success")]);
        one.client_reference = Some("C-1".to_owned());
        assert_eq!(
            written(&[one]),
            "IDENTIFICATION_RECORD_ID;IDENTIFICATION_CLIENT_REFERENCE;\
             CALLRESULTS_CALL_1_STARTED_AT;CALLRESULTS_CALL_1_NUMBER;CALLRESULTS_CALL_1_DIRECTION;\
             CALLRESULTS_CALL_1_STATUS;CALLRESULTS_CALL_1_SIP_CODE;CALLRESULTS_CALL_1_RING_S;\
             CALLRESULTS_CALL_1_TALK_S;CALLRESULTS_CALL_1_SUCCESS_POINT;CALLRESULTS_CALL_1_AMD;\
             CALLRESULTS_CALL_1_VOICEMAIL_LEFT;CALLRESULTS_CALL_1_FORWARDED;CALLRESULTS_CALL_1_DTMF;\
             CALLRESULTS_CALL_1_VOICELOG_ID\r\n\
             1001;C-1;2024-03-17T09:30:05Z;+31201234567;out;success;200;4.3;31.0;Y;human;N;N;1#;\r\n"
        );
    }

    #[test]
    fn rows_with_different_numbers_of_calls_and_custom_results() {
        let mut first = row("1", vec![call(0, "no_answer")]);
        first.custom = vec![("choice".to_owned(), "2".to_owned())];
        let mut second = row(
            "2",
            vec![call(0, "busy"), call(30, "voicemail"), call(59, "success")],
        );
        second.calls[1].voicemail_left = true;
        second.calls[1].sip_code = None;
        second.calls[1].amd = Some("machine".to_owned());
        second.calls[1].voicelog_id = Some("vl-9".to_owned());
        let third = row("3", vec![]);
        let (header, rows) = parsed(&written(&[first, second, third]));
        assert_eq!(header.len(), 2 + 3 * CALL_FIELDS.len() + 2);
        assert_eq!(header[2 + 13], "CALLRESULTS_CALL_2_STARTED_AT");
        assert_eq!(header[2 + 26 + 12], "CALLRESULTS_CALL_3_VOICELOG_ID");
        assert_eq!(
            header[header.len() - 2..],
            ["CUSTOMRESULTS_CUSTOM_1_KEY", "CUSTOMRESULTS_CUSTOM_1_VALUE"]
        );
        let cell = |row: &Vec<String>, name: &str| {
            let at = header.iter().position(|h| h == name).expect("column");
            row[at].clone()
        };
        assert!(rows.iter().all(|row| row.len() == header.len()));
        assert_eq!(cell(&rows[0], "CALLRESULTS_CALL_1_STATUS"), "no_answer");
        assert_eq!(cell(&rows[0], "CALLRESULTS_CALL_2_STATUS"), "");
        assert_eq!(cell(&rows[0], "CUSTOMRESULTS_CUSTOM_1_VALUE"), "2");
        assert_eq!(cell(&rows[1], "CALLRESULTS_CALL_2_VOICEMAIL_LEFT"), "Y");
        assert_eq!(cell(&rows[1], "CALLRESULTS_CALL_2_SIP_CODE"), "");
        assert_eq!(cell(&rows[1], "CALLRESULTS_CALL_2_VOICELOG_ID"), "vl-9");
        assert_eq!(
            cell(&rows[1], "CALLRESULTS_CALL_3_STARTED_AT"),
            "2024-03-17T09:30:59Z"
        );
        assert_eq!(cell(&rows[1], "CUSTOMRESULTS_CUSTOM_1_KEY"), "");
        assert_eq!(cell(&rows[2], "IDENTIFICATION_RECORD_ID"), "3");
        assert_eq!(cell(&rows[2], "CALLRESULTS_CALL_1_STARTED_AT"), "");
    }

    #[test]
    fn values_with_delimiters_quotes_and_line_breaks_are_quoted() {
        let mut tricky = row("a;b", vec![call(0, "success")]);
        tricky.client_reference = Some("say \"hi\"".to_owned());
        tricky.custom = vec![("note".to_owned(), "line 1\r\nline 2".to_owned())];
        tricky.calls[0].dtmf = "*;#".to_owned();
        let text = written(std::slice::from_ref(&tricky));
        assert!(text.contains("\"a;b\";\"say \"\"hi\"\"\";"), "{text}");
        let (header, rows) = parsed(&text);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], "a;b");
        assert_eq!(rows[0][1], "say \"hi\"");
        assert_eq!(rows[0][header.len() - 1], "line 1\r\nline 2");
        assert!(rows[0].contains(&"*;#".to_owned()));
    }
}
