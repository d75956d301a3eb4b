//! End-to-end tests of the real `repairops-server` binary over HTTPS.

mod common;

use std::collections::BTreeMap;

use common::*;
use repairops_api::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn raw(client: &Client, method: Method, path: &str, body: Option<(&str, &str)>) -> (StatusCode, Value) {
    let (status, bytes) = client
        .raw(method, path, body.map(|(b, ct)| (b.as_bytes().to_vec(), ct)))
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
}

/// Every error body is our shape with a readable message.
fn assert_error(v: &Value) {
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !v["error"]["code"].as_str().unwrap_or_default().is_empty() && msg.len() > 10,
        "not an error body: {v}"
    );
    assert!(
        !msg.contains("panicked") && !msg.contains("rusqlite"),
        "internals leaked: {msg}"
    );
}

#[tokio::test]
async fn sign_in_read_write_and_sign_out() {
    let server = TestServer::start();
    let (owner, session) = server
        .client()
        .login("owner@demo.repairops.test", "demo-owner")
        .await
        .unwrap();
    assert_eq!(session.user.role, Role::Owner);
    assert_eq!(session.account.slug, "demo");
    assert_eq!(owner.account().await.unwrap().timezone, "America/Chicago");

    let page = owner.list::<Ticket>(&[("limit", "10")]).await.unwrap();
    assert_eq!(page.items.len(), 10);
    let next = page.next.clone().unwrap();
    let page2 = owner
        .list::<Ticket>(&[("limit", "10"), ("cursor", &next)])
        .await
        .unwrap();
    assert!(page2.items[0].id > page.items[9].id);
    let waiting = owner
        .list::<Ticket>(&[("status", "Waiting for Parts"), ("limit", "500")])
        .await
        .unwrap();
    assert!(
        waiting
            .items
            .iter()
            .all(|t| t.status.as_deref() == Some("Waiting for Parts"))
    );

    let customer = owner
        .create::<Customer>(&CustomerInput {
            shop_id: 1,
            first_name: "Ayşe".into(),
            last_name: "Yılmaz, \"Jr\"".into(),
            email: Some("ayse@example.com".into()),
            phone: None,
            address: None,
            city: None,
            postal_code: None,
            notes: Some("שלום 😀".into()),
        })
        .await
        .unwrap();
    let ticket = owner
        .create::<Ticket>(&TicketInput {
            shop_id: 1,
            customer_id: customer.id,
            device_make: "Apple".into(),
            device_model: "iPhone 13".into(),
            problem: "Cracked screen".into(),
            device_type: Some("phone".into()),
            serial_number: None,
            status: None,
            estimate_cents: Some(12900),
            technician_id: None,
            completed_at: None,
        })
        .await
        .unwrap();
    assert_eq!(ticket.status.as_deref(), Some("New"));
    let moved = owner
        .update::<Ticket>(
            ticket.id,
            &TicketPatch {
                status: Some("In Repair".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.status.as_deref(), Some("In Repair"));
    assert_eq!(
        owner.get::<Customer>(customer.id).await.unwrap().notes.as_deref(),
        Some("שלום 😀")
    );

    let photo = b"\xFF\xD8\xFF\xE0 not really a photo".to_vec();
    let att = owner
        .upload_attachment(ticket.id, "front crack.jpg", "image/jpeg", photo.clone())
        .await
        .unwrap();
    assert_eq!(att.size, photo.len() as i64);
    assert_eq!(owner.download_attachment(att.id).await.unwrap(), photo);

    owner.logout().await.unwrap();
    let err = owner.account().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_slowed_down() {
    let server = TestServer::start();
    let c = server.client();
    let err = c.login("owner@demo.repairops.test", "nope").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.to_string().contains("email or password is wrong"), "{err}");
    let err = c.login("nobody@demo.repairops.test", "nope").await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    for _ in 0..4 {
        let _ = c.login("owner@demo.repairops.test", "nope").await;
    }
    let err = c.login("owner@demo.repairops.test", "demo-owner").await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(429),
        "sign-in not slowed down after repeated failures: {err}"
    );
    assert!(err.to_string().contains("try again in"), "{err}");
}

#[tokio::test]
async fn tls_is_pinned_to_the_servers_own_ca() {
    let server = TestServer::start();
    // The system's roots do not know our CA: no connection.
    let plain = Client::new(&server.url, Trust::System).unwrap();
    let err = plain
        .login("owner@demo.repairops.test", "demo-owner")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
    assert_eq!(server.ca_sha256.split(':').count(), 32);
    // TLS 1.3 only: a client that offers at most 1.2 gets no connection.
    let with_tls = |max: reqwest::tls::Version| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&server.ca_pem).unwrap()])
            .max_tls_version(max)
            .build()
            .unwrap()
    };
    let healthz = format!("{}/healthz", server.url);
    let old = with_tls(reqwest::tls::Version::TLS_1_2).get(&healthz).send().await;
    assert!(old.is_err(), "a TLS 1.2 client was answered: {old:?}");
    let current = with_tls(reqwest::tls::Version::TLS_1_3)
        .get(&healthz)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 200);
    assert_eq!(current.version(), reqwest::Version::HTTP_2, "HTTP/2 still offered");
    // Plain HTTP only on loopback.
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--data",
            &server.data.display().to_string(),
            "--listen",
            "0.0.0.0:0",
            "--insecure-http",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only on a loopback"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Operations of the OpenAPI document that change something: (method, path template).
async fn write_operations(client: &Client) -> Vec<(Method, String)> {
    let (status, doc) = raw(client, Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                ops.push((
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    path.clone(),
                ));
            }
        }
    }
    assert!(
        ops.len() >= 20,
        "too few write operations in the OpenAPI document: {ops:?}"
    );
    ops
}

