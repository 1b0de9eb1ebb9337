//! The two databases behind one [`Backend`]: SQLite (embedded, WAL) and PostgreSQL. Same
//! schema: table `cdr` (the [`COLUMNS`], a surrogate `id`, unique on
//! (`call_id`, `b_call_id`, `setup_ms`), indexed on `setup_ms`) and table `cdr_spool` (one row:
//! how far into the spool file the rows go, committed in the same transaction as the rows).

use std::path::Path;

use crate::row::{Row, Value, COLUMNS};
use crate::Error;

/// Where in the spool the committed rows end: (inode of the file, byte offset).
pub type SpoolPos = (u64, u64);

/// Which CDRs a query returns: `setup_ms` in `[from_ms, to_ms)`, optionally one account or one
/// trunk (either side of the call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// First setup time, Unix ms (inclusive).
    pub from_ms: u64,
    /// Last setup time, Unix ms (exclusive).
    pub to_ms: u64,
    /// Only calls whose inbound or outbound account is this.
    pub account: Option<String>,
    /// Only calls whose inbound or outbound trunk is this.
    pub trunk: Option<String>,
}

/// A CDR database.
pub trait Backend: Send {
    /// Where the rows committed so far end in the spool (None: nothing committed yet).
    fn position(&mut self) -> Result<Option<SpoolPos>, Error>;
    /// Inserts `rows` (a row whose key is present already is skipped) and records `pos`, in
    /// one transaction; returns the number of rows inserted.
    fn commit(&mut self, rows: &[Row], pos: SpoolPos) -> Result<usize, Error>;
    /// The rows `f` selects, by setup time.
    fn query(&mut self, f: &Filter) -> Result<Vec<Row>, Error>;
}

fn ddl(id: &str) -> Vec<String> {
    let cols: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(k, c)| format!("{c} {} NOT NULL", if Row::is_text(k) { "TEXT" } else { "BIGINT" }))
        .collect();
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS cdr (id {id}, {}, UNIQUE (call_id, b_call_id, setup_ms))",
            cols.join(", ")
        ),
        "CREATE INDEX IF NOT EXISTS cdr_setup ON cdr (setup_ms)".into(),
        "CREATE TABLE IF NOT EXISTS cdr_spool (id INTEGER PRIMARY KEY CHECK (id = 1), inode BIGINT NOT NULL, pos BIGINT NOT NULL)"
            .into(),
    ]
}

fn insert_sql(ph: impl Fn(usize) -> String) -> String {
    let vals: Vec<String> = (1..=COLUMNS.len()).map(ph).collect();
    format!(
        "INSERT INTO cdr ({}) VALUES ({}) ON CONFLICT (call_id, b_call_id, setup_ms) DO NOTHING",
        COLUMNS.join(", "),
        vals.join(", ")
    )
}

const SPOOL_UPSERT_SQLITE: &str =
    "INSERT INTO cdr_spool (id, inode, pos) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET inode = excluded.inode, pos = excluded.pos";
const SPOOL_UPSERT_PG: &str =
    "INSERT INTO cdr_spool (id, inode, pos) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET inode = excluded.inode, pos = excluded.pos";

/// The SELECT for `f` with its text parameters, placeholders from `ph`.
fn select_sql(f: &Filter, ph: impl Fn(usize) -> String) -> (String, Vec<String>) {
    let mut sql =
        format!("SELECT {} FROM cdr WHERE setup_ms >= {} AND setup_ms < {}", COLUMNS.join(", "), f.from_ms, f.to_ms);
    let mut params = Vec::new();
    for (v, a, b) in [(&f.account, "account_in", "account_out"), (&f.trunk, "trunk_in", "trunk_out")] {
        if let Some(v) = v {
            params.push(v.clone());
            let p = ph(params.len());
            sql.push_str(&format!(" AND ({a} = {p} OR {b} = {p})"));
        }
    }
    sql.push_str(" ORDER BY setup_ms, id");
    (sql, params)
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The embedded store: one SQLite file in WAL mode.
pub struct Sqlite {
    conn: rusqlite::Connection,
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Value::Text(s) => rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(s.as_bytes())),
            Value::Int(n) => rusqlite::types::ToSqlOutput::Owned(rusqlite::types::Value::Integer(*n)),
        })
    }
}

impl Sqlite {
    /// Opens (creates) the database at `path`: WAL, `synchronous = NORMAL` (a commit survives
    /// the death of the process; the spool covers the rest), the schema.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        for s in ddl("INTEGER PRIMARY KEY") {
            conn.execute(&s, [])?;
        }
        Ok(Self { conn })
    }
}

