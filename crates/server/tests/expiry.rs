//! Exports expire 30 days after they are made, sandboxes 7 days: driven in-process over
//! HTTP with a controllable clock. Before: listed and usable. After: gone from the list,
//! answered 410, and the sweep deletes the files.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use repairops_api::{Client, Job, JobState, NewExport, Plan, Role, Trust};
use repairops_server::app::{App, Clock};
use repairops_server::config::Config;

struct FakeClock(Mutex<DateTime<Utc>>);

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

struct Harness {
    app: Arc<App>,
    clock: Arc<FakeClock>,
    client: Client,
    email: String,
    password: String,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn start(at: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data: dir.path().join("data"),
            ..Config::default()
        };
        config.backup.schedule = false;
        let report = repairops_server::seed::seed(
            &config,
            "shop",
            Plan::Pro,
            "America/Chicago",
            repairops_server::seed::Size::Small,
        )
        .unwrap();
        let (_, email, password) = report
            .sign_ins
            .iter()
            .find(|(r, _, _)| *r == Role::Owner)
            .unwrap()
            .clone();
        let now = DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc);
        let clock = Arc::new(FakeClock(Mutex::new(now)));
        let app = Arc::new(App::open(config, clock.clone()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = repairops_server::http::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let client = Client::new(&format!("http://{addr}"), Trust::System).unwrap();
        Harness {
            app,
            clock,
            client,
            email,
            password,
            dir,
        }
    }

    /// Moves the clock and signs in afresh (sign-ins last less than a month).
    async fn at(&self, t: DateTime<Utc>) -> Client {
        *self.clock.0.lock().unwrap() = t;
        self.client.login(&self.email, &self.password).await.unwrap().0
    }
}

async fn finish(client: &Client, job: Job) -> Job {
    let mut job = client.job(job.id).await.unwrap();
    for _ in 0..1200 {
        if job.state != JobState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        job = client.job(job.id).await.unwrap();
    }
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_deleted_thirty_days_after_they_were_made() {
    let h = Harness::start("2026-11-01T12:00:00Z").await;
    let made = h.clock.now();
    let owner = h.at(made).await;
    let (app, clock, dir) = (&h.app, &h.clock, &h.dir);
    let job = owner
        .start_export(&NewExport {
            dataset: "inventory".into(),
            format: "json".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let job = finish(&owner, job).await;
    let id = job.result.unwrap()["export_id"].as_i64().unwrap();
    let file = dir.path().join(format!("data/exports/{id}.sealed"));
    assert!(file.exists());
    let listed = owner.exports(&[]).await.unwrap().items;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].expires_at, made + chrono::Duration::days(30));

    // Day 29: still there (signed in afresh: sign-ins last less than a month).
    let owner = h.at(made + chrono::Duration::days(29)).await;
    repairops_server::export_jobs::sweep(app, clock.now()).await;
    assert!(file.exists());
    assert_eq!(owner.export_download(id, 0).await.unwrap().status(), 200);

    // Day 30 and a second: not listed, 410, and the sweep deletes the file.
    let owner = h
        .at(made + chrono::Duration::days(30) + chrono::Duration::seconds(1))
        .await;
    assert!(owner.exports(&[]).await.unwrap().items.is_empty());
    let err = owner.export_download(id, 0).await.unwrap_err();
    assert_eq!(err.status(), Some(410));
    assert!(err.to_string().contains("kept 30 days"), "{err}");
    repairops_server::export_jobs::sweep(app, clock.now()).await;
    assert!(!file.exists(), "the expired file is still on disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_are_deleted_seven_days_after_they_were_made() {
    let h = Harness::start("2026-11-01T12:00:00Z").await;
    let made = h.clock.now();
    let owner = h.at(made).await;
    let backup = finish(&owner, owner.back_up_now().await.unwrap()).await;
    let backup_id = backup.result.unwrap()["backup_id"].as_i64().unwrap();
    let job = finish(&owner, owner.create_sandbox(backup_id).await.unwrap()).await;
    let id = job.result.unwrap()["sandbox_id"].as_i64().unwrap();
    let files = h.dir.path().join(format!("data/sandboxes/{id}"));
    assert!(files.join("live.db").exists());

    let owner = h.at(made + chrono::Duration::days(6)).await;
    repairops_server::sandboxes::sweep(&h.app, h.clock.now()).await;
    assert!(owner.in_sandbox(id).get::<repairops_api::Ticket>(1).await.is_ok());
    assert_eq!(owner.sandboxes().await.unwrap().items.len(), 1);

    let owner = h
        .at(made + chrono::Duration::days(7) + chrono::Duration::seconds(1))
        .await;
    assert!(owner.sandboxes().await.unwrap().items.is_empty());
    let err = owner.in_sandbox(id).get::<repairops_api::Ticket>(1).await.unwrap_err();
    assert_eq!(err.status(), Some(410));
    repairops_server::sandboxes::sweep(&h.app, h.clock.now()).await;
    assert!(!files.exists(), "the expired sandbox's files are still on disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_drill_runs_monthly() {
    let h = Harness::start("2026-11-01T12:00:00Z").await;
    let made = h.clock.now();
    let owner = h.at(made).await;
    finish(&owner, owner.back_up_now().await.unwrap()).await;
    let account = h
        .app
        .control
        .read(|c| Ok(repairops_server::control::account_by_slug(c, "shop").unwrap().unwrap()))
        .await
        .unwrap();
    let drills = || {
        let c = rusqlite::Connection::open(h.dir.path().join("data/server.db")).unwrap();
        c.query_row("SELECT count(*) FROM drills WHERE kind = 'scheduled'", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
    };
    // Not in the first month after the first backup.
    repairops_server::drills::tick(&h.app, made + chrono::Duration::days(29)).await;
    assert_eq!(drills(), 0);
    // Then once, and not again until a month after it.
    let month = made + chrono::Duration::days(30);
    *h.clock.0.lock().unwrap() = month;
    repairops_server::drills::tick(&h.app, month).await;
    assert_eq!(drills(), 1);
    for _ in 0..1200 {
        if h.app.jobs.running(account.id).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    repairops_server::drills::tick(&h.app, month + chrono::Duration::days(10)).await;
    assert_eq!(drills(), 1);
    let owner = h.at(month + chrono::Duration::days(10)).await;
    let drill = owner.backup_status().await.unwrap().last_drill.unwrap();
    assert_eq!((drill.kind.as_str(), drill.passed), ("scheduled", Some(true)));
}
