//! Exports and data-subject requests end to end, over HTTPS against the real binary:
//! CSV and JSON parsed back equal the database rows (awkward text included), a
//! semicolon-delimited CSV, PDF invoices read back with `pdftotext`, resumable downloads,
//! bad requests refused and audited, a CCPA deletion that leaves no byte behind, and
//! flat memory whatever the export's size.

mod common;

use std::path::Path;
use std::time::Duration;

use common::TestServer;
use repairops_api::*;
use rusqlite::types::ValueRef;
use serde_json::{Value, json};

/// Text that breaks naive CSV and JSON writers, and a spreadsheet formula.
const ODD_FIRST: &str = "Zoë \"Quote\", Jr.";
const ODD_LAST: &str = "שלום 😀";
const ODD_NOTES: &str = "line one\nline two; with a semicolon, and a comma\r\n=HYPERLINK(\"http://x\")";
const ODD_ADDRESS: &str = "=1+2";

async fn wait_job(client: &Client, id: i64) -> Job {
    for _ in 0..1200 {
        let job = client.job(id).await.unwrap();
        if job.state != JobState::Running && job.state != JobState::Queued {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

/// Runs an export to the end and downloads it whole; returns the export and the bytes.
async fn run_export(client: &Client, req: NewExport) -> (Export, Vec<u8>) {
    let job = client.start_export(&req).await.unwrap();
    let job = wait_job(client, job.id).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let id = job.result.as_ref().unwrap()["export_id"].as_i64().unwrap();
    let listed = client.exports(&[]).await.unwrap();
    let export = listed.items.into_iter().find(|e| e.id == id).unwrap();
    let resp = client.export_download(id, 0).await.unwrap();
    assert_eq!(resp.status(), 200);
    let header_sha = resp.headers()["x-content-sha256"].to_str().unwrap().to_string();
    let bytes = resp.bytes().await.unwrap().to_vec();
    assert_eq!(header_sha, sha256_hex(&bytes), "the file does not match its checksum");
    assert_eq!(export.sha256.as_deref(), Some(header_sha.as_str()));
    assert_eq!(export.size_bytes, Some(bytes.len() as u64));
    (export, bytes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

fn request(dataset: &str, format: &str) -> NewExport {
    NewExport {
        dataset: dataset.into(),
        format: format.into(),
        ..Default::default()
    }
}

fn live(server: &TestServer) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(server.data.join("accounts/demo/live.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// A table's rows as text cells keyed by column, the way the CSV should show them.
fn db_rows(conn: &rusqlite::Connection, table: &str) -> Vec<Vec<(String, String)>> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY id")).unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        let mut row = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let cell = match r.get_ref(i).unwrap() {
                ValueRef::Null => String::new(),
                ValueRef::Integer(v) => v.to_string(),
                ValueRef::Real(v) => v.to_string(),
                ValueRef::Text(t) => {
                    repairops_server::exports::spreadsheet_safe(std::str::from_utf8(t).unwrap()).into_owned()
                }
                ValueRef::Blob(b) => hex::encode(b),
            };
            row.push((n.clone(), cell));
        }
        out.push(row);
    }
    out
}

async fn odd_customer(owner: &Client) -> Customer {
    owner
        .create::<Customer>(&CustomerInput {
            shop_id: 1,
            first_name: ODD_FIRST.into(),
            last_name: ODD_LAST.into(),
            email: Some("odd.one@example.com".into()),
            phone: Some("+1 555 0100".into()),
            address: Some(ODD_ADDRESS.into()),
            city: Some("Tel Aviv-Yafo".into()),
            postal_code: None,
            notes: Some(ODD_NOTES.into()),
        })
        .await
        .unwrap()
}

/// Compares a parsed CSV with the table: every row, every column of the table (the
/// leading `{what}_id` is the table's `id`).
fn assert_csv_matches(bytes: &[u8], delimiter: u8, rows: &[Vec<(String, String)>], id_name: &str) {
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(bytes);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), rows.len(), "row count");
    for (record, row) in records.iter().zip(rows) {
        for (name, expected) in row {
            let column = if name == "id" { id_name } else { name };
            let at = header
                .iter()
                .position(|h| h == column)
                .unwrap_or_else(|| panic!("column {column} is missing from {header:?}"));
            assert_eq!(&record[at], expected, "column {column} of row {:?}", row[0]);
        }
    }
}

#[tokio::test]
async fn csv_and_json_exports_parse_back_to_the_database_rows() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let odd = odd_customer(&owner).await;
    owner
        .create::<Ticket>(&TicketInput {
            shop_id: 1,
            customer_id: odd.id,
            device_type: Some("phone".into()),
            device_make: "Apple".into(),
            device_model: "iPhone 15 \"Pro\"".into(),
            serial_number: Some("-42".into()),
            problem: "Écran cassé 📱\nמסך שבור, \"bad\"".into(),
            status: Some("In Repair".into()),
            estimate_cents: Some(12_345),
            technician_id: Some(3),
            completed_at: None,
        })
        .await
        .unwrap();
    let conn = live(&server);

    // Customers, comma-separated: every column of every row, and the odd row read back.
    let (export, csv_bytes) = run_export(&owner, request("customers", "csv")).await;
    let customers = db_rows(&conn, "customers");
    assert_eq!(export.rows, Some(customers.len() as u64));
    assert_eq!(export.file_name.rsplit('.').next(), Some("csv"));
    assert_csv_matches(&csv_bytes, b',', &customers, "customer_id");
    let text = String::from_utf8(csv_bytes.clone()).expect("the CSV is UTF-8");
    assert!(text.starts_with("customer_id,name,phone,email,address,lifetime_spend,last_repair_date,"));
    assert!(text.contains("'=1+2"), "a formula must be defused");
    assert!(text.contains("'+1 555 0100"));

    // The same, semicolon-delimited, as spreadsheets in decimal-comma countries open it.
    let mut semi = request("customers", "csv");
    semi.delimiter = Some(";".into());
    let (_, semi_bytes) = run_export(&owner, semi).await;
    assert!(String::from_utf8_lossy(&semi_bytes).starts_with("customer_id;name;phone;"));
    assert_csv_matches(&semi_bytes, b';', &customers, "customer_id");

    // Tickets CSV with the joined columns the product page names.
    let (_, tickets_csv) = run_export(&owner, request("tickets", "csv")).await;
    assert_csv_matches(&tickets_csv, b',', &db_rows(&conn, "tickets"), "ticket_id");
    let mut reader = csv::Reader::from_reader(tickets_csv.as_slice());
    let header = reader.headers().unwrap().clone();
    assert_eq!(
        header.iter().take(7).collect::<Vec<_>>(),
        [
            "ticket_id",
            "customer_name",
            "status",
            "created_at",
            "updated_at",
            "technician",
            "total_cost"
        ]
    );
    let last = reader.records().last().unwrap().unwrap();
    assert_eq!(&last[1], format!("{ODD_FIRST} {ODD_LAST}"));
    assert_eq!(&last[5], "Sarah Ramirez");

    // Tickets JSON: every field of every row, and the relations nested.
    let (_, json_bytes) = run_export(&owner, request("tickets", "json")).await;
    let records: Vec<Value> = serde_json::from_slice(&json_bytes).expect("the JSON export parses");
    let mut stmt = conn.prepare("SELECT * FROM tickets ORDER BY id").unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = stmt.query([]).unwrap();
    let mut i = 0;
    while let Some(r) = rows.next().unwrap() {
        let rec = &records[i];
        for (c, name) in names.iter().enumerate() {
            let expected = match r.get_ref(c).unwrap() {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => json!(v),
                ValueRef::Text(t) => json!(std::str::from_utf8(t).unwrap()),
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(rec[name], expected, "ticket {i} field {name}");
        }
        i += 1;
    }
    assert_eq!(i, records.len());
    let odd_ticket = records.last().unwrap();
    assert_eq!(odd_ticket["customer"]["first_name"], ODD_FIRST);
    assert_eq!(odd_ticket["customer"]["notes"], ODD_NOTES);
    assert_eq!(odd_ticket["technician"]["name"], "Sarah Ramirez");
    assert!(odd_ticket["notes"].as_array().unwrap().is_empty());
    let first = &records[0];
    let notes: i64 = conn
        .query_row("SELECT count(*) FROM ticket_notes WHERE ticket_id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(first["notes"].as_array().unwrap().len() as i64, notes);
    assert!(!first["invoices"][0]["lines"].as_array().unwrap().is_empty());
    assert!(first["invoices"][0]["payments"].is_array());
    assert!(
        chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().unwrap()).is_ok(),
        "timestamps are ISO 8601"
    );

    // A custom selection: one status, one shop-local day range.
    let mut custom = request("tickets", "json");
    custom.filters = Some(ExportFilters {
        status: Some("Completed".into()),
        from: Some("2026-07-01".into()),
        to: Some("2026-07-31".into()),
        shop_id: Some(1),
    });
    let (_, bytes) = run_export(&owner, custom).await;
    let picked: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
    let expected: i64 = conn
        .query_row(
            "SELECT count(*) FROM tickets WHERE status = 'Completed' AND shop_id = 1
             AND created_at >= '2026-07-01T05:00:00.000000Z' AND created_at < '2026-08-01T05:00:00.000000Z'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(expected > 0);
    assert_eq!(picked.len() as i64, expected);
    assert!(picked.iter().all(|t| t["status"] == "Completed"));
}

#[tokio::test]
async fn invoices_print_one_per_page_and_downloads_resume() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    // The first invoice's customer has a name Helvetica's Windows-1252 cannot print.
    live(&server)
        .execute(
            "UPDATE customers SET first_name = 'Łukasz', last_name = 'Żółć-Ελένη Дмитриева'
             WHERE id = (SELECT customer_id FROM invoices WHERE created_at >= '2026-06-01T05:00:00.000000Z' ORDER BY id LIMIT 1)",
            [],
        )
        .unwrap();
    let mut req = request("invoices", "pdf");
    req.filters = Some(ExportFilters {
        from: Some("2026-06-01".into()),
        to: Some("2026-06-20".into()),
        ..Default::default()
    });
    let (export, pdf) = run_export(&owner, req).await;
    let n = export.rows.unwrap() as usize;
    assert!(n >= 5, "too few invoices in the range: {n}");
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("invoices.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let info = pdftool("pdfinfo", &[file.to_str().unwrap()]);
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|p| p.trim().parse::<usize>().ok());
    assert_eq!(pages, Some(n), "one page an invoice: {info}");
    let conn = live(&server);
    let mut stmt = conn
        .prepare(
            "SELECT i.number, c.first_name || ' ' || c.last_name, i.total_cents FROM invoices i
             JOIN customers c ON c.id = i.customer_id
             WHERE i.created_at >= '2026-06-01T05:00:00.000000Z' AND i.created_at < '2026-06-21T05:00:00.000000Z' ORDER BY i.id",
        )
        .unwrap();
    let expected: Vec<(String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(expected.len(), n);
    assert_eq!(expected[0].1, "Łukasz Żółć-Ελένη Дмитриева");
    for page in [1, n / 2 + 1, n] {
        let text = pdftool(
            "pdftotext",
            &[
                "-f",
                &page.to_string(),
                "-l",
                &page.to_string(),
                file.to_str().unwrap(),
                "-",
            ],
        );
        let (number, customer, total) = &expected[page - 1];
        assert!(text.contains(number.as_str()), "page {page} lacks {number}: {text}");
        assert!(text.contains(customer.as_str()), "page {page} lacks {customer}: {text}");
        let total = format!("{}.{:02}", total / 100, total % 100);
        assert!(text.contains(&total), "page {page} lacks the total {total}: {text}");
    }

    // A download broken after 1000 bytes resumes where it stopped.
    let id = export.id;
    let head = owner.export_download(id, 0).await.unwrap().bytes().await.unwrap();
    let tail = owner.export_download(id, 1000).await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.headers()["content-range"].to_str().unwrap(),
        format!("bytes 1000-{}/{}", pdf.len() - 1, pdf.len())
    );
    let mut joined = head[..1000].to_vec();
    joined.extend_from_slice(&tail.bytes().await.unwrap());
    assert_eq!(joined, pdf);
    let past = owner.export_download(id, pdf.len() as u64).await.unwrap_err();
    assert_eq!(past.status(), Some(416));
}

fn pdftool(tool: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} (Debian package poppler-utils) is needed: {e}"));
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn bad_export_requests_get_clear_errors_and_are_audited() {
    let server = TestServer::start();
    let owner = server.sign_in("owner").await;
    let before = server.counts("demo");
    let cases: [(Value, u16, &str); 7] = [
        (json!({"dataset": "orders", "format": "csv"}), 400, "not a dataset"),
        (
            json!({"dataset": "tickets", "format": "pdf"}),
            400,
            "PDF is only for invoices",
        ),
        (
            json!({"dataset": "tickets", "format": "csv", "filters": {"from": "2026-02-30"}}),
            400,
            "must be a date",
        ),
        (
            json!({"dataset": "tickets", "format": "csv", "delimiter": "ab"}),
            400,
            "delimiter",
        ),
        (
            json!({"dataset": "inventory", "format": "csv", "filters": {"status": "New"}}),
            400,
            "no status",
        ),
        (
            json!({"dataset": "tickets", "format": "csv", "filters": {"colour": "red"}}),
            422,
            "unknown field",
        ),
        (json!({"dataset": "tickets"}), 422, "format"),
    ];
    for (body, status, words) in &cases {
        let (got, bytes) = owner
            .raw(
                reqwest::Method::POST,
                "/api/v1/exports",
                Some((body.to_string().into_bytes(), "application/json")),
            )
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(got.as_u16(), *status, "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(words), "{body}: {v}");
    }
    for who in ["tech", "desk"] {
        let client = server.sign_in(who).await;
        let err = client.start_export(&request("tickets", "csv")).await.unwrap_err();
        assert_eq!(err.status(), Some(403), "{who}: {err}");
        assert_eq!(
            client.subject_export("a@example.com").await.unwrap_err().status(),
            Some(403)
        );
        assert_eq!(
            client.ccpa_delete("a@example.com").await.unwrap_err().status(),
            Some(403)
        );
    }
    assert_eq!(server.counts("demo"), before);
    assert!(
        owner.exports(&[]).await.unwrap().items.is_empty(),
        "a refused export was stored"
    );
    // Every refusal is in the audit log as a failed export request.
    let (_, bytes) = owner
        .raw(reqwest::Method::GET, "/api/v1/audit?event_type=export&limit=100", None)
        .await
        .unwrap();
    let log: Value = serde_json::from_slice(&bytes).unwrap();
    let failures: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["result"] == "failure")
        .collect();
    let details: Vec<&str> = failures.iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(details.iter().filter(|d| **d == "400").count(), 5, "{details:?}");
    assert_eq!(details.iter().filter(|d| **d == "422").count(), 2, "{details:?}");
    assert_eq!(details.iter().filter(|d| **d == "403").count(), 6, "{details:?}");
    assert!(
        failures
            .iter()
            .any(|e| e["user"] == "tech@demo.repairops.test" && e["action"] == "POST /api/v1/exports")
    );
}

/// Every file under `dir` holding `needle`, as raw bytes.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_containing(&p, needle));
        } else if let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(p.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn a_ccpa_deletion_leaves_no_trace_in_live_data_or_sandboxes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[backup]\nschedule = false\n").unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let owner = server.sign_in("owner").await;
    const EMAIL: &str = "erase.me.7731@example.net";
    const PHONE: &str = "0044 7700 900731";
    let customer = owner
        .create::<Customer>(&CustomerInput {
            shop_id: 1,
            first_name: "Erin".into(),
            last_name: "Eraseme".into(),
            email: Some(EMAIL.into()),
            phone: Some(PHONE.into()),
            address: Some("1 Forget Lane".into()),
            city: None,
            postal_code: None,
            notes: Some(format!("call on {PHONE}")),
        })
        .await
        .unwrap();
    let ticket = owner
        .create::<Ticket>(&TicketInput {
            shop_id: 1,
            customer_id: customer.id,
            device_type: None,
            device_make: "Google".into(),
            device_model: "Pixel 8".into(),
            serial_number: None,
            problem: format!("owner {EMAIL} says it will not boot"),
            status: None,
            estimate_cents: None,
            technician_id: None,
            completed_at: None,
        })
        .await
        .unwrap();
    owner
        .upload_attachment(
            ticket.id,
            "consent.txt",
            "text/plain",
            format!("signed by {EMAIL}, {PHONE}").into_bytes(),
        )
        .await
        .unwrap();
    let invoice = owner
        .create::<Invoice>(&InvoiceInput {
            shop_id: 1,
            customer_id: customer.id,
            ticket_id: Some(ticket.id),
            number: "ERASE-1".into(),
            status: Some("paid".into()),
            subtotal_cents: Some(1000),
            tax_cents: Some(80),
            total_cents: Some(1080),
            issued_at: None,
        })
        .await
        .unwrap();
    // Everything a shop writes about a customer, through the API as a till would.
    let paid_at = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    owner
        .create::<TicketNote>(&TicketNoteInput {
            ticket_id: ticket.id,
            body: format!("texted {PHONE}"),
            author_id: None,
        })
        .await
        .unwrap();
    owner
        .create::<Communication>(&CommunicationInput {
            customer_id: customer.id,
            channel: "email".into(),
            direction: "out".into(),
            body: format!("to {EMAIL}: ready"),
            ticket_id: Some(ticket.id),
        })
        .await
        .unwrap();
    owner
        .create::<InvoiceLine>(&InvoiceLineInput {
            invoice_id: invoice.id,
            kind: "labor".into(),
            description: "Diagnosis".into(),
            quantity: 1,
            unit_price_cents: 1000,
            inventory_id: None,
        })
        .await
        .unwrap();
    owner
        .create::<Payment>(&PaymentInput {
            invoice_id: invoice.id,
            method: "card".into(),
            amount_cents: 1080,
            paid_at,
            card_brand: Some("visa".into()),
            card_last4: Some("4242".into()),
        })
        .await
        .unwrap();
    // What the subject export holds before.
    let doc = owner.subject_export(&EMAIL.to_uppercase()).await.unwrap();
    let person = &doc["customers"][0];
    assert_eq!(person["email"], EMAIL);
    assert_eq!(person["tickets"][0]["notes"].as_array().unwrap().len(), 1);
    assert_eq!(person["tickets"][0]["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(person["communications"].as_array().unwrap().len(), 1);
    assert_eq!(person["invoices"][0]["payments"][0]["card_last4"], "4242");
    let ccpa = owner.ccpa_export(EMAIL).await.unwrap();
    assert!(ccpa["categories"].as_array().unwrap().len() >= 5);
    assert_eq!(ccpa["customers"][0]["id"], customer.id);
    // An export made before the deletion holds the customer too, and so does a sandbox.
    let (old_export, _) = run_export(&owner, request("customers", "csv")).await;
    let (_, backup) = common::backup_now(&owner).await;
    let job = common::wait_job(&owner, &owner.create_sandbox(backup.id).await.unwrap()).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let sandbox = owner.in_sandbox(job.result.unwrap()["sandbox_id"].as_i64().unwrap());
    assert_eq!(
        sandbox.get::<Customer>(customer.id).await.unwrap().email.as_deref(),
        Some(EMAIL)
    );
    let counts_before = server.counts("demo");

    let result = owner.ccpa_delete(EMAIL).await.unwrap();
    assert_eq!(result.customer_ids, vec![customer.id]);
    for (table, n) in [
        ("customers", 1),
        ("tickets", 1),
        ("ticket_notes", 1),
        ("communications", 1),
        ("invoices", 1),
        ("invoice_lines", 1),
        ("payments", 1),
        ("attachments", 1),
        ("attachment_files", 1),
        ("exports", 1),
    ] {
        assert_eq!(result.removed.get(table), Some(&n), "{table}: {:?}", result.removed);
    }
    // Nothing else changed.
    let counts_after = server.counts("demo");
    for ((table, before), (_, after)) in counts_before.iter().zip(&counts_after) {
        let gone = match table.as_str() {
            "customers" | "tickets" | "ticket_notes" | "communications" | "invoices" | "invoice_lines" | "payments"
            | "attachments" => 1,
            _ => 0,
        };
        assert_eq!(before - after, gone, "{table}");
    }
    // No row and no file anywhere in live data holds the email or the phone.
    let account = server.data.join("accounts/demo");
    for needle in [EMAIL.as_bytes(), PHONE.as_bytes(), b"Eraseme"] {
        assert_eq!(
            files_containing(&account, needle),
            Vec::<String>::new(),
            "{} survived",
            String::from_utf8_lossy(needle)
        );
        assert_eq!(
            files_containing(&server.data.join("exports"), needle),
            Vec::<String>::new()
        );
        assert_eq!(
            files_containing(&server.data.join("sandboxes"), needle),
            Vec::<String>::new()
        );
    }
    assert_eq!(
        sandbox.get::<Customer>(customer.id).await.unwrap_err().status(),
        Some(404)
    );
    assert_eq!(result.removed.get("sandbox_customers"), Some(&1));
    // The control plane keeps the ledger, not the address.
    assert_eq!(files_containing(&server.data, EMAIL.as_bytes()), Vec::<String>::new());
    let control = rusqlite::Connection::open(server.data.join("server.db")).unwrap();
    let (ledger_id, hmac): (i64, String) = control
        .query_row("SELECT customer_id, email_hmac FROM deletion_ledger", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(ledger_id, customer.id);
    assert_eq!(hmac.len(), 64);
    // The subject export is now empty; the old export is gone; the request is listed.
    let doc = owner.subject_export(EMAIL).await.unwrap();
    assert_eq!(doc["customers"], json!([]));
    assert_eq!(
        owner.export_download(old_export.id, 0).await.unwrap_err().status(),
        Some(410)
    );
    let found = owner.list::<Customer>(&[("email", EMAIL)]).await.unwrap();
    assert!(found.items.is_empty());
    let requests = owner.compliance_requests(&[]).await.unwrap().items;
    let kinds: Vec<&str> = requests.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["subject_export", "ccpa_delete", "ccpa_export", "subject_export"]
    );
    assert!(requests.iter().all(|r| r.subject == "e***@e***.net"), "{requests:?}");
    // A second deletion finds nothing and says so.
    assert_eq!(owner.ccpa_delete(EMAIL).await.unwrap_err().status(), Some(404));
}

/// A sandbox being made and an export being written while a customer is deleted on
/// request: both had read the deletion ledger before the deletion, and neither keeps
/// the customer.
#[tokio::test]
async fn a_sandbox_and_an_export_being_made_during_a_deletion_do_not_keep_the_customer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[backup]\nschedule = false\n").unwrap();
    let pauses = dir.path().join("pauses");
    std::fs::create_dir_all(&pauses).unwrap();
    let server = TestServer::start_env(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[
            ("REPAIROPS_PAUSE_AT", "sandbox.built,export.writing"),
            ("REPAIROPS_PAUSE_DIR", pauses.to_str().unwrap()),
        ],
    );
    let owner = server.sign_in("owner").await;
    let customer = owner.get::<Customer>(7).await.unwrap();
    let email = customer.email.clone().unwrap();
    let (_, backup) = common::backup_now(&owner).await;
    // Both stop after reading the ledger and before they finish.
    let sandbox_job = owner.create_sandbox(backup.id).await.unwrap();
    common::wait_file(&pauses.join("sandbox.built.reached"));
    let export_job = owner.start_export(&request("customers", "json")).await.unwrap();
    common::wait_file(&pauses.join("export.writing.reached"));

    let result = owner.ccpa_delete(&email).await.unwrap();
    assert_eq!(result.customer_ids, vec![customer.id]);
    // Neither was finished, so the deletion itself reached neither.
    assert_eq!(result.removed.get("sandbox_customers"), Some(&0));
    assert_eq!(result.removed.get("exports"), Some(&0));
    std::fs::write(pauses.join("sandbox.built.go"), b"").unwrap();
    std::fs::write(pauses.join("export.writing.go"), b"").unwrap();

    // The sandbox saw the new ledger entry as it finished and applied it.
    let done = common::wait_job(&owner, &sandbox_job).await;
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    let sandbox = owner.in_sandbox(done.result.unwrap()["sandbox_id"].as_i64().unwrap());
    assert_eq!(
        sandbox.get::<Customer>(customer.id).await.unwrap_err().status(),
        Some(404)
    );
    assert!(sandbox.get::<Customer>(1).await.is_ok());
    // The export fails rather than keep a file that may hold them, and says why.
    let done = wait_job(&owner, export_job.id).await;
    assert_eq!(done.state, JobState::Failed, "{done:?}");
    assert!(
        done.error
            .as_deref()
            .is_some_and(|e| e.contains("deleted on request while this export ran")),
        "{done:?}"
    );
    let exports_dir = server.data.join("exports");
    let left: Vec<_> = std::fs::read_dir(&exports_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // Run again, it succeeds without them.
    let (_, bytes) = run_export(&owner, request("customers", "json")).await;
    let records: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r["id"] != customer.id));
}

