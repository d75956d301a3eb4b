//! The server's shared state: configuration, the control plane, each account's live
//! database, the audit key, and the clock (passed in, so tests control time).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::audit::{AuditEntry, AuditKey};
use crate::auth::{LoginThrottle, RateLimit};
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;

/// Where time comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Shared by every request.
pub type AppState = Arc<App>;

pub struct App {
    pub config: Config,
    pub control: Db,
    pub audit_key: AuditKey,
    pub clock: Arc<dyn Clock>,
    pub login_throttle: LoginThrottle,
    pub portal_limit: RateLimit,
    pub jobs: Arc<crate::jobs::Jobs>,
    /// Bounds concurrent password hashing (memory-hard by design).
    pub password_checks: tokio::sync::Semaphore,
    /// Seals stored export files (`keys/exports.key`).
    pub export_key: Arc<crate::sealed_file::FileKey>,
    /// Keys the email hashes of the deletion ledger (`keys/ledger.key`).
    pub ledger_key: [u8; 32],
    pub metrics: crate::metrics::Metrics,
    /// Each account's live database, by slug.
    live: Databases<String>,
    /// Each sandbox's database, by id.
    sandboxes: Databases<i64>,
}

/// Databases opened on first use, by key. The registry's lock is held only to find a
/// database's slot; the slot's own lock is held while the database is opened (and
/// migrated) or while its files are swapped or removed, so a slow one holds up only
/// the requests for it. Requests wait for a slot asynchronously: however many of them
/// wait for a shop being restored, the server's worker threads go on serving others.
struct Databases<K> {
    slots: Mutex<HashMap<K, Slot>>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Db>>>;

impl<K: std::hash::Hash + Eq + Clone> Databases<K> {
    fn new() -> Databases<K> {
        Databases {
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &K) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key.clone()).or_default().clone()
    }

    /// The open database, or the one `open` opens (which the next call gets). `open`
    /// runs on a blocking thread: it may migrate the schema.
    async fn get_or_open(
        &self,
        key: &K,
        open: impl FnOnce() -> Result<Db, ApiError> + Send + 'static,
    ) -> Result<Db, ApiError> {
        let mut db = self.slot(key).lock_owned().await;
        if let Some(db) = db.as_ref() {
            return Ok(db.clone());
        }
        // The slot goes with the open, which runs to its end even if this request is
        // dropped meanwhile: a second open, or a restore's swap, must not start while
        // it is still at work on the files.
        tokio::task::spawn_blocking(move || {
            let opened = open()?;
            *db = Some(opened.clone());
            Ok(opened)
        })
        .await
        .map_err(|e| ApiError::internal("open the database", e))?
    }

    /// Closes the database and runs `f` before anything can open it again. Called from
    /// a blocking thread (a restore's, a sandbox removal's), never from a request's task.
    fn with_closed<T>(&self, key: &K, f: impl FnOnce() -> T) -> T {
        let slot = self.slot(key);
        let mut db = slot.blocking_lock();
        if let Some(db) = db.take() {
            db.close();
        }
        f()
    }

    /// Closes the database, runs `f` (which removes its files) and forgets its slot.
    fn remove<T>(&self, key: &K, f: impl FnOnce() -> T) -> T {
        let done = self.with_closed(key, f);
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        done
    }
}

/// One account's shop data: its database and its attachment files.
#[derive(Clone)]
pub struct ShopData {
    pub db: Db,
    pub attachments: PathBuf,
}

impl App {
    /// Opens the control plane under the configured data folder.
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<App, String> {
        std::fs::create_dir_all(&config.data)
            .map_err(|e| format!("cannot create data folder {}: {e}", config.data.display()))?;
        let control = crate::control::open(&config.data)?;
        let audit_key =
            AuditKey::load_or_create(&config.data).map_err(|e| format!("cannot load the audit key: {e}"))?;
        let export_key = load_or_create_secret(&config.data, "exports.key")
            .map_err(|e| format!("cannot load the export key: {e}"))?;
        let ledger_key = load_or_create_secret(&config.data, "ledger.key")
            .map_err(|e| format!("cannot load the deletion-ledger key: {e}"))?;
        crate::export_jobs::recover(&control, &config.data);
        crate::restores::recover(&control, &config.data);
        crate::sandboxes::recover(&control, &config.data);
        crate::drills::recover(&control, &config.data);
        let portal_limit = RateLimit::new(config.portal_per_minute);
        // Database copies left by backups a crash interrupted hold customers' data.
        if let Ok(accounts) = std::fs::read_dir(config.data.join("accounts")) {
            for a in accounts.flatten() {
                let _ = std::fs::remove_dir_all(a.path().join(".backup"));
            }
        }
        let jobs = Arc::new(crate::jobs::Jobs::new(
            control.clone(),
            Arc::new(crate::jobs::Events::default()),
        ));
        Ok(App {
            jobs,
            password_checks: tokio::sync::Semaphore::new(4),
            export_key: Arc::new(crate::sealed_file::FileKey::new(&export_key)),
            ledger_key,
            metrics: crate::metrics::Metrics::default(),
            config,
            control,
            audit_key,
            clock,
            login_throttle: LoginThrottle::default(),
            portal_limit,
            live: Databases::new(),
            sandboxes: Databases::new(),
        })
    }

