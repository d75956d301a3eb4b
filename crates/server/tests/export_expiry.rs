//! Exports expire 30 days after they are made: driven in-process over HTTP with a
//! controllable clock. Before: listed and downloadable. After: gone from the list,
//! answered 410, and the sweep deletes the file.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use repairops_api::{Client, JobState, NewExport, Plan, Role, Trust};
use repairops_server::app::{App, Clock};
use repairops_server::config::Config;

struct FakeClock(Mutex<DateTime<Utc>>);

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_are_deleted_thirty_days_after_they_were_made() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data: dir.path().join("data"),
        ..Config::default()
    };
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
    let made = DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let clock = Arc::new(FakeClock(Mutex::new(made)));
    let app = Arc::new(App::open(config, clock.clone()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = repairops_server::http::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = Client::new(&format!("http://{addr}"), Trust::System).unwrap();
    let (owner, _) = client.login(&email, &password).await.unwrap();

    let job = owner
        .start_export(&NewExport {
            dataset: "inventory".into(),
            format: "json".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut job = owner.job(job.id).await.unwrap();
    for _ in 0..400 {
        if job.state != JobState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        job = owner.job(job.id).await.unwrap();
    }
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let id = job.result.unwrap()["export_id"].as_i64().unwrap();
    let file = dir.path().join(format!("data/exports/{id}.sealed"));
    assert!(file.exists());
    let listed = owner.exports(&[]).await.unwrap().items;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].expires_at, made + chrono::Duration::days(30));

    // Day 29: still there (signed in afresh: sign-ins last less than a month).
    *clock.0.lock().unwrap() = made + chrono::Duration::days(29);
    let (owner, _) = client.login(&email, &password).await.unwrap();
    repairops_server::export_api::sweep(&app, clock.now()).await;
    assert!(file.exists());
    assert_eq!(owner.export_download(id, 0).await.unwrap().status(), 200);

    // Day 30 and a second: not listed, 410, and the sweep deletes the file.
    *clock.0.lock().unwrap() = made + chrono::Duration::days(30) + chrono::Duration::seconds(1);
    let (owner, _) = client.login(&email, &password).await.unwrap();
    assert!(owner.exports(&[]).await.unwrap().items.is_empty());
    let err = owner.export_download(id, 0).await.unwrap_err();
    assert_eq!(err.status(), Some(410));
    assert!(err.to_string().contains("kept 30 days"), "{err}");
    repairops_server::export_api::sweep(&app, clock.now()).await;
    assert!(!file.exists(), "the expired file is still on disk");
}