/// `repairops-server export --out FILE` writes beside FILE and renames it into place
/// once whole: stopped or failing part way, it leaves nothing new under that name, and
/// an older file there is as it was.
#[test]
fn a_command_line_export_stopped_part_way_leaves_no_half_file_under_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::seed(&data, "demo");
    // More tickets than the 4,096 after which the export first reports its progress.
    grow_tickets(&data, 5_000);
    let pauses = dir.path().join("pauses");
    std::fs::create_dir_all(&pauses).unwrap();
    let out_file = dir.path().join("tickets.json");
    std::fs::write(&out_file, b"yesterday's export").unwrap();
    let export = || {
        let mut command = std::process::Command::new(common::BIN);
        command
            .args(["export", "--data"])
            .arg(&data)
            .args(["--account", "demo", "--dataset", "tickets", "--format", "json", "--out"])
            .arg(&out_file)
            .env("REPAIROPS_LOG", "warn")
            .stderr(std::process::Stdio::null());
        command
    };
    let parts = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "part"))
            .collect()
    };
    // Paused after 4,096 of the tickets, with records written, then killed.
    let mut child = export()
        .env("REPAIROPS_PAUSE_AT", "export.progress")
        .env("REPAIROPS_PAUSE_DIR", &pauses)
        .spawn()
        .unwrap();
    common::wait_file(&pauses.join("export.progress.reached"));
    // The threads formatting and writing what was read go on while the reading waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while parts()
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum::<u64>()
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "nothing was written");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read(&out_file).unwrap(), b"yesterday's export");
    for part in parts() {
        std::fs::remove_file(part).unwrap();
    }
    // Failing there (a panic, as a bug would) removes its own unfinished file.
    let failed = export()
        .env("REPAIROPS_PANIC_AT", "export.progress")
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(70));
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(
        said.trim_end()
            .ends_with("if it happens again, send that log to support."),
        "{said}"
    );
    assert_eq!(std::fs::read(&out_file).unwrap(), b"yesterday's export");
    assert_eq!(parts(), Vec::<std::path::PathBuf>::new());
    // A whole run replaces it, keeping the file's permissions.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&out_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(export().status().unwrap().success());
    let doc: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert!(doc.as_array().unwrap().len() > 5_000);
    assert_eq!(
        std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(parts(), Vec::<std::path::PathBuf>::new());
}