    /// The live data of an account, opened (and migrated) on first use.
    pub async fn shop_data(&self, slug: &str) -> Result<ShopData, ApiError> {
        let dir = self.config.account_dir(slug);
        let attachments = dir.join("attachments");
        let folder = attachments.clone();
        let db = self
            .live
            .get_or_open(&slug.to_string(), move || {
                if let Some(aside) = crate::restores::stranded_files(&dir) {
                    return Err(ApiError::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "restore_incomplete",
                        format!(
                            "A failed restore could not put this shop's files back; they are safe in {}. \
                             Restart the server to put them back, or tell your administrator.",
                            aside.display()
                        ),
                    ));
                }
                std::fs::create_dir_all(&folder).map_err(|e| ApiError::internal("create the shop's data folder", e))?;
                open_live(&dir.join("live.db")).map_err(|e| ApiError::internal("open the shop's data", e))
            })
            .await?;
        Ok(ShopData { db, attachments })
    }

    /// Where a sandbox's files live.
    pub fn sandbox_dir(&self, id: i64) -> PathBuf {
        self.config.data.join("sandboxes").join(id.to_string())
    }

    /// A sandbox's shop data, opened on first use (the caller checked it is ready and
    /// belongs to the account).
    pub async fn sandbox_data(&self, id: i64) -> Result<ShopData, ApiError> {
        let dir = self.sandbox_dir(id);
        let attachments = dir.join("attachments");
        let db = self
            .sandboxes
            .get_or_open(&id, move || {
                // Removed since the caller looked it up: opening would make an empty one.
                // (Removal holds this slot, so the check and the open see the same files.)
                let live = dir.join("live.db");
                match live.try_exists() {
                    Ok(true) => open_live(&live).map_err(|e| ApiError::internal("open the sandbox", e)),
                    Ok(false) => Err(ApiError::not_found(&format!("sandbox {id}"))),
                    Err(e) => Err(ApiError::internal("open the sandbox", e)),
                }
            })
            .await?;
        Ok(ShopData { db, attachments })
    }

    /// Closes a sandbox's database and removes its files.
    pub fn remove_sandbox(&self, id: i64) -> std::io::Result<()> {
        self.sandboxes
            .remove(&id, || match std::fs::remove_dir_all(self.sandbox_dir(id)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            })
    }

    /// Runs `swap` with the account's live database closed and no request able to open
    /// it (a restore renames files here); the next request opens whatever is there then.
    /// Requests for other accounts go on meanwhile.
    pub fn with_live_closed<T>(&self, slug: &str, swap: impl FnOnce() -> T) -> T {
        self.live.with_closed(&slug.to_string(), swap)
    }

    /// Appends to the audit log; a failure to audit is logged, never hidden.
    /// Appends to the audit log from a job's own (blocking) thread; a failure is
    /// logged, never the job's failure.
    pub fn audit_blocking(&self, entry: &AuditEntry) {
        self.control.with_writer(|c| {
            if let Err(e) = crate::audit::append(c, &self.audit_key, entry) {
                tracing::error!(error = %e, "audit entry lost");
            }
        });
    }

    pub async fn audit(&self, entry: AuditEntry) {
        let key = self.audit_key.clone();
        let result = self
            .control
            .write(move |c| {
                crate::audit::append(c, &key, &entry).map_err(|e| ApiError::internal("write the audit log", e))
            })
            .await;
        if let Err(e) = result {
            tracing::error!(message = %e.message, "audit entry lost");
        }
    }
}

/// A 32-byte server secret kept in `keys/{name}` (hex, owner-only), made on first use.
/// These keys live outside every backup, like the control plane.
pub fn load_or_create_secret(data: &std::path::Path, name: &str) -> std::io::Result<[u8; 32]> {
    let path = data.join("keys").join(name);
    let mut k = [0u8; 32];
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            hex::decode_to_slice(text.trim(), &mut k).map_err(|_| {
                std::io::Error::other(format!("{} is damaged: it must hold 64 hex digits", path.display()))
            })?;
            Ok(k)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            repairops_vault::crypto::fill_random(&mut k);
            crate::tls::write_private(&path, hex::encode(k).as_bytes())?;
            Ok(k)
        }
        Err(e) => Err(e),
    }
}