/// A plausible request for an operation: path ids filled in, a body that would pass.
fn request_for(method: &Method, path: &str, ticket_id: i64) -> (String, Option<(String, &'static str)>) {
    let url = path.replace("{id}", &ticket_id.to_string());
    let body = match (method.as_str(), path) {
        (_, "/api/v1/auth/login") => json!({"email": "owner@demo.repairops.test", "password": "demo-owner"}),
        (_, "/api/v1/portal/repairs") => {
            json!({"account": "demo", "name": "Pat Doe", "email": "pat@example.com", "device": "Pixel 7", "problem": "No sound"})
        }
        ("POST", "/api/v1/attachments") => {
            return (
                format!("{url}?ticket_id={ticket_id}&file_name=x.jpg"),
                Some(("jpegbytes".into(), "image/jpeg")),
            );
        }
        ("POST", "/api/v1/shops") => json!({"name": "Northside"}),
        ("POST", "/api/v1/customers") => json!({"shop_id": 1, "first_name": "A", "last_name": "B"}),
        ("POST", "/api/v1/tickets") => {
            json!({"shop_id": 1, "customer_id": 1, "device_make": "Apple", "device_model": "iPad", "problem": "x"})
        }
        ("POST", "/api/v1/invoices") => json!({"shop_id": 1, "customer_id": 1, "number": format!("T-{ticket_id}")}),
        ("POST", "/api/v1/inventory") => json!({"shop_id": 1, "sku": format!("T{ticket_id}"), "name": "Part"}),
        ("POST", "/api/v1/payments") => {
            json!({"invoice_id": 1, "method": "cash", "amount_cents": 500, "paid_at": "2026-11-30T10:00:00Z"})
        }
        ("POST", "/api/v1/ticket-notes") => json!({"ticket_id": ticket_id, "body": "Screen ordered"}),
        ("POST", "/api/v1/communications") => {
            json!({"customer_id": 1, "channel": "sms", "direction": "out", "body": "Ready for pickup"})
        }
        ("POST", "/api/v1/invoice-lines") => {
            json!({"invoice_id": 1, "kind": "labor", "description": "Diagnosis", "quantity": 1, "unit_price_cents": 2500})
        }
        ("POST", "/api/v1/transactions") => {
            json!({"shop_id": 1, "kind": "sale", "total_cents": 100, "payment_method": "cash"})
        }
        ("PATCH", "/api/v1/account") => json!({"name": "Demo Repair"}),
        ("PUT", "/api/v1/settings/notifications") => json!({"on_failure": true, "on_delay": true, "on_large": false}),
        ("POST", "/api/v1/backups") => json!({}),
        ("POST", "/api/v1/keys/rotate") => json!({}),
        ("POST", "/api/v1/keys/recovery") => json!({"passphrase": "a long enough passphrase"}),
        ("POST", "/api/v1/team") => json!({
            "email": format!("joiner{ticket_id}@example.com"), "name": "Joiner", "role": "technician",
            "password": "a long enough password"
        }),
        ("POST", "/api/v1/exports") => json!({"dataset": "tickets", "format": "csv"}),
        ("POST", "/api/v1/restores") => json!({"backup_id": 999_999, "confirm": "demo"}),
        ("POST", "/api/v1/sandboxes") => json!({"backup_id": 999_999}),
        ("POST", "/api/v1/backups/{id}/verify") => json!({}),
        ("POST", "/api/v1/restores/records") => json!({"backup_id": 999_999, "kind": "ticket", "id": 1}),
        ("POST", "/api/v1/compliance/subject-export") => json!({"email": "nobody@example.com"}),
        ("POST", "/api/v1/compliance/ccpa") => json!({"email": "nobody@example.com", "kind": "export"}),
        ("PATCH", "/api/v1/attachments/{id}") => json!({"file_name": "renamed.jpg"}),
        ("PATCH", "/api/v1/shops/{id}") => json!({"name": "Renamed"}),
        ("PATCH", _) => json!({}),
        ("DELETE", _) | ("POST", "/api/v1/auth/logout") => return (url, None),
        (m, p) => panic!("no request written for {m} {p}: add one to this test"),
    };
    (url, Some((body.to_string(), "application/json")))
}

#[tokio::test]
async fn every_write_gets_423_during_a_restore_and_reads_still_work() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let ops = write_operations(&owner).await;
    let before = server.counts("demo");
    server.set_mode("demo", "restoring");
    let mut checked = 0;
    for (method, path) in &ops {
        if path.starts_with("/api/v1/auth/") {
            continue; // signing in and out stays possible
        }
        let (url, body) = request_for(method, path, 1);
        let client = if path.starts_with("/api/v1/portal") {
            server.client()
        } else {
            owner.clone()
        };
        let (status, v) = raw(
            &client,
            method.clone(),
            &url,
            body.as_ref().map(|(b, ct)| (b.as_str(), *ct)),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::LOCKED,
            "{method} {url} was not refused during a restore: {v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("restore is in progress"),
            "{v}"
        );
        checked += 1;
    }
    assert!(checked >= 20);
    assert_eq!(server.counts("demo"), before, "a refused write changed data");
    assert_eq!(
        owner.list::<Ticket>(&[]).await.unwrap().items.len(),
        50,
        "reads must keep working"
    );
    assert!(owner.get::<Ticket>(1).await.is_ok());
    server.set_mode("demo", "normal");
    assert!(
        owner
            .update::<Ticket>(
                1,
                &TicketPatch {
                    problem: Some("back to normal".into()),
                    ..Default::default()
                }
            )
            .await
            .is_ok()
    );
}

/// Who may do each write operation, by role; every write operation of the OpenAPI
/// document must be listed here, so a new route cannot slip in without a rule.
fn allowed(method: &Method, path: &str, role: &str) -> bool {
    let managers = matches!(role, "owner" | "manager");
    match (method.as_str(), path) {
        (_, p) if p.starts_with("/api/v1/auth/") || p == "/api/v1/portal/repairs" => true,
        ("PATCH", "/api/v1/account")
        | ("POST", "/api/v1/keys/rotate" | "/api/v1/keys/recovery")
        | ("POST", "/api/v1/team")
        | ("PATCH", "/api/v1/team/{id}") => role == "owner",
        (
            _,
            "/api/v1/backups"
            | "/api/v1/backups/{id}"
            | "/api/v1/settings/notifications"
            | "/api/v1/restores"
            | "/api/v1/restores/records"
            | "/api/v1/backups/{id}/verify"
            | "/api/v1/sandboxes",
        ) => managers,
        (_, p) if p.starts_with("/api/v1/exports") || p.starts_with("/api/v1/compliance") => managers,
        ("DELETE", _) => managers,
        (_, p) if p.starts_with("/api/v1/shops") => managers,
        (_, p) if p.starts_with("/api/v1/inventory") => role != "desk",
        ("POST" | "PATCH", p)
            if [
                "/api/v1/customers",
                "/api/v1/tickets",
                "/api/v1/invoices",
                "/api/v1/transactions",
                "/api/v1/payments",
                "/api/v1/ticket-notes",
                "/api/v1/communications",
                "/api/v1/invoice-lines",
                "/api/v1/attachments",
            ]
            .iter()
            .any(|r| p.starts_with(r)) =>
        {
            true
        }
        (m, p) => panic!("{m} {p} has no rule in this test's role matrix: add one"),
    }
}

#[tokio::test]
async fn roles_are_enforced_on_every_write() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let ops = write_operations(&owner).await;
    for role in ["tech", "desk", "manager"] {
        let client = server.sign_in(role).await;
        for (method, path) in &ops {
            if path.starts_with("/api/v1/auth/") || path.starts_with("/api/v1/portal") {
                continue;
            }
            // A fresh record per attempt, so allowed deletes have something to delete.
            let (_, t) = raw(
                &owner,
                Method::POST,
                "/api/v1/shops",
                Some((&json!({"name": "Scratch"}).to_string(), "application/json")),
            )
            .await;
            let scratch_shop = t["id"].as_i64().unwrap();
            let id = if path.starts_with("/api/v1/shops") {
                scratch_shop
            } else {
                1
            };
            let (url, body) = request_for(method, path, id);
            let (status, v) = raw(
                &client,
                method.clone(),
                &url,
                body.as_ref().map(|(b, ct)| (b.as_str(), *ct)),
            )
            .await;
            if allowed(method, path, role) {
                assert_ne!(status, StatusCode::FORBIDDEN, "{role} was refused {method} {url}: {v}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} was allowed {method} {url}: {v}");
                assert!(v["error"]["message"].as_str().unwrap().contains("ask"), "{v}");
            }
        }
    }
}

