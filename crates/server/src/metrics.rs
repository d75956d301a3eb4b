//! Prometheus metrics at `/metrics` (prometheus-client, text format): backup age, last
//! duration and size per account, jobs running by kind, the queue of failed jobs, and
//! HTTP latencies by route. Values read from the control plane are computed at scrape
//! time; latencies are recorded by a middleware. Answered only to clients on this
//! machine: the listener may face the shop's network, and scraping is an operator's job.

use std::sync::atomic::AtomicU64;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::AppState;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Metrics kept between scrapes.
pub struct Metrics {
    http: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            http: Family::new_with_constructor(latency_histogram),
        }
    }
}

/// Records each request's latency by method, route pattern (never the raw path, which
/// holds ids) and status class.
pub async fn record(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let class = format!("{}xx", response.status().as_u16() / 100);
    app.metrics
        .http
        .get_or_create(&vec![
            ("method".into(), method),
            ("route".into(), route),
            ("status".into(), class),
        ])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn scrape(State(app): State<AppState>, ext: axum::http::Extensions) -> Response {
    if !crate::http::client_ip(&ext).is_loopback() {
        return crate::error::ApiError::forbidden("metrics are served to this machine only").into_response();
    }
    let now = app.clock.now();
    let rows = app
        .control
        .read(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT a.slug,
                            (SELECT finished_at FROM backups b WHERE b.account_id = a.id AND b.state = 'succeeded' ORDER BY b.id DESC LIMIT 1),
                            (SELECT duration_ms FROM backups b WHERE b.account_id = a.id AND b.state = 'succeeded' ORDER BY b.id DESC LIMIT 1),
                            (SELECT size_bytes FROM backups b WHERE b.account_id = a.id AND b.state = 'succeeded' ORDER BY b.id DESC LIMIT 1),
                            (SELECT count(*) FROM backups b WHERE b.account_id = a.id AND b.state = 'failed'
                                 AND b.started_at > datetime('now', '-1 day'))
                     FROM accounts a ORDER BY a.slug",
                )
                .map_err(crate::control::db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(crate::control::db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(crate::control::db_err)
        })
        .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut registry = Registry::with_prefix("repairops");
    let age = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let duration = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let size = Family::<Labels, Gauge>::default();
    let failed = Family::<Labels, Gauge>::default();
    for (slug, finished, ms, bytes, failures) in rows {
        let l = vec![("account".to_string(), slug)];
        if let Some(t) = finished.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok()) {
            age.get_or_create(&l)
                .set((now - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0);
        }
        if let Some(ms) = ms {
            duration.get_or_create(&l).set(ms as f64 / 1000.0);
        }
        if let Some(b) = bytes {
            size.get_or_create(&l).set(b);
        }
        failed.get_or_create(&l).set(failures);
    }
    let running = Family::<Labels, Gauge>::default();
    for (kind, n) in app.jobs.running_by_kind() {
        running.get_or_create(&vec![("kind".to_string(), kind)]).set(n as i64);
    }
    registry.register(
        "backup_age_seconds",
        "Seconds since the account's last successful backup finished",
        age,
    );
    registry.register(
        "backup_last_duration_seconds",
        "Duration of the account's last successful backup",
        duration,
    );
    registry.register(
        "backup_last_size_bytes",
        "Live data (database and attachments) in the account's last successful backup",
        size,
    );
    registry.register(
        "backup_failures_last_day",
        "Backups of the account that failed in the last 24 hours",
        failed,
    );
    registry.register("jobs_running", "Jobs running now, by kind", running);
    registry.register(
        "http_request_duration_seconds",
        "HTTP request latency by method, route and status class",
        app.metrics.http.clone(),
    );
    let mut text = String::new();
    if encode(&mut text, &registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