/// An export to a place that cannot hold a file says so with the paths the operator
/// gave, not the temporary file's, and leaves nothing behind.
#[test]
fn a_command_line_export_to_a_missing_folder_names_that_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::seed(&data, "demo");
    let not_a_folder = dir.path().join("notes.txt");
    std::fs::write(&not_a_folder, b"a file").unwrap();
    let missing = dir.path().join("missing");
    let cases = [
        (
            missing.join("tickets.csv"),
            format!("the folder {} does not exist", missing.display()),
        ),
        (
            not_a_folder.join("tickets.csv"),
            format!("{} is not a folder", not_a_folder.display()),
        ),
    ];
    for (out, why) in cases {
        let run = std::process::Command::new(common::BIN)
            .args(["export", "--data"])
            .arg(&data)
            .args(["--account", "demo", "--dataset", "tickets", "--out"])
            .arg(&out)
            .env("REPAIROPS_LOG", "warn")
            .output()
            .unwrap();
        assert!(!run.status.success());
        let said = String::from_utf8_lossy(&run.stderr);
        assert!(
            said.contains(&format!("cannot create {}: {why}", out.display())),
            "{said}"
        );
        assert!(!said.contains(".part"), "{said}");
    }
    assert!(!missing.exists());
    assert_eq!(std::fs::read(&not_a_folder).unwrap(), b"a file");
    // A --data that is not a data folder is named, and left as it was.
    let not_data = dir.path().join("elsewhere");
    std::fs::create_dir(&not_data).unwrap();
    let run = std::process::Command::new(common::BIN)
        .args(["export", "--data"])
        .arg(&not_data)
        .args(["--account", "demo", "--dataset", "tickets", "--out", "-"])
        .env("REPAIROPS_LOG", "warn")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains(&format!(
            "{} is not a RepairOps data folder (it has no server.db)",
            not_data.display()
        )),
        "{said}"
    );
    assert_eq!(std::fs::read_dir(&not_data).unwrap().count(), 0);
}