#[tokio::test]
async fn technicians_cannot_delete_and_accounts_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let other_sign_ins = seed(&data, "uptown");
    let server = TestServer::start_in(&data);
    let tech = server.sign_in("tech").await;
    let err = tech.delete::<Ticket>(1).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("technician"), "{err}");

    let owner = server.sign_in("owner").await;
    let marker = owner
        .create::<Customer>(&CustomerInput {
            shop_id: 1,
            first_name: "Only".into(),
            last_name: "InDemo".into(),
            email: Some("only-in-demo@example.com".into()),
            phone: None,
            address: None,
            city: None,
            postal_code: None,
            notes: None,
        })
        .await
        .unwrap();
    let (_, other_owner_email, other_password) = other_sign_ins.iter().find(|(r, _, _)| r == "owner").unwrap().clone();
    let (other, session) = server
        .client()
        .login(&other_owner_email, &other_password)
        .await
        .unwrap();
    assert_eq!(session.account.slug, "uptown");
    let found = other
        .list::<Customer>(&[("email", "only-in-demo@example.com")])
        .await
        .unwrap();
    assert!(found.items.is_empty(), "another account's customer is visible");
    match other.get::<Customer>(marker.id).await {
        Err(e) => assert_eq!(e.status(), Some(404)),
        Ok(c) => assert_ne!(
            c.email.as_deref(),
            Some("only-in-demo@example.com"),
            "another account's customer is visible"
        ),
    }
}

