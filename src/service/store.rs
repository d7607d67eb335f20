//! The service's durable state: an embedded SQLite database in WAL mode, each
//! acknowledged change committed (and synced) before the service answers.
//!
//! Tables: `positions` (every position and trade in arrival order: its id and its
//! positions-file cells as JSON; the book is these rows in that order), `removed` (the ids
//! and cells of removed positions: an id is never booked again, so a trade delivered again
//! after its removal stays removed), `market` (every market update in arrival order,
//! applied over the scenario's market file on start), `limits` (the limits in force,
//! replaced whole by `PUT /limits`) and `meta` (whether the store was seeded).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::service::limits::Limit;

/// A position as stored: its id and its cells by positions-file column (text, as a file
/// would hold them, so that it parses to the same numbers).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPosition {
    /// The position's id (unique).
    pub id: String,
    /// Cells by column name (`id` included), e.g. `quantity` → `"2.5"`.
    pub cells: BTreeMap<String, String>,
}

/// One underlying's market move: a new spot and/or ATM vol.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketUpdate {
    /// The underlying quoted in the market file.
    pub underlying: String,
    /// New spot, USD per coin.
    pub spot: Option<f64>,
    /// New ATM implied vol, annualised fraction.
    pub atm_vol: Option<f64>,
}

/// The database (one connection, used by one request at a time).
pub struct Store {
    connection: Mutex<Connection>,
}

