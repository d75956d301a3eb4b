//! SQLite connections for async handlers.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a small pool of
//! readers; WAL mode lets readers run while the writer writes. Work runs on tokio's
//! blocking threads so a slow query never stalls the reactor.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use crate::error::ApiError;

/// A database file with one writer and pooled readers.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Set when the file is being replaced (a restore): no more reads or writes here.
    closed: std::sync::atomic::AtomicBool,
}

fn replaced() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "The shop's data is being replaced by a restore; try again in a moment.",
    )
}

/// Opens a connection with the settings every connection of ours uses, creating the
/// database if there is none.
pub fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    open_with(path, OpenFlags::SQLITE_OPEN_CREATE)
}

/// Opens an existing database as [`open_connection`] does, never creating one: for a
/// path a person typed, where a mistake must not leave an empty database behind.
pub fn open_existing(path: &Path) -> rusqlite::Result<Connection> {
    open_with(path, OpenFlags::empty())
}

fn open_with(path: &Path, create: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | create | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
    )?;
    Ok(conn)
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to
    /// date with `migrate`.
    pub fn open(path: &Path, migrate: impl FnOnce(&mut Connection) -> rusqlite::Result<()>) -> rusqlite::Result<Db> {
        let mut writer = open_connection(path)?;
        migrate(&mut writer)?;
        Ok(Db {
            inner: Arc::new(DbInner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a reader connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            if inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(replaced());
            }
            let conn = match inner.readers.lock().ok().and_then(|mut r| r.pop()) {
                Some(c) => c,
                None => open_connection(&inner.path)?,
            };
            let out = f(&conn);
            if let Ok(mut r) = inner.readers.lock()
                && r.len() < 8
                && !inner.closed.load(std::sync::atomic::Ordering::SeqCst)
            {
                r.push(conn);
            }
            out
        })
        .await
    }

    /// Runs `f` on the writer connection.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut conn = inner.lock_writer();
            if inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(replaced());
            }
            f(&mut conn)
        })
        .await
    }

    /// Whether [`Db::close`] was called (a restore swapped the files under it).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Closes every connection this handle keeps (waiting for a write in progress), so the
    /// file can be replaced; later calls answer "being replaced". A read already running
    /// finishes on the old file.
    pub fn close(&self) {
        self.inner.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut r) = self.inner.readers.lock() {
            r.clear();
        }
        let mut w = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(placeholder) = Connection::open_in_memory() {
            drop(std::mem::replace(&mut *w, placeholder));
        }
    }

    /// The writer connection, for start-up and command-line work outside async code.
    pub fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut conn = self.inner.lock_writer();
        f(&mut conn)
    }
}

impl DbInner {
    /// The writer connection. A write that panicked (a bug) left the lock poisoned and
    /// maybe a transaction open: the connection is taken back and that transaction
    /// rolled back, so one bug neither stops every later write nor commits half of
    /// itself.
    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        match self.writer.lock() {
            Ok(conn) => conn,
            Err(poisoned) => {
                self.writer.clear_poison();
                let conn = poisoned.into_inner();
                if !conn.is_autocommit() {
                    tracing::warn!("rolling back the transaction a panicked write left open");
                    if let Err(e) = conn.execute_batch("ROLLBACK") {
                        tracing::error!(error = %e, "could not roll back after a panicked write");
                    }
                }
                conn
            }
        }
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("finish a database task", e))?
}

/// Applies numbered migrations: `PRAGMA user_version` records how many have run.
///
/// Foreign keys are off while they run, as SQLite's guide to changing a table asks: a
/// table rebuilt by copy, drop and rename would otherwise cascade the drop into every
/// table that refers to it. Each step commits only if it left no more broken references
/// than there were before it.
pub fn migrate(conn: &mut Connection, steps: &[&str]) -> rusqlite::Result<()> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if done >= steps.len() {
        return Ok(());
    }
    let enforced: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let result = (|| {
        for (i, sql) in steps.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            let broken_before = broken_references(&tx)?;
            tx.execute_batch(sql)?;
            let broken_after = broken_references(&tx)?;
            if broken_after > broken_before {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                    Some(format!(
                        "schema migration {} would break {} references between tables; nothing was changed",
                        i + 1,
                        broken_after - broken_before
                    )),
                ));
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    })();
    if enforced {
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
    }
    result
}

/// How many rows refer to a row that is not there (`PRAGMA foreign_key_check`).
fn broken_references(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_that_panics_is_rolled_back_and_later_writes_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), |c| {
            c.execute_batch("CREATE TABLE t (x INTEGER)")
        })
        .unwrap();
        let err = db
            .write(|c| -> Result<(), ApiError> {
                c.execute_batch("BEGIN; INSERT INTO t VALUES (1);")?;
                panic!("a bug in the middle of a transaction")
            })
            .await
            .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        db.write(|c| Ok(c.execute("INSERT INTO t VALUES (2)", [])?))
            .await
            .unwrap();
        db.with_writer(|c| c.execute("INSERT INTO t VALUES (3)", [])).unwrap();
        let rows = db
            .read(|c| {
                let mut stmt = c.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, [2, 3], "the panicked write left nothing behind");
    }
}