impl Backend for Sqlite {
    fn position(&mut self) -> Result<Option<SpoolPos>, Error> {
        let mut st = self.conn.prepare("SELECT inode, pos FROM cdr_spool WHERE id = 1")?;
        let mut rows = st.query([])?;
        Ok(match rows.next()? {
            Some(r) => Some((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            None => None,
        })
    }

    fn commit(&mut self, rows: &[Row], pos: SpoolPos) -> Result<usize, Error> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        {
            let mut st = tx.prepare_cached(&insert_sql(|k| format!("?{k}")))?;
            for r in rows {
                n += st.execute(rusqlite::params_from_iter(r.values().iter()))?;
            }
            tx.execute(SPOOL_UPSERT_SQLITE, [i64_of(pos.0), i64_of(pos.1)])?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn query(&mut self, f: &Filter) -> Result<Vec<Row>, Error> {
        let (sql, params) = select_sql(f, |k| format!("?{k}"));
        let mut st = self.conn.prepare(&sql)?;
        let mut q = st.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            let mut texts = Vec::new();
            let mut ints = Vec::new();
            for k in 0..COLUMNS.len() {
                if Row::is_text(k) {
                    texts.push(r.get::<_, String>(k)?);
                } else {
                    ints.push(r.get::<_, i64>(k)?);
                }
            }
            out.push(assemble(&texts, &ints)?);
        }
        Ok(out)
    }
}

/// A row from its text and integer columns, each in [`COLUMNS`] order.
fn assemble(texts: &[String], ints: &[i64]) -> Result<Row, Error> {
    let (mut t, mut i) = (texts.iter(), ints.iter());
    let vals: Vec<Value<'_>> = (0..COLUMNS.len())
        .map(|k| {
            if Row::is_text(k) {
                Value::Text(t.next().map_or("", |s| s))
            } else {
                Value::Int(*i.next().unwrap_or(&0))
            }
        })
        .collect();
    Row::from_values(&vals).ok_or(Error::BadRow)
}

/// The scale-out store: a PostgreSQL server (the synchronous `postgres` client).
pub struct Postgres {
    client: postgres::Client,
}

impl Postgres {
    /// Connects with `conn` (a libpq-style connection string) and creates the schema.
    pub fn connect(conn: &str) -> Result<Self, Error> {
        let mut client = postgres::Client::connect(conn, postgres::NoTls)?;
        for s in ddl("BIGSERIAL PRIMARY KEY") {
            client.batch_execute(&s)?;
        }
        Ok(Self { client })
    }
}

impl Backend for Postgres {
    fn position(&mut self) -> Result<Option<SpoolPos>, Error> {
        let r = self.client.query_opt("SELECT inode, pos FROM cdr_spool WHERE id = 1", &[])?;
        Ok(r.map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64)))
    }

    fn commit(&mut self, rows: &[Row], pos: SpoolPos) -> Result<usize, Error> {
        let mut tx = self.client.transaction()?;
        let st = tx.prepare(&insert_sql(|k| format!("${k}")))?;
        let mut n = 0;
        for r in rows {
            let vals = r.values();
            let params: Vec<&(dyn postgres::types::ToSql + Sync)> = vals
                .iter()
                .map(|v| match v {
                    Value::Text(s) => s as &(dyn postgres::types::ToSql + Sync),
                    Value::Int(n) => n as &(dyn postgres::types::ToSql + Sync),
                })
                .collect();
            n += tx.execute(&st, &params)? as usize;
        }
        tx.execute(SPOOL_UPSERT_PG, &[&i64_of(pos.0), &i64_of(pos.1)])?;
        tx.commit()?;
        Ok(n)
    }

    fn query(&mut self, f: &Filter) -> Result<Vec<Row>, Error> {
        let (sql, params) = select_sql(f, |k| format!("${k}"));
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> =
            params.iter().map(|s| s as &(dyn postgres::types::ToSql + Sync)).collect();
        let mut out = Vec::new();
        for r in self.client.query(&sql, &p)? {
            let mut texts = Vec::new();
            let mut ints = Vec::new();
            for k in 0..COLUMNS.len() {
                if Row::is_text(k) {
                    texts.push(r.get::<_, String>(k));
                } else {
                    ints.push(r.get::<_, i64>(k));
                }
            }
            out.push(assemble(&texts, &ints)?);
        }
        Ok(out)
    }
}

/// Opens the store `cfg` names (None for `store = "none"`).
pub fn open(cfg: &xtrunk_config::CdrStore) -> Result<Option<Box<dyn Backend>>, Error> {
    use xtrunk_config::StoreKind;
    Ok(match cfg.store {
        StoreKind::None => None,
        StoreKind::Sqlite => Some(Box::new(Sqlite::open(&cfg.sqlite_path)?)),
        StoreKind::Postgres => Some(Box::new(Postgres::connect(cfg.postgres.as_deref().unwrap_or(""))?)),
    })
}
