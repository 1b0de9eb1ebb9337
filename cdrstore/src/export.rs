//! `xtrunk cdr export`: rows as CSV (RFC 4180: a header line of [`COLUMNS`], fields quoted when
//! they hold `,`, `"`, CR or LF) or as JSON (one array of objects); [`parse_csv`] reads CSV back.

use std::io::Write;

use crate::row::{Row, Value, COLUMNS};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV with a header.
    Csv,
    /// A JSON array of objects.
    Json,
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Writes `rows` to `w` in `format`.
pub fn write(w: &mut impl Write, rows: &[Row], format: Format) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *w, rows)?;
            writeln!(w)
        }
        Format::Csv => {
            writeln!(w, "{}", COLUMNS.join(","))?;
            let mut line = String::new();
            for r in rows {
                line.clear();
                for (k, v) in r.values().iter().enumerate() {
                    if k > 0 {
                        line.push(',');
                    }
                    match v {
                        Value::Text(s) => csv_field(&mut line, s),
                        Value::Int(n) => line.push_str(&n.to_string()),
                    }
                }
                writeln!(w, "{line}")?;
            }
            Ok(())
        }
    }
}

/// Splits CSV text into records of fields (quoted fields may hold separators and newlines).
fn records(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let (mut rec, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => rec.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                rec.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut rec));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !rec.is_empty() {
        rec.push(field);
        out.push(rec);
    }
    out
}

/// Parses what [`write`] wrote as CSV; None when the header or a record does not fit.
pub fn parse_csv(text: &str) -> Option<Vec<Row>> {
    let recs = records(text);
    let (head, body) = recs.split_first()?;
    if head.iter().map(String::as_str).ne(COLUMNS) {
        return None;
    }
    body.iter()
        .map(|r| {
            let vals: Option<Vec<Value<'_>>> = r
                .iter()
                .enumerate()
                .map(|(k, f)| if Row::is_text(k) { Some(Value::Text(f)) } else { f.parse().ok().map(Value::Int) })
                .collect();
            Row::from_values(&vals?).filter(|_| r.len() == COLUMNS.len())
        })
        .collect()
}

/// Unix ms of a date or time given on the command line: `YYYY-MM-DD` (00:00 UTC),
/// `YYYY-MM-DDTHH:MM:SSZ`, or a number of Unix ms.
pub fn parse_time(s: &str) -> Option<u64> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00Z"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.strip_suffix('Z').unwrap_or(time);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next().flatten().unwrap_or(0), t.next().flatten().unwrap_or(0));
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let secs = days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs).ok().map(|s| s * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month) of Unix ms (UTC).
pub fn year_month(ms: u64) -> (i64, i64) {
    let z = i64::try_from(ms / 86_400_000).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_awkward_text() {
        let rows = vec![
            Row { call_id: "a,b\"c\nd".into(), setup_ms: 1, transfers: r#"[{"to":"1"}]"#.into(), ..Row::default() },
            Row { call_id: String::new(), srtp_a: true, a_jitter: 7, ..Row::default() },
        ];
        let mut out = Vec::new();
        write(&mut out, &rows, Format::Csv).unwrap();
        assert_eq!(parse_csv(std::str::from_utf8(&out).unwrap()), Some(rows));
    }

    #[test]
    fn times_parse_in_utc() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time("2026-12-01T10:00:00Z"), Some(1_796_119_200_000));
        assert_eq!(parse_time("12345"), Some(12345));
        assert_eq!(parse_time("2026-13-01"), None);
        assert_eq!(year_month(1_796_119_200_000), (2026, 12));
        assert_eq!(year_month(parse_time("2024-02-29T23:59:59Z").unwrap()), (2024, 2));
    }
}