/// A database failure, naming the file.
fn database_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Resource {
        message: format!("database {}: {e}", path.display()),
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, in WAL mode with full syncs.
    pub fn open(path: &Path) -> Result<Store> {
        let failed = |e: rusqlite::Error| database_error(path, e);
        let connection = Connection::open(path).map_err(failed)?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(failed)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(database_error(
                path,
                format!("cannot use write-ahead logging (journal mode stays '{mode}')"),
            ));
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(failed)?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS positions (
                     seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     id TEXT NOT NULL UNIQUE,
                     cells TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS market (
                     seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     underlying TEXT NOT NULL,
                     spot REAL,
                     atm_vol REAL);
                 CREATE TABLE IF NOT EXISTS limits (
                     seq INTEGER PRIMARY KEY AUTOINCREMENT,
                     limit_json TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS removed (
                     id TEXT PRIMARY KEY,
                     cells TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS meta (
                     key TEXT PRIMARY KEY,
                     value TEXT NOT NULL);",
            )
            .map_err(failed)?;
        Ok(Store {
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(&self, work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let path = connection.path().unwrap_or("").to_owned();
        work(&mut connection).map_err(|e| database_error(Path::new(&path), e))
    }

    /// Whether the store was never initialised (no positions were ever imported into it):
    /// only then does the scenario's own positions file seed it.
    pub fn is_new(&self) -> Result<bool> {
        self.with(|c| {
            let marked: Option<String> = c
                .query_row(
                    "SELECT value FROM meta WHERE key = 'initialised'",
                    [],
                    |row| row.get(0),
                )
                .optional()?;
            let positions: i64 =
                c.query_row("SELECT COUNT(*) FROM positions", [], |row| row.get(0))?;
            Ok(marked.is_none() && positions == 0)
        })
    }

    /// Records that the store holds its initial book (later deletions stay deleted).
    pub fn mark_initialised(&self) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('initialised', datetime('now'))",
                [],
            )
            .map(|_| ())
        })
    }

    /// Every position, in arrival order.
    pub fn positions(&self) -> Result<Vec<StoredPosition>> {
        let rows: Vec<(String, String)> = self.with(|c| {
            let mut statement = c.prepare("SELECT id, cells FROM positions ORDER BY seq")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(id, cells)| {
                let cells = serde_json::from_str(&cells).map_err(|e| Error::Resource {
                    message: format!("database: position '{id}' is unreadable: {e}"),
                })?;
                Ok(StoredPosition { id, cells })
            })
            .collect()
    }

    /// What the store knows of id `id`: its cells (as stored JSON) and whether it is still
    /// held (`false`: it was removed); `None` for an id never seen.
    pub fn known(&self, id: &str) -> Result<Option<(String, bool)>> {
        self.with(|c| {
            let held = c
                .query_row("SELECT cells FROM positions WHERE id = ?1", [id], |row| {
                    row.get(0)
                })
                .optional()?;
            if let Some(cells) = held {
                return Ok(Some((cells, true)));
            }
            let removed: Option<String> = c
                .query_row("SELECT cells FROM removed WHERE id = ?1", [id], |row| {
                    row.get(0)
                })
                .optional()?;
            Ok(removed.map(|cells| (cells, false)))
        })
    }

    /// Appends `positions` in one transaction (all or none).
    pub fn add_positions(&self, positions: &[StoredPosition]) -> Result<()> {
        self.with(|c| {
            let transaction = c.transaction()?;
            for p in positions {
                let cells = serde_json::to_string(&p.cells).expect("text cells serialise");
                transaction.execute(
                    "INSERT INTO positions (id, cells) VALUES (?1, ?2)",
                    params![p.id, cells],
                )?;
            }
            transaction.commit()
        })
    }

    /// Removes position `id`; whether it was held.
    pub fn remove_position(&self, id: &str) -> Result<bool> {
        self.with(|c| {
            let transaction = c.transaction()?;
            transaction.execute(
                "INSERT OR REPLACE INTO removed (id, cells)
                 SELECT id, cells FROM positions WHERE id = ?1",
                [id],
            )?;
            let removed = transaction.execute("DELETE FROM positions WHERE id = ?1", [id])?;
            transaction.commit()?;
            Ok(removed > 0)
        })
    }

    /// Every market update, in arrival order.
    pub fn market_updates(&self) -> Result<Vec<MarketUpdate>> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT underlying, spot, atm_vol FROM market ORDER BY seq")?;
            let rows = statement.query_map([], |row| {
                Ok(MarketUpdate {
                    underlying: row.get(0)?,
                    spot: row.get(1)?,
                    atm_vol: row.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Appends `updates`, and the market's new as-of time when one is given (the service's
    /// valuation time from then on), in one transaction.
    pub fn add_market_updates(
        &self,
        updates: &[MarketUpdate],
        as_of: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.with(|c| {
            let transaction = c.transaction()?;
            for u in updates {
                transaction.execute(
                    "INSERT INTO market (underlying, spot, atm_vol) VALUES (?1, ?2, ?3)",
                    params![u.underlying, u.spot, u.atm_vol],
                )?;
            }
            if let Some(as_of) = as_of {
                transaction.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('valuation_time', ?1)",
                    params![as_of.to_rfc3339_opts(SecondsFormat::AutoSi, true)],
                )?;
            }
            transaction.commit()
        })
    }

    /// The as-of time of the last market update that gave one, if any did.
    pub fn valuation_time(&self) -> Result<Option<DateTime<Utc>>> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT value FROM meta WHERE key = 'valuation_time'",
                [],
                |row| row.get(0),
            )
            .optional()
        })?;
        text.map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::Resource {
                    message: format!(
                        "database: the stored valuation time '{t}' is unreadable: {e}"
                    ),
                })
        })
        .transpose()
    }

    /// The limits in force.
    pub fn limits(&self) -> Result<Vec<Limit>> {
        let texts: Vec<String> = self.with(|c| {
            let mut statement = c.prepare("SELECT limit_json FROM limits ORDER BY seq")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect()
        })?;
        texts
            .iter()
            .map(|text| {
                serde_json::from_str(text).map_err(|e| Error::Resource {
                    message: format!("database: a limit is unreadable: {e}"),
                })
            })
            .collect()
    }

    /// Replaces the limits in force with `limits`, in one transaction.
    pub fn replace_limits(&self, limits: &[Limit]) -> Result<()> {
        self.with(|c| {
            let transaction = c.transaction()?;
            transaction.execute("DELETE FROM limits", [])?;
            for limit in limits {
                let text = serde_json::to_string(limit).expect("a limit serialises");
                transaction.execute("INSERT INTO limits (limit_json) VALUES (?1)", [text])?;
            }
            transaction.commit()
        })
    }
}