/// Peak resident memory (KiB) of `repairops-server export` for one dataset.
fn export_peak_kib(data: &Path, dataset: &str, format: &str) -> u64 {
    let out_file = data.join(format!("out.{format}"));
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", common::BIN, "export", "--data"])
        .arg(data)
        .args(["--account", "demo", "--dataset", dataset, "--format", format, "--out"])
        .arg(&out_file)
        .env("REPAIROPS_LOG", "warn")
        .output()
        .expect("/usr/bin/time (Debian package time) is needed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {stderr}"))
}

/// Adds `n` more tickets (copies of the first, with notes) straight into live.db.
fn grow_tickets(data: &Path, n: i64) {
    let conn = rusqlite::Connection::open(data.join("accounts/demo/live.db")).unwrap();
    conn.execute_batch(&format!(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n})
         INSERT INTO tickets (shop_id, customer_id, device_type, device_make, device_model, serial_number, problem, status,
                              estimate_cents, technician_id, completed_at, created_at, updated_at)
         SELECT t.shop_id, t.customer_id, t.device_type, t.device_make, t.device_model, t.serial_number || k.i, t.problem,
                t.status, t.estimate_cents, t.technician_id, t.completed_at, t.created_at, t.updated_at
         FROM k JOIN tickets t ON t.id = 1 + (k.i % 1000);"
    ))
    .unwrap();
}

