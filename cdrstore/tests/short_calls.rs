//! The short-call report on a synthetic month, stored in a real SQLite file and read back
//! through the export filter, against a hand-computed expectation.

use xtrunk_cdrstore::export::parse_time;
use xtrunk_cdrstore::report::{short_calls, MonthReport};
use xtrunk_cdrstore::row::normalise;
use xtrunk_cdrstore::{Backend, Filter, Row, Sqlite};

/// A call from `account` to `to` at `day` (of `month`, 2026 or 2027-01), answered for `ms`
/// (None: never answered).
fn call(n: &mut u64, account: &str, month: &str, day: u32, to: &str, ms: Option<u64>) -> Row {
    *n += 1;
    let setup = parse_time(&format!("{month}-{day:02}T12:00:00Z")).unwrap() + *n;
    let (answer, end) = match ms {
        Some(d) => (setup + 2_000, setup + 2_000 + d),
        None => (0, setup + 30_000),
    };
    Row {
        call_id: format!("c{n}"),
        b_call_id: format!("b{n}"),
        trunk_in: format!("{account}-pbx"),
        trunk_out: "carrier".into(),
        account_in: account.into(),
        to_dialled: to.into(),
        to_norm: normalise(to),
        setup_ms: setup,
        answer_ms: answer,
        end_ms: end,
        duration_ms: if answer == 0 { 0 } else { end - answer },
        sip_code: if answer == 0 { 487 } else { 200 },
        ..Row::default()
    }
}

#[test]
fn synthetic_month_matches_the_hand_computed_report() {
    let mut n = 0;
    let mut rows = Vec::new();
    let mut add = |k: usize, account: &str, month: &str, to: &str, ms: Option<u64>| {
        for i in 0..k {
            rows.push(call(&mut n, account, month, 1 + (i as u32 % 28), to, ms));
        }
    };
    // acme, December: 50 calls to Germany.
    add(12, "acme", "2026-12", "+4930123456", None); // zero (never answered)
    add(3, "acme", "2026-12", "+4930123456", Some(500)); // zero (under 1 s)
    add(10, "acme", "2026-12", "004930123456", Some(6_900)); // short (6 s)
    add(5, "acme", "2026-12", "+49 30 123456", Some(1_000)); // short (1 s)
    add(20, "acme", "2026-12", "+4930123456", Some(7_000)); // long (7 s)
                                                            // ... and 40 unanswered calls to India, left out.
    add(40, "acme", "2026-12", "+91 98765 43210", None);
    // beta, December: 10 calls, exactly 20 % of each kind (not over).
    add(2, "beta", "2026-12", "+4930123456", None);
    add(2, "beta", "2026-12", "+4930123456", Some(3_000));
    add(6, "beta", "2026-12", "+4930123456", Some(120_000));
    // acme, November: 4 calls, one 0 s (25 %).
    add(1, "acme", "2026-11", "+4930123456", None);
    add(3, "acme", "2026-11", "+4930123456", Some(60_000));
    // January: outside the period asked for.
    add(5, "acme", "2027-01", "+4930123456", None);

    let dir = std::env::temp_dir().join(format!("xtrunk-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut db = Sqlite::open(&dir.join("cdr.sqlite")).unwrap();
    assert_eq!(db.commit(&rows, (1, 1)).unwrap(), rows.len());
    assert_eq!(db.commit(&rows, (1, 2)).unwrap(), 0, "the same CDRs again are not stored twice");
    let f = Filter {
        from_ms: parse_time("2026-11-01").unwrap(),
        to_ms: parse_time("2027-01-01").unwrap(),
        ..Filter::default()
    };
    let got = short_calls(&db.query(&f).unwrap());
    let m = |account: &str, month: &str, t, z, ze, s, se, flagged| MonthReport {
        account: account.into(),
        month: month.into(),
        total: t,
        zero: z,
        zero_excess: ze,
        short: s,
        short_excess: se,
        flagged,
    };
    let want = vec![
        // 1 of 4 is 25 % > 20 %: one call over (20 % of 4 is 0.8, floored to 0).
        m("acme", "2026-11", 4, 1, 1, 0, 0, true),
        // 15 of 50 each (30 %): 5 over the 10 that 20 % allows.
        m("acme", "2026-12", 50, 15, 5, 15, 5, true),
        // 2 of 10 each: exactly 20 %, not over.
        m("beta", "2026-12", 10, 2, 0, 2, 0, false),
    ];
    assert_eq!(got, want);
    // One account's filter selects only its calls (either side).
    let acme = Filter { account: Some("beta".into()), ..f };
    assert_eq!(db.query(&acme).unwrap().len(), 10);
    let _ = std::fs::remove_dir_all(&dir);
}