#[tokio::test]
async fn the_owner_switches_off_a_leaver_and_replaces_a_forgotten_password() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let tech = server.sign_in("tech").await;
    let manager = server.sign_in("manager").await;
    let team = owner.team().await.unwrap().items;
    let id_of = |email: &str| team.iter().find(|m| m.email == email).unwrap().id;
    let roles: Vec<(&str, Role, bool)> = team.iter().map(|m| (m.email.as_str(), m.role, m.active)).collect();
    assert_eq!(
        roles,
        [
            ("owner@demo.repairops.test", Role::Owner, true),
            ("manager@demo.repairops.test", Role::Manager, true),
            ("tech@demo.repairops.test", Role::Technician, true),
            ("desk@demo.repairops.test", Role::FrontDesk, true),
        ]
    );
    assert_eq!(manager.team().await.unwrap_err().status(), Some(403), "owners only");

    // The technician leaves: switched off, their open session ends at once.
    let off = TeamChange {
        active: Some(false),
        ..Default::default()
    };
    let changed = owner
        .change_team_member(id_of("tech@demo.repairops.test"), &off)
        .await
        .unwrap();
    assert!(!changed.active);
    assert_eq!(tech.list::<Ticket>(&[]).await.unwrap_err().status(), Some(401));
    // On the shop's staff list too, which exports and ticket assignment read.
    let live = rusqlite::Connection::open_with_flags(
        server.data.join("accounts/demo/live.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let staff = |email: &str| -> (String, bool) {
        live.query_row("SELECT role, active FROM users WHERE email = ?1", [email], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    assert_eq!(staff("tech@demo.repairops.test"), ("technician".to_string(), false));
    let again = server.client().login("tech@demo.repairops.test", "demo-tech").await;
    assert_eq!(
        again.unwrap_err().status(),
        Some(401),
        "a switched-off sign-in cannot sign in"
    );

    // The manager forgot their password: the old one and the old session stop working.
    let new_password = TeamChange {
        password: Some("a much longer one".into()),
        ..Default::default()
    };
    owner
        .change_team_member(id_of("manager@demo.repairops.test"), &new_password)
        .await
        .unwrap();
    assert_eq!(manager.list::<Ticket>(&[]).await.unwrap_err().status(), Some(401));
    let old = server
        .client()
        .login("manager@demo.repairops.test", "demo-manager")
        .await;
    assert_eq!(old.unwrap_err().status(), Some(401));
    assert!(
        server
            .client()
            .login("manager@demo.repairops.test", "a much longer one")
            .await
            .is_ok()
    );

    // The owner changes their own password and keeps this session.
    let own = owner
        .change_team_member(id_of("owner@demo.repairops.test"), &new_password)
        .await;
    assert!(own.is_ok(), "{own:?}");
    assert!(
        owner.list::<Ticket>(&[]).await.is_ok(),
        "the owner's own session goes on"
    );
    // But cannot leave the account with no owner who can sign in.
    let demote = TeamChange {
        role: Some(Role::Manager),
        ..Default::default()
    };
    let e = owner
        .change_team_member(id_of("owner@demo.repairops.test"), &demote)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert!(e.to_string().contains("only owner"), "{e}");
    let e = owner
        .change_team_member(id_of("owner@demo.repairops.test"), &off)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");

    // Bad changes are refused and change nothing.
    let short = TeamChange {
        password: Some("short".into()),
        ..Default::default()
    };
    let e = owner
        .change_team_member(id_of("desk@demo.repairops.test"), &short)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(422), "{e}");
    assert!(e.to_string().contains("10 to 256 characters"), "{e}");
    assert_eq!(
        owner.change_team_member(999, &off).await.unwrap_err().status(),
        Some(404)
    );
    let (status, v) = raw(
        &owner,
        Method::PATCH,
        &format!("/api/v1/team/{}", id_of("desk@demo.repairops.test")),
        Some((r#"{"role":"admin"}"#, "application/json")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        server
            .client()
            .login("desk@demo.repairops.test", "demo-desk")
            .await
            .is_ok()
    );

    // Back on, with the role the owner picks.
    let back = TeamChange {
        active: Some(true),
        role: Some(Role::FrontDesk),
        ..Default::default()
    };
    let member = owner
        .change_team_member(id_of("tech@demo.repairops.test"), &back)
        .await
        .unwrap();
    assert_eq!((member.role, member.active), (Role::FrontDesk, true));
    assert_eq!(staff("tech@demo.repairops.test"), ("front_desk".to_string(), true));
    assert!(
        server
            .client()
            .login("tech@demo.repairops.test", "demo-tech")
            .await
            .is_ok()
    );
    // Someone joins: the owner gives them a sign-in, and they are among the shop's
    // users (where tickets are assigned) with the id their sign-in names.
    let joiner = NewTeamMember {
        email: " Sam.New@Example.com ".into(),
        name: "Sam New".into(),
        role: Role::Technician,
        password: "sam-new-password".into(),
    };
    let desk = server.sign_in("desk").await;
    assert_eq!(desk.add_team_member(&joiner).await.unwrap_err().status(), Some(403));
    let sam = owner.add_team_member(&joiner).await.unwrap();
    assert_eq!(
        (sam.email.as_str(), sam.name.as_str(), sam.role, sam.active),
        ("Sam.New@Example.com", "Sam New", Role::Technician, true)
    );
    let (_, signed_in) = server
        .client()
        .login("sam.new@example.com", "sam-new-password")
        .await
        .unwrap();
    assert_eq!(signed_in.user.role, Role::Technician);
    let (name, role): (String, String) = live
        .query_row("SELECT name, role FROM users WHERE id = ?1", [signed_in.user.id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((name.as_str(), role.as_str()), ("Sam New", "technician"));
    assert!(owner.team().await.unwrap().items.contains(&sam));
    // The same email twice, or a bad one, changes nothing.
    let users_before: i64 = live.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
    let again = owner
        .add_team_member(&NewTeamMember {
            email: "SAM.NEW@example.com".into(),
            ..joiner.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(again.status(), Some(409), "{again}");
    for (bad, expect) in [
        (
            NewTeamMember {
                email: "not-an-email".into(),
                ..joiner.clone()
            },
            "email",
        ),
        (
            NewTeamMember {
                email: "b@example.com".into(),
                name: "  ".into(),
                ..joiner.clone()
            },
            "name",
        ),
        (
            NewTeamMember {
                email: "c@example.com".into(),
                password: "short".into(),
                ..joiner.clone()
            },
            "password",
        ),
    ] {
        let e = owner.add_team_member(&bad).await.unwrap_err();
        assert_eq!(e.status(), Some(422), "{e}");
        assert!(e.to_string().contains(expect), "{e}");
    }
    let users_after: i64 = live.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!(users_after, users_before);
    assert_eq!(owner.team().await.unwrap().items.len(), 5);

    // Each change is in the audit log.
    let audit = owner.audit(&[("limit", "200")]).await.unwrap().items;
    let team_changes = audit
        .iter()
        .filter(|r| r.entry.resource.starts_with("/api/v1/team"))
        .count();
    assert!(team_changes >= 14, "{team_changes} team changes audited");
}

/// A request that must fail: method, path, body with content type, expected status.
type BadCase = (Method, String, Option<(String, &'static str)>, StatusCode);

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let before = server.counts("demo");
    let big = format!(
        "{{\"shop_id\":1,\"first_name\":\"{}\",\"last_name\":\"x\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let cases: Vec<BadCase> = vec![
        (Method::POST, "/api/v1/customers".into(), Some(("{not json".into(), "application/json")), StatusCode::BAD_REQUEST),
        (Method::POST, "/api/v1/customers".into(), Some((r#"{"shop_id":"one","first_name":"A","last_name":"B"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/customers".into(), Some((r#"{"shop_id":1,"first_name":"A","last_name":"B","is_admin":true}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/customers".into(), Some((r#"{"shop_id":1,"first_name":"A"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/customers".into(), Some((big, "application/json")), StatusCode::PAYLOAD_TOO_LARGE),
        (Method::POST, "/api/v1/customers".into(), Some((r#"{"shop_id":1,"first_name":"A","last_name":"B"}"#.into(), "text/plain")), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Method::POST, "/api/v1/customers".into(), Some((r#"{"shop_id":1,"first_name":"A","last_name":"B"}"#.into(), "text/json")), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Method::POST, "/api/v1/customers".into(), Some((r#"{"shop_id":1,"first_name":"A","last_name":"B"}"#.into(), "")), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Method::POST, "/api/v1/customers".into(), Some((r#"[1,2,3]"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/customers".into(), Some((r#"{"shop_id":999999,"first_name":"A","last_name":"B"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/tickets".into(), Some((r#"{"shop_id":1,"customer_id":1,"device_make":"A","device_model":"B","problem":"C","status":"Done'); DROP TABLE tickets;--"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::PATCH, "/api/v1/tickets/1".into(), Some((r#"{"estimate_cents":1.5}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::PATCH, "/api/v1/tickets/999999".into(), Some((r#"{"problem":"x"}"#.into(), "application/json")), StatusCode::NOT_FOUND),
        (Method::GET, "/api/v1/tickets/not-a-number".into(), None, StatusCode::BAD_REQUEST),
        (Method::GET, "/api/v1/tickets?limit=100000".into(), None, StatusCode::BAD_REQUEST),
        (Method::GET, "/api/v1/attachments?limit=0".into(), None, StatusCode::BAD_REQUEST),
        (Method::PATCH, "/api/v1/tickets/1".into(), Some((r#"{"completed_at":"0000-06-01T00:00:00Z"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::PATCH, "/api/v1/account".into(), Some((r#"{"name":"Demo\u0000Repair"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::PATCH, "/api/v1/account".into(), Some((r#"{"admin_email":"a\u0000b@example.com"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/team".into(), Some((r#"{"email":"a\u0000b@example.com","name":"A","role":"technician","password":"long enough password"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/team".into(), Some((r#"{"email":"n@example.com","name":"N","role":null,"password":"long enough password"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/portal/repairs".into(), Some((r#"{"account":"demo","name":"Pat","email":"pat\u0000@example.com","device":"Pixel","problem":"x"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/compliance/subject-export".into(), Some((r#"{"email":"a\u0000b@example.com"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::GET, "/api/v1/tickets?statuss=New".into(), None, StatusCode::BAD_REQUEST),
        (Method::GET, "/api/v1/tickets?from=yesterday".into(), None, StatusCode::BAD_REQUEST),
        (Method::GET, "/api/v1/tickets?customer_id=1%20OR%201%3D1".into(), None, StatusCode::BAD_REQUEST),
        (Method::POST, "/api/v1/attachments?ticket_id=1&file_name=..%2F..%2Fetc%2Fpasswd".into(), Some(("x".into(), "image/jpeg")), StatusCode::BAD_REQUEST),
        (Method::POST, "/api/v1/attachments?ticket_id=1&file_name=a%5Cb.jpg".into(), Some(("x".into(), "image/jpeg")), StatusCode::BAD_REQUEST),
        (Method::POST, "/api/v1/attachments?ticket_id=999999&file_name=a.jpg".into(), Some(("x".into(), "image/jpeg")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::POST, "/api/v1/attachments?ticket_id=1".into(), Some(("x".into(), "image/jpeg")), StatusCode::BAD_REQUEST),
        (Method::PATCH, "/api/v1/account".into(), Some((r#"{"timezone":"Mars/Olympus"}"#.into(), "application/json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::GET, "/api/v1/nothing-here".into(), None, StatusCode::NOT_FOUND),
        (Method::PUT, "/api/v1/tickets/1".into(), Some(("{}".into(), "application/json")), StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/api/v1/jobs/abc".into(), None, StatusCode::BAD_REQUEST),
    ];
    for (method, path, body, want) in cases {
        let (status, v) = raw(
            &owner,
            method.clone(),
            &path,
            body.as_ref().map(|(b, ct)| (b.as_str(), *ct)),
        )
        .await;
        assert_eq!(status, want, "{method} {path}: {v}");
        assert_error(&v);
    }
    // SQL metacharacters in a filter value are just text.
    let none = owner.list::<Customer>(&[("email", "x' OR '1'='1")]).await.unwrap();
    assert!(none.items.is_empty());
    // A name with quotes and semicolons is stored as written.
    let tricky = owner
        .create::<Shop>(&ShopInput {
            name: "Bob's; DROP TABLE shops;--".into(),
            address: None,
            phone: None,
            email: None,
        })
        .await
        .unwrap();
    assert_eq!(
        owner.get::<Shop>(tricky.id).await.unwrap().name,
        "Bob's; DROP TABLE shops;--"
    );
    owner.delete::<Shop>(tricky.id).await.unwrap();
    assert_eq!(server.counts("demo"), before, "bad input changed data");
    // Without a token, a readable 401.
    let (status, v) = raw(&server.client(), Method::GET, "/api/v1/tickets", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&v);
}

#[tokio::test]
async fn portal_takes_repairs_and_is_rate_limited() {
    let server = TestServer::start();
    let anon = server.client();
    let req = PortalRepairRequest {
        account: "demo".into(),
        name: "Pat Doe".into(),
        email: "pat@example.com".into(),
        phone: Some("(555) 123-4567".into()),
        device: "Google Pixel 7".into(),
        problem: "Battery dies by noon".into(),
    };
    let r = anon.portal_repair(&req).await.unwrap();
    let owner = server.sign_in("owner").await;
    let t = owner.get::<Ticket>(r.ticket_id).await.unwrap();
    assert_eq!(t.status.as_deref(), Some("New"));
    assert_eq!(t.device_make, "Google");
    let err = anon
        .portal_repair(&PortalRepairRequest {
            account: "no-such-shop".into(),
            ..req.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let mut limited = false;
    for _ in 0..12 {
        if let Err(e) = anon.portal_repair(&req).await {
            assert_eq!(e.status(), Some(429), "{e}");
            limited = true;
            break;
        }
    }
    assert!(limited, "the portal was not rate-limited");
}

#[tokio::test]
async fn the_audit_log_records_writes_and_verify_catches_tampering() {
    let mut server = TestServer::start();
    let owner = server.sign_in("owner").await;
    owner
        .update::<Ticket>(
            1,
            &TicketPatch {
                problem: Some("audited".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tech = server.sign_in("tech").await;
    let _ = tech.delete::<Ticket>(2).await;
    let _ = server.client().login("owner@demo.repairops.test", "wrong").await;
    server.stop();

    let conn = rusqlite::Connection::open(server.data.join("server.db")).unwrap();
    let rows: Vec<BTreeMap<&str, String>> = {
        let mut stmt = conn
            .prepare("SELECT user, event_type, action, resource, ip, result FROM audit_log ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| {
            Ok(BTreeMap::from([
                ("user", r.get(0)?),
                ("event_type", r.get(1)?),
                ("action", r.get(2)?),
                ("resource", r.get(3)?),
                ("ip", r.get(4)?),
                ("result", r.get(5)?),
            ]))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let has = |user: &str, action: &str, result: &str| {
        rows.iter()
            .any(|r| r["user"] == user && r["action"].contains(action) && r["result"] == result)
    };
    assert!(has("owner@demo.repairops.test", "login", "success"));
    assert!(has(
        "owner@demo.repairops.test",
        "PATCH /api/v1/tickets/{id}",
        "success"
    ));
    assert!(has(
        "tech@demo.repairops.test",
        "DELETE /api/v1/tickets/{id}",
        "failure"
    ));
    assert!(has("owner@demo.repairops.test", "login", "failure"));
    assert!(rows.iter().all(|r| r["ip"] == "127.0.0.1"));

    let verify = || {
        std::process::Command::new(BIN)
            .args(["audit", "verify", "--data", &server.data.display().to_string()])
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    // Its sentence cannot be written (a full disk, a closed pipe): said on stderr, not as
    // a panic with a backtrace, and the exit code still answers.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = std::process::Command::new(BIN)
            .args(["audit", "verify", "--data", &server.data.display().to_string()])
            .stdout(full)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "the answer is the exit code: {err}");
        assert!(
            err.contains("cannot write to standard output") && !err.contains("panic"),
            "{err}"
        );
    }
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET user = 'someone-else@example.com' WHERE seq = 3;",
    )
    .unwrap();
    let bad = verify();
    assert_eq!(bad.status.code(), Some(3));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(text.contains("row 3") && text.contains("edited"), "{text}");
    // The whole log emptied and its head set back to the start (it passed as "intact:
    // 0 rows" before the empty head was signed).
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log;
         UPDATE audit_head SET count = 0, hash = '', mac = '';",
    )
    .unwrap();
    let emptied = verify();
    assert_eq!(emptied.status.code(), Some(3));
    let text = String::from_utf8_lossy(&emptied.stdout);
    assert!(text.contains("set back to an empty log"), "{text}");
}

#[tokio::test]
async fn owners_read_and_export_the_audit_log_filtered_and_technicians_cannot() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let _ = server.client().login("manager@demo.repairops.test", "wrong").await;
    owner
        .update::<Customer>(
            1,
            &CustomerPatch {
                notes: Some("=HYPERLINK(\"http://x\")".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let (status, page) = raw(&owner, Method::GET, "/api/v1/audit?event_type=login", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert!(items.iter().all(|e| e["event_type"] == "login"));
    assert!(
        items
            .iter()
            .any(|e| e["user"] == "manager@demo.repairops.test" && e["result"] == "failure"),
        "{page}"
    );
    let (_, page) = raw(
        &owner,
        Method::GET,
        "/api/v1/audit?user=owner@demo.repairops.test&limit=1",
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next"].is_string());
    let (status, v) = raw(&owner, Method::GET, "/api/v1/audit?from=last-week", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&v);

    let (status, bytes) = owner
        .raw(Method::GET, "/api/v1/audit/export.csv?from=2000-01-01", None)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    let mut csv_reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = csv_reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().take(6).collect::<Vec<_>>(),
        ["timestamp", "user", "action", "resource", "ip_address", "result"]
    );
    let rows: Vec<csv::StringRecord> = csv_reader.records().map(Result::unwrap).collect();
    assert!(
        rows.iter()
            .any(|r| &r[2] == "PATCH /api/v1/customers/{id}" && &r[5] == "success"),
        "{rows:?}"
    );
    assert!(
        rows.iter().all(|r| !r.iter().any(|cell| cell.starts_with('='))),
        "a formula reached the CSV"
    );
    // The export itself is in the log, with what it sent, by the time the file is whole.
    let (_, page) = raw(&owner, Method::GET, "/api/v1/audit?event_type=export", None).await;
    let sent = format!("{} entries", rows.len());
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "GET /api/v1/audit/export.csv"
                && e["result"] == "success"
                && e["detail"] == sent.as_str()),
        "{page}"
    );

    let tech = server.sign_in("tech").await;
    for path in ["/api/v1/audit", "/api/v1/audit/export.csv"] {
        let (status, v) = raw(&tech, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {v}");
    }
}

/// A zone in which the moment `at` falls on another calendar day than in UTC, so a
/// filter that counted UTC days would find it on the wrong day: Kiritimati (UTC+14) from
/// 11:00 UTC on, Pago Pago (UTC-11) before.
fn zone_on_another_day(at: &str) -> (chrono_tz::Tz, chrono::NaiveDate) {
    use chrono::Timelike;
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let zone = if at.hour() >= 11 {
        chrono_tz::Pacific::Kiritimati
    } else {
        chrono_tz::Pacific::Pago_Pago
    };
    let day = at.with_timezone(&zone).date_naive();
    assert_ne!(day, at.date_naive());
    (zone, day)
}

/// The numbers in `field` of a page's items.
fn numbers(page: &Value, field: &str) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[field].as_i64().unwrap())
        .collect()
}

/// Moves the shop to a zone where `at` is on another day than in UTC: that day.
async fn shop_on_another_day(owner: &Client, at: &str) -> chrono::NaiveDate {
    let (zone, day) = zone_on_another_day(at);
    owner
        .update_account(&AccountPatch {
            timezone: Some(zone.name().into()),
            ..Default::default()
        })
        .await
        .unwrap();
    day
}

#[tokio::test]
async fn date_filters_are_the_shops_days() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let get = |path: String| {
        let owner = owner.clone();
        async move { raw(&owner, Method::GET, &path, None).await.1 }
    };
    // The owner's sign-in is the newest audit entry.
    let page = get("/api/v1/audit?limit=1".into()).await;
    let (seq, at) = (
        page["items"][0]["seq"].as_i64().unwrap(),
        page["items"][0]["at"].as_str().unwrap().to_string(),
    );
    let day = shop_on_another_day(&owner, &at).await;
    let (before, after) = (day.pred_opt().unwrap(), day.succ_opt().unwrap());
    let on_day = get(format!("/api/v1/audit?from={day}&to={day}&limit=500")).await;
    assert!(numbers(&on_day, "seq").contains(&seq), "{at} is on {day}: {on_day}");
    let earlier = get(format!("/api/v1/audit?to={before}&limit=500")).await;
    assert!(!numbers(&earlier, "seq").contains(&seq));
    let later = get(format!("/api/v1/audit?from={after}&limit=500")).await;
    assert!(!numbers(&later, "seq").contains(&seq));

    // The shop's records count days the same way: ticket 1 was seeded.
    let ticket = get("/api/v1/tickets/1".into()).await;
    let created = ticket["created_at"].as_str().unwrap().to_string();
    let day = shop_on_another_day(&owner, &created).await;
    let on_day = get(format!("/api/v1/tickets?from={day}&to={day}")).await;
    assert!(numbers(&on_day, "id").contains(&1), "{created} is on {day}: {on_day}");
    let earlier = get(format!("/api/v1/tickets?to={}", day.pred_opt().unwrap())).await;
    assert!(!numbers(&earlier, "id").contains(&1));
}

#[tokio::test]
async fn sign_outs_backups_and_settings_are_in_the_log_under_their_own_event_types() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let manager = server.sign_in("manager").await;
    manager.logout().await.unwrap();
    owner
        .update_account(&AccountPatch {
            name: Some("Demo Repair".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // Accepted, or refused while the start-up backup still runs: logged either way.
    let (status, _) = raw(&owner, Method::POST, "/api/v1/backups", None).await;
    assert!(
        [StatusCode::ACCEPTED, StatusCode::CONFLICT].contains(&status),
        "{status}"
    );
    let of = |page: Value| -> Vec<(String, String)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["user"].as_str().unwrap().to_string(),
                    e["action"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // The sign-out is the manager's, in the shop's log (before, the token it deleted
    // could no longer say whose it was, and it went to no account as "anonymous").
    let (_, page) = raw(&owner, Method::GET, "/api/v1/audit?event_type=logout", None).await;
    assert!(
        of(page.clone()).contains(&("manager@demo.repairops.test".into(), "POST /api/v1/auth/logout".into())),
        "{page}"
    );
    let (_, page) = raw(&owner, Method::GET, "/api/v1/audit?event_type=settings", None).await;
    assert!(
        of(page.clone()).contains(&("owner@demo.repairops.test".into(), "PATCH /api/v1/account".into())),
        "{page}"
    );
    let (_, page) = raw(&owner, Method::GET, "/api/v1/audit?event_type=backup", None).await;
    assert!(
        of(page.clone()).contains(&("owner@demo.repairops.test".into(), "POST /api/v1/backups".into())),
        "{page}"
    );
}

#[tokio::test]
async fn payments_are_taken_against_an_invoice_and_bad_ones_change_nothing() {
    let server = TestServer::start();
    let desk = server.sign_in("desk").await;
    let paid_at = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let before = desk.list::<Payment>(&[("invoice_id", "1")]).await.unwrap().items.len();
    let payment = desk
        .create::<Payment>(&PaymentInput {
            invoice_id: 1,
            method: "card".into(),
            amount_cents: 4_599,
            paid_at,
            card_brand: Some("Visa".into()),
            card_last4: Some("4242".into()),
        })
        .await
        .unwrap();
    assert_eq!(
        (payment.invoice_id, payment.amount_cents, payment.paid_at),
        (1, 4_599, paid_at)
    );
    let listed = desk.list::<Payment>(&[("invoice_id", "1")]).await.unwrap().items;
    assert_eq!(listed.len(), before + 1);
    assert!(listed.contains(&payment));
    // A card number that is not four digits, an unknown method, an invoice that does
    // not exist, a date that is not one.
    for body in [
        json!({"invoice_id": 1, "method": "card", "amount_cents": 1, "paid_at": "2026-11-30T10:00:00Z", "card_last4": "42x2"}),
        json!({"invoice_id": 1, "method": "bitcoin", "amount_cents": 1, "paid_at": "2026-11-30T10:00:00Z"}),
        json!({"invoice_id": 999_999, "method": "cash", "amount_cents": 1, "paid_at": "2026-11-30T10:00:00Z"}),
        json!({"invoice_id": 1, "method": "cash", "amount_cents": 1, "paid_at": "yesterday"}),
    ] {
        let (status, v) = raw(
            &desk,
            Method::POST,
            "/api/v1/payments",
            Some((&body.to_string(), "application/json")),
        )
        .await;
        assert!(status.is_client_error(), "{body}: {status} {v}");
        assert_error(&v);
    }
    assert_eq!(
        desk.list::<Payment>(&[("invoice_id", "1")]).await.unwrap().items.len(),
        before + 1
    );
    // Only owners and managers delete shop records.
    let (status, _) = raw(&desk, Method::DELETE, &format!("/api/v1/payments/{}", payment.id), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_ticket_gets_notes_messages_and_invoice_lines_and_bad_ones_change_nothing() {
    let server = TestServer::start();
    let (_, tech_session) = server
        .client()
        .login("tech@demo.repairops.test", "demo-tech")
        .await
        .unwrap();
    let tech = server.sign_in("tech").await;
    let desk = server.sign_in("desk").await;
    let ticket = tech.get::<Ticket>(1).await.unwrap();
    let invoice = desk.list::<Invoice>(&[("limit", "1")]).await.unwrap().items.remove(0);

    // A note made without an author names the technician who wrote it.
    let note = tech
        .create::<TicketNote>(&TicketNoteInput {
            ticket_id: ticket.id,
            body: "Swapped the charging port; tested with two cables.".into(),
            author_id: None,
        })
        .await
        .unwrap();
    assert_eq!(note.author_id, Some(tech_session.user.id));
    // Writing in someone else's name is for owners and managers (notes moved in from
    // another system); the front desk is refused, a manager is not.
    let as_owner = TicketNoteInput {
        ticket_id: ticket.id,
        body: "Moved in from the old system".into(),
        author_id: Some(1),
    };
    let e = desk.create::<TicketNote>(&as_owner).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    assert!(e.to_string().contains("someone else's name"), "{e}");
    let manager = server.sign_in("manager").await;
    let moved = manager.create::<TicketNote>(&as_owner).await.unwrap();
    assert_eq!(moved.author_id, Some(1));
    let e = tech
        .update::<TicketNote>(
            note.id,
            &TicketNotePatch {
                author_id: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    // Someone whose staff row is gone (a restore from before they joined, made before
    // sign-ins were kept on the staff list) still writes notes, and is put back on it.
    {
        let live = rusqlite::Connection::open(server.data.join("accounts/demo/live.db")).unwrap();
        live.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        live.execute("DELETE FROM users WHERE email = 'desk@demo.repairops.test'", [])
            .unwrap();
    }
    let (_, desk_session) = server
        .client()
        .login("desk@demo.repairops.test", "demo-desk")
        .await
        .unwrap();
    let desk_note = desk
        .create::<TicketNote>(&TicketNoteInput {
            ticket_id: ticket.id,
            body: "Customer called".into(),
            author_id: None,
        })
        .await
        .unwrap();
    assert_eq!(desk_note.author_id, Some(desk_session.user.id));
    let ticket_filter = ticket.id.to_string();
    let notes = tech
        .list::<TicketNote>(&[("ticket_id", ticket_filter.as_str())])
        .await
        .unwrap()
        .items;
    assert!(notes.contains(&note) && notes.iter().all(|n| n.ticket_id == ticket.id));

    // The front desk texts the customer and adds the part to the invoice.
    let message = desk
        .create::<Communication>(&CommunicationInput {
            customer_id: ticket.customer_id,
            channel: "sms".into(),
            direction: "out".into(),
            body: "Your phone is ready — مرحبا 📱".into(),
            ticket_id: Some(ticket.id),
        })
        .await
        .unwrap();
    assert_eq!(desk.get::<Communication>(message.id).await.unwrap(), message);
    let line = desk
        .create::<InvoiceLine>(&InvoiceLineInput {
            invoice_id: invoice.id,
            kind: "part".into(),
            description: "Charging port, USB-C".into(),
            quantity: 1,
            unit_price_cents: 1_899,
            inventory_id: None,
        })
        .await
        .unwrap();
    let invoice_filter = invoice.id.to_string();
    let lines = desk
        .list::<InvoiceLine>(&[("invoice_id", invoice_filter.as_str())])
        .await
        .unwrap()
        .items;
    assert!(lines.contains(&line));

    // JSON is JSON with a charset or as a `+json` type too.
    for content_type in ["application/json; charset=utf-8", "application/merge-patch+json"] {
        let (status, v) = raw(
            &desk,
            Method::PATCH,
            &format!("/api/v1/communications/{}", message.id),
            Some((r#"{"body":"Ready for pickup"}"#, content_type)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{content_type}: {v}");
    }

    // Unknown channel, direction or kind, a ticket or invoice that does not exist, a
    // field the record does not have: refused with a message, nothing stored.
    let before = server.counts("demo");
    for (path, body) in [
        (
            "/api/v1/communications",
            json!({"customer_id": 1, "channel": "fax", "direction": "out", "body": "x"}),
        ),
        (
            "/api/v1/communications",
            json!({"customer_id": 1, "channel": "sms", "direction": "up", "body": "x"}),
        ),
        (
            "/api/v1/communications",
            json!({"customer_id": 999_999, "channel": "sms", "direction": "in", "body": "x"}),
        ),
        ("/api/v1/ticket-notes", json!({"ticket_id": 999_999, "body": "x"})),
        (
            "/api/v1/ticket-notes",
            json!({"ticket_id": 1, "body": "x", "private": true}),
        ),
        (
            "/api/v1/invoice-lines",
            json!({"invoice_id": 1, "kind": "discount", "description": "x", "quantity": 1, "unit_price_cents": -5}),
        ),
        (
            "/api/v1/invoice-lines",
            json!({"invoice_id": 999_999, "kind": "part", "description": "x", "quantity": 1, "unit_price_cents": 5}),
        ),
        (
            "/api/v1/invoice-lines",
            json!({"invoice_id": 1, "kind": "part", "description": "x", "quantity": 1.5, "unit_price_cents": 5}),
        ),
        (
            "/api/v1/invoice-lines",
            json!({"invoice_id": 1, "kind": "part", "description": "x", "quantity": 0, "unit_price_cents": 5}),
        ),
    ] {
        let (status, v) = raw(&desk, Method::POST, path, Some((&body.to_string(), "application/json"))).await;
        assert!(status.is_client_error(), "{path} {body}: {status} {v}");
        assert_error(&v);
    }
    assert_eq!(server.counts("demo"), before);

    // Corrections go through; only owners and managers delete.
    let fixed = tech
        .update::<TicketNote>(
            note.id,
            &TicketNotePatch {
                body: Some("Swapped the charging port; tested with three cables.".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((fixed.author_id, fixed.created_at), (note.author_id, note.created_at));
    let (status, _) = raw(
        &desk,
        Method::DELETE,
        &format!("/api/v1/invoice-lines/{}", line.id),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    manager.delete::<InvoiceLine>(line.id).await.unwrap();
    assert_eq!(desk.get::<InvoiceLine>(line.id).await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn metrics_show_backup_age_and_request_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[backup]\nschedule = false\n").unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let owner = server.sign_in("owner").await;
    let (done, _) = common::backup_now(&owner).await;
    assert_eq!(done.state, JobState::Succeeded);
    owner.list::<Ticket>(&[]).await.unwrap();
    let (status, bytes) = server.client().raw(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).unwrap();
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("repairops_backup_age_seconds{account=\"demo\"} "))
        .unwrap_or_else(|| panic!("no backup age in {text}"))
        .parse()
        .unwrap();
    assert!((0.0..600.0).contains(&age), "{age}");
    assert!(
        text.contains("repairops_backup_last_size_bytes{account=\"demo\"} "),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("repairops_http_request_duration_seconds_count{")
                && l.contains("route=\"/api/v1/tickets\"")
                && l.contains("status=\"2xx\"")),
        "{text}"
    );
    // Routes are patterns, never raw paths with ids.
    assert!(!text.contains("/api/v1/jobs/1\""), "{text}");
}

/// A bug in a request's handler is answered with the readable 500 every internal error
/// gets (not a connection closed with no answer), is audited as failed, and the server
/// goes on serving.
#[tokio::test]
async fn a_request_whose_handler_panics_gets_a_readable_500_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_env(
        &dir.path().join("data"),
        &[],
        &[("REPAIROPS_PANIC_AT", "http.create,ccpa.found")],
    );
    let owner = server.sign_in("owner").await;
    let body = r#"{"shop_id": 1, "first_name": "Ada", "last_name": "Bug"}"#;
    for _ in 0..2 {
        let (status, v) = raw(
            &owner,
            Method::POST,
            "/api/v1/customers",
            Some((body, "application/json")),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
        assert_error(&v);
        assert!(v["error"]["message"].as_str().unwrap().contains("Try again"), "{v}");
    }
    let (status, _) = raw(&owner, Method::GET, "/api/v1/customers?limit=1", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = raw(
        &owner,
        Method::GET,
        "/api/v1/audit?event_type=data_change&limit=5",
        None,
    )
    .await;
    let failed = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "POST /api/v1/customers" && e["result"] == "failure" && e["detail"] == "500")
        .count();
    assert_eq!(failed, 2, "{page}");
    // A panic inside a deletion on request, after the customer was found: a 500, and
    // nothing deleted (it was swallowed before, and the deletion went on).
    let customer = owner.get::<Customer>(1).await.unwrap();
    let email = customer.email.clone().unwrap();
    let (status, v) = raw(
        &owner,
        Method::POST,
        "/api/v1/compliance/ccpa",
        Some((
            &json!({"email": email, "kind": "delete"}).to_string(),
            "application/json",
        )),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert_eq!(owner.get::<Customer>(1).await.unwrap(), customer);
}

/// A caller hears first what they can act on: without the role, 403 whatever the body
/// holds; and a body too large to take is answered 413, read to its end so the client
/// sees the answer instead of a connection cut while it was still sending.
#[tokio::test]
async fn the_role_is_checked_before_the_body_and_a_large_body_hears_413_not_a_reset() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let technician = server.sign_in("tech").await;
    let before = server.counts("demo");
    let huge = format!("{{\"dataset\":\"{}\"}}", "t".repeat(6 * 1024 * 1024));
    for (body, ct) in [
        ("{not json", "application/json"),
        (r#"{"dataset":"tickets"}"#, "text/plain"),
        (r#"{"dataset":"nonsense","format":"pdf"}"#, "application/json"),
        (huge.as_str(), "application/json"),
    ] {
        for path in [
            "/api/v1/exports",
            "/api/v1/restores",
            "/api/v1/compliance/ccpa",
            "/api/v1/team",
        ] {
            let (status, v) = raw(&technician, Method::POST, path, Some((body, ct))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {ct} {}: {v}", body.len());
            assert_error(&v);
        }
        let (status, v) = raw(&technician, Method::POST, "/api/v1/shops", Some((body, ct))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "shops: {v}");
        let (status, v) = raw(&technician, Method::PATCH, "/api/v1/account", Some((body, ct))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "account: {v}");
    }
    // The owner may: the body is then what is wrong.
    let (status, v) = raw(
        &owner,
        Method::POST,
        "/api/v1/exports",
        Some(("{not json", "application/json")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    for round in 0..8 {
        let (status, v) = raw(
            &owner,
            Method::POST,
            "/api/v1/customers",
            Some((&huge, "application/json")),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "round {round}: {v}");
        assert_error(&v);
    }
    // A photo over the 50 MB limit for attachments.
    let photo = "x".repeat(51 * 1024 * 1024);
    let (status, v) = raw(
        &owner,
        Method::POST,
        "/api/v1/attachments?ticket_id=1&file_name=big.jpg",
        Some((&photo, "image/jpeg")),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("at most"), "{v}");
    // curl over HTTP/2, as operators' scripts send: before the body was read to its
    // end, curl 7.88 reported the stream closed under it (exit 92) and no status.
    let dir = tempfile::tempdir().unwrap();
    let (ca, body) = (dir.path().join("ca.pem"), dir.path().join("body.json"));
    std::fs::write(&ca, &server.ca_pem).unwrap();
    std::fs::write(&body, &huge).unwrap();
    for (who, path, want) in [
        (&owner, "/api/v1/customers", "413"),
        (&technician, "/api/v1/exports", "403"),
    ] {
        let out = std::process::Command::new("curl")
            .args(["-s", "--http2", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .arg("--cacert")
            .arg(&ca)
            .args(["-H", "content-type: application/json", "-H"])
            .arg(format!("authorization: Bearer {}", who.token().unwrap()))
            .arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .arg(format!("{}{path}", server.url))
            .output()
            .expect("curl runs");
        let code = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && code == want,
            "{path}: curl {:?} answered {code:?}",
            out.status
        );
    }
    assert_eq!(server.counts("demo"), before, "nothing was stored");
}

/// The rules the OpenAPI document states on request bodies (ranges, allowed words, card
/// digits) are the rules the server keeps: each bound is accepted and one past it is
/// refused, each allowed word is accepted and another word refused, on every resource.
#[tokio::test]
async fn the_openapi_document_states_the_rules_the_server_keeps() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let (_, doc) = raw(&owner, Method::GET, "/api/v1/openapi.json", None).await;
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["PaymentInput"]["properties"]["amount_cents"]["maximum"],
        1_000_000_000_000i64
    );
    assert_eq!(schemas["InvoiceLinePatch"]["properties"]["quantity"]["minimum"], 1);
    assert!(
        schemas["CommunicationPatch"]["properties"]["channel"]["enum"]
            .as_array()
            .unwrap()
            .contains(&Value::Null),
        "a patch may send null"
    );
    let mut unique = 10_000;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(reference) = item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
        else {
            continue;
        };
        let name = reference.trim_start_matches("#/components/schemas/");
        let Some(properties) = schemas[name]["properties"].as_object() else {
            continue;
        };
        for (field, rule) in properties {
            let mut tries: Vec<(Value, bool)> = Vec::new();
            if let Some(max) = rule["maximum"].as_i64() {
                tries.extend([(json!(max), true), (json!(max + 1), false)]);
            }
            if let Some(min) = rule["minimum"].as_i64() {
                tries.extend([(json!(min), true), (json!(min - 1), false)]);
            }
            if let Some(words) = rule["enum"].as_array() {
                tries.extend(words.iter().filter(|w| !w.is_null()).map(|w| (w.clone(), true)));
                tries.push((json!("not-a-listed-word"), false));
            }
            if let Some(pattern) = rule["pattern"].as_str() {
                assert_eq!(pattern, "^[0-9]{4}$", "{name}.{field}");
                tries.extend([(json!("0042"), true), (json!("42a4"), false), (json!("00421"), false)]);
            }
            for (value, ok) in tries {
                unique += 1;
                let (url, body) = request_for(&Method::POST, path, unique);
                let mut body: Value = serde_json::from_str(&body.unwrap().0).unwrap();
                body[field] = value.clone();
                let (status, v) = raw(
                    &owner,
                    Method::POST,
                    &url,
                    Some((&body.to_string(), "application/json")),
                )
                .await;
                if ok {
                    assert_eq!(status, StatusCode::CREATED, "{path} {field}={value}: {v}");
                } else {
                    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} {field}={value}: {v}");
                    assert!(v["error"]["message"].as_str().unwrap().contains(field.as_str()), "{v}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} rules tried");
}