/// Adds `n` more invoices (copies of the first thousand, without lines or payments).
fn grow_invoices(data: &Path, n: i64) {
    let conn = rusqlite::Connection::open(data.join("accounts/demo/live.db")).unwrap();
    conn.execute_batch(&format!(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n})
         INSERT INTO invoices (shop_id, customer_id, ticket_id, number, status, subtotal_cents, tax_cents, total_cents,
                               issued_at, created_at, updated_at)
         SELECT v.shop_id, v.customer_id, v.ticket_id, v.number || '-' || k.i, v.status, v.subtotal_cents, v.tax_cents,
                v.total_cents, v.issued_at, v.created_at, v.updated_at
         FROM k JOIN invoices v ON v.id = 1 + (k.i % 1000);"
    ))
    .unwrap();
}

#[test]
fn export_memory_stays_flat_as_the_data_grows_tenfold() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::seed(&data, "demo");
    let conn = rusqlite::Connection::open(data.join("accounts/demo/live.db")).unwrap();
    let base: i64 = conn
        .query_row("SELECT count(*) FROM tickets", [], |r| r.get(0))
        .unwrap();
    // N, then 10 N tickets.
    let n = 3_000;
    grow_tickets(&data, n - base);
    let invoices: i64 = conn
        .query_row("SELECT count(*) FROM invoices", [], |r| r.get(0))
        .unwrap();
    let peaks = |data: &Path| {
        (
            export_peak_kib(data, "tickets", "csv"),
            export_peak_kib(data, "tickets", "json"),
            export_peak_kib(data, "invoices", "pdf"),
        )
    };
    let small = peaks(&data);
    grow_tickets(&data, 9 * n);
    grow_invoices(&data, 9 * invoices);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM tickets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 10 * n);
    let big = peaks(&data);
    let csv_lines = std::fs::read_to_string(data.join("out.csv")).unwrap().lines().count();
    assert!(csv_lines as i64 > rows, "the big CSV is incomplete: {csv_lines} lines");
    let pages = std::fs::read(data.join("out.pdf")).unwrap();
    assert!(
        String::from_utf8_lossy(&pages).contains(&format!("/Count {}", 10 * invoices)),
        "the big PDF has a page an invoice"
    );
    for (format, s, b) in [
        ("csv", small.0, big.0),
        ("json", small.1, big.1),
        ("pdf", small.2, big.2),
    ] {
        eprintln!("{format}: peak {s} KiB, then {b} KiB for ten times the records");
        assert!(
            b < s + 10 * 1024,
            "{format} export memory grew by {} KiB for ten times the rows",
            b.saturating_sub(s)
        );
    }
}

#[tokio::test]
async fn a_bug_in_an_export_fails_that_export_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = TestServer::start_env(&data, &[], &[("REPAIROPS_PANIC_AT", "export.writing")]);
    let owner = server.sign_in("owner").await;
    let job = owner.start_export(&request("tickets", "csv")).await.unwrap();
    let job = wait_job(&owner, job.id).await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    assert!(
        job.error.as_deref().unwrap_or_default().contains("internal error"),
        "{job:?}"
    );
    // The export says so, no file of it is left, and the audit log has the failure.
    let listed = owner.exports(&[]).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].state, JobState::Failed);
    assert!(
        listed.items[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("internal error")
    );
    let left: Vec<_> = std::fs::read_dir(data.join("exports")).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
    let (_, bytes) = owner
        .raw(reqwest::Method::GET, "/api/v1/audit?event_type=export&limit=100", None)
        .await
        .unwrap();
    let audit: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["result"] == "failure" && r["detail"].as_str().unwrap().contains("internal error")),
        "{audit}"
    );
    // The server goes on: the shop's data is still served.
    assert!(owner.get::<Ticket>(1).await.is_ok());
}