/// Opens a live database and brings its schema up to date.
pub fn open_live(path: &std::path::Path) -> rusqlite::Result<Db> {
    Db::open(path, |c| crate::db::migrate(c, crate::live::MIGRATIONS))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn app_in(dir: &std::path::Path) -> Arc<App> {
        let config = Config {
            data: dir.join("data"),
            ..Config::default()
        };
        Arc::new(App::open(config, Arc::new(SystemClock)).unwrap())
    }

    /// A request that found a sandbox just before it was removed is told it is gone,
    /// and no empty database is made in its place.
    #[tokio::test]
    async fn a_sandbox_removed_under_a_request_is_not_found_and_not_remade() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        std::fs::create_dir_all(app.sandbox_dir(4)).unwrap();
        open_live(&app.sandbox_dir(4).join("live.db")).unwrap();
        app.sandbox_data(4).await.unwrap();
        // Removal waits for the slot: a blocking thread's work, as in the server.
        let removing = app.clone();
        tokio::task::spawn_blocking(move || removing.remove_sandbox(4))
            .await
            .unwrap()
            .unwrap();
        let err = app.sandbox_data(4).await.err().expect("a removed sandbox");
        assert_eq!(err.status, axum::http::StatusCode::NOT_FOUND, "{}", err.message);
        assert_eq!(err.message, "sandbox 4 not found");
        assert!(!app.sandbox_dir(4).exists(), "nothing made in its place");
        // A folder left without its database is not opened either.
        std::fs::create_dir_all(app.sandbox_dir(5)).unwrap();
        assert!(app.sandbox_data(5).await.is_err());
        assert!(!app.sandbox_dir(5).join("live.db").exists());
    }

    /// More requests for a shop being swapped than the server has worker threads wait
    /// for the swap without holding those threads: other shops are served meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_waiting_for_a_shop_being_swapped_do_not_hold_up_other_shops() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        let first = app.shop_data("first").await.unwrap();
        app.shop_data("second").await.unwrap();

        let (entered, swapping) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let swap = tokio::task::spawn_blocking({
            let app = app.clone();
            move || {
                app.with_live_closed("first", || {
                    let _ = entered.send(first.db.is_closed());
                    let _ = released.recv_timeout(Duration::from_secs(30));
                })
            }
        });
        // (This test's own thread is not one of the two workers; it may block.)
        assert_eq!(
            swapping.recv_timeout(Duration::from_secs(10)),
            Ok(true),
            "the swapped shop's database is closed during the swap"
        );
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { app.shop_data("first").await.map(|d| d.db.is_closed()) })
            })
            .collect();
        let (served, other_shops) = mpsc::channel();
        tokio::spawn({
            let app = app.clone();
            async move {
                // After the requests for the swapped shop have started waiting.
                tokio::time::sleep(Duration::from_millis(200)).await;
                // Opening a shop for the first time, and using an open one, both go on.
                let third = app.shop_data("third").await.is_ok();
                let second = app.shop_data("second").await.is_ok();
                let _ = served.send(third && second);
            }
        });
        let answered = other_shops.recv_timeout(Duration::from_secs(10));
        release.send(()).unwrap();
        assert_eq!(answered, Ok(true), "another shop waited for the swap");
        swap.await.unwrap();
        // The waiting requests get the shop opened again after the swap.
        for request in waiting {
            assert_eq!(request.await.unwrap().ok(), Some(false));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_dropped_while_its_database_opens_keeps_swaps_out_until_the_open_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let databases = Arc::new(Databases::<i64>::new());
        let (opening, open_started) = mpsc::channel();
        let (finish, open_may_finish) = mpsc::channel::<()>();
        let request = tokio::spawn({
            let (databases, path) = (databases.clone(), path.clone());
            async move {
                databases
                    .get_or_open(&1, move || {
                        let _ = opening.send(());
                        let _ = open_may_finish.recv_timeout(Duration::from_secs(30));
                        open_live(&path).map_err(|e| ApiError::internal("open", e))
                    })
                    .await
            }
        });
        open_started.recv_timeout(Duration::from_secs(10)).unwrap();
        // The client goes away while its shop is being opened (and migrated).
        request.abort();
        assert!(matches!(request.await, Err(e) if e.is_cancelled()));
        let swap = tokio::task::spawn_blocking({
            let databases = databases.clone();
            move || databases.with_closed(&1, || ())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !swap.is_finished(),
            "a swap went ahead while the database was being opened"
        );
        finish.send(()).unwrap();
        swap.await.unwrap();
        // The swap closed what the open left; the next request opens it afresh.
        let reopened = databases
            .get_or_open(&1, move || open_live(&path).map_err(|e| ApiError::internal("open", e)))
            .await
            .unwrap();
        assert!(!reopened.is_closed());
    }
}
