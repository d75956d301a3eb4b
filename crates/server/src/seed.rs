//! Demo data: a phone and computer repair shop that looks real and is the same on every
//! run (a fixed seed per account and size, and a fixed calendar ending on
//! [`ANCHOR`]).
//!
//! `small` is one shop over six months (about 1,500 tickets, a few MB with tiny photos)
//! for tests; `large` is three shops over two years (about 18,000 tickets) whose database
//! and photos together pass 500 MB, for benchmarks.

use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use repairops_api::{Plan, Role};
use rusqlite::{Connection, params};

use crate::config::Config;
use crate::control;
use crate::shopdata::time_text;

/// Demo data's "now": tickets run up to this moment.
pub fn anchor() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 18, 0, 0)
        .single()
        .expect("a valid date")
}
const ANCHOR: &str = "2026-11-28T18:00:00Z";

/// How much data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Size {
    Small,
    Large,
}

struct Shape {
    shops: usize,
    months: i64,
    tickets_per_shop_month: usize,
    photo_size: (u16, u16),
}

impl Size {
    fn shape(self) -> Shape {
        match self {
            Size::Small => Shape {
                shops: 1,
                months: 6,
                tickets_per_shop_month: 250,
                photo_size: (48, 36),
            },
            Size::Large => Shape {
                shops: 3,
                months: 24,
                tickets_per_shop_month: 250,
                photo_size: (176, 132),
            },
        }
    }
}

/// A tiny deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Luis",
    "Ashley",
    "Priya",
    "Emily",
    "Wei",
    "Fatima",
    "Andrew",
    "Olivia",
    "Kenji",
    "Sofia",
    "Omar",
    "Chloe",
    "Diego",
    "Grace",
    "Ahmed",
    "Hannah",
    "Ivan",
    "Zoe",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Nguyen",
    "Patel",
    "Kim",
    "Chen",
    "O'Brien",
    "Müller",
    "Kowalski",
    "Rossi",
    "Haddad",
    "Novak",
];
const STREETS: &[&str] = &[
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Elm St",
    "Washington Blvd",
    "Lake Rd",
    "Hill St",
    "Park Ave",
    "2nd St",
    "Sunset Blvd",
    "River Rd",
    "Pine St",
    "Church St",
    "Market St",
];
const CITIES: &[(&str, &str)] = &[
    ("Springfield", "62701"),
    ("Riverside", "92501"),
    ("Franklin", "37064"),
    ("Greenville", "29601"),
    ("Madison", "53703"),
    ("Georgetown", "78626"),
    ("Salem", "97301"),
    ("Fairview", "75069"),
];
const DEVICES: &[(&str, &str, &str)] = &[
    ("phone", "Apple", "iPhone 15 Pro"),
    ("phone", "Apple", "iPhone 14"),
    ("phone", "Apple", "iPhone 13"),
    ("phone", "Apple", "iPhone 12 mini"),
    ("phone", "Samsung", "Galaxy S24"),
    ("phone", "Samsung", "Galaxy S21"),
    ("phone", "Samsung", "Galaxy A54"),
    ("phone", "Google", "Pixel 8"),
    ("phone", "Google", "Pixel 7a"),
    ("phone", "Motorola", "Moto G Power"),
    ("tablet", "Apple", "iPad Air (5th gen)"),
    ("tablet", "Apple", "iPad (9th gen)"),
    ("tablet", "Samsung", "Galaxy Tab S8"),
    ("laptop", "Apple", "MacBook Air M1"),
    ("laptop", "Apple", "MacBook Pro 14\""),
    ("laptop", "Dell", "XPS 13 9310"),
    ("laptop", "Lenovo", "ThinkPad T14"),
    ("laptop", "HP", "Pavilion 15"),
    ("console", "Nintendo", "Switch OLED"),
    ("console", "Sony", "PlayStation 5"),
];
/// (device kinds it happens to, problem, part, part price, labor), cents.
const PROBLEMS: &[(&str, &str, &str, i64, i64)] = &[
    (
        "phone tablet",
        "Cracked screen, touch still works",
        "Screen assembly",
        8900,
        6500,
    ),
    (
        "phone tablet laptop",
        "Screen shattered after drop, no display",
        "Screen assembly",
        12900,
        6500,
    ),
    (
        "phone tablet laptop",
        "Battery drains within hours, swelling visible",
        "Battery",
        4900,
        3500,
    ),
    (
        "phone tablet console",
        "Does not charge, port loose",
        "Charging port",
        3900,
        4500,
    ),
    (
        "phone tablet laptop",
        "Water damage, will not power on",
        "Logic board cleaning",
        0,
        8500,
    ),
    ("phone", "Back glass cracked", "Back glass", 5900, 5500),
    ("phone tablet", "Rear camera blurry", "Rear camera module", 6900, 4000),
    ("phone", "Speaker crackles on calls", "Earpiece speaker", 2900, 3500),
    ("laptop", "Keyboard keys sticking after spill", "Keyboard", 9900, 7500),
    (
        "laptop console",
        "Runs hot and shuts down",
        "Thermal paste and fan",
        1900,
        6000,
    ),
    ("laptop", "Hinge broken", "Hinge set", 4500, 5000),
    ("console", "Joy-Con drift", "Analog stick", 1500, 3000),
    ("console", "HDMI port damaged", "HDMI port", 2500, 6500),
    ("phone", "Face ID not working", "Diagnosis", 0, 4000),
    (
        "phone tablet laptop console",
        "Software boot loop",
        "Software restore",
        0,
        5000,
    ),
];
const NOTES: &[&str] = &[
    "Customer dropped off device, passcode provided.",
    "Ran diagnostics: fault confirmed.",
    "Estimate sent to customer by SMS.",
    "Customer approved estimate.",
    "Part ordered from supplier, ETA 3 days.",
    "Part arrived, repair started.",
    "Repair done, tested charging, cameras, speakers.",
    "Customer notified device is ready.",
    "Device picked up, customer happy.",
    "Customer declined repair, returned as-is.",
];
const CARD_BRANDS: &[&str] = &["visa", "mastercard", "amex", "discover"];

/// The demo password of a role, for the `demo` account; other accounts get random ones.
fn demo_password(role: Role) -> &'static str {
    match role {
        Role::Owner => "demo-owner",
        Role::Manager => "demo-manager",
        Role::Technician => "demo-tech",
        Role::FrontDesk => "demo-desk",
    }
}

/// Sign-ins a seed made.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub slug: String,
    pub sign_ins: Vec<(Role, String, String)>,
    pub tickets: i64,
    pub customers: i64,
    pub attachments: i64,
    pub bytes: u64,
}

/// Statuses by age: old tickets are done, recent ones are anywhere in the workflow.
const MIDDLE_AGED: &[&str] = &[
    "Completed",
    "Completed",
    "Ready for Pickup",
    "Waiting for Parts",
    "Cancelled",
];
/// Every status but Cancelled.
const RECENT: &[&str] = repairops_api::TICKET_STATUSES.split_at(7).0;

fn ticket_status(age_days: i64, rng: &mut Rng) -> &'static str {
    let choices = if age_days > 21 {
        return if rng.chance(7) { "Cancelled" } else { "Completed" };
    } else if age_days > 10 {
        MIDDLE_AGED
    } else {
        RECENT
    };
    choices[rng.below(choices.len() as u64) as usize]
}

fn imei(rng: &mut Rng) -> String {
    let mut digits: Vec<u32> = (0..14).map(|_| rng.below(10) as u32).collect();
    digits[0] = 3;
    digits[1] = 5;
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                *d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits.iter().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect()
}

/// A small, real JPEG: a gradient with noise, different for every seed.
pub fn photo(rng: &mut Rng, w: u16, h: u16) -> Vec<u8> {
    let (r0, g0, b0) = (rng.below(200) as u8, rng.below(200) as u8, rng.below(200) as u8);
    let mut pixels = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let n = (rng.next_u64() & 0x3f) as u8;
            pixels.push(r0.wrapping_add((x as u8) / 2).wrapping_add(n));
            pixels.push(g0.wrapping_add((y as u8) / 2).wrapping_add(n / 2));
            pixels.push(b0.wrapping_add(n));
        }
    }
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 85);
    // Encoding an in-memory RGB buffer of valid dimensions does not fail.
    let _ = encoder.encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb);
    out
}

/// Creates or refills an account with demo data.
pub fn seed(config: &Config, slug: &str, plan: Plan, timezone: &str, size: Size) -> Result<SeedReport, String> {
    if !control::valid_slug(slug) {
        return Err(format!(
            "{slug:?} is not an account slug (2 to 40 lowercase letters, digits and dashes)"
        ));
    }
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(format!("{timezone:?} is not an IANA time zone such as America/Chicago"));
    }
    std::fs::create_dir_all(&config.data).map_err(|e| format!("cannot create {}: {e}", config.data.display()))?;
    let mut control_db = crate::db::open_connection(&config.data.join("server.db"))
        .map_err(|e| format!("cannot open server.db: {e}"))?;
    control::migrate(&mut control_db, &config.data)?;
    let domain = format!("{slug}.repairops.test");
    let name = if slug == "demo" {
        "Demo Phone & PC Repair".to_string()
    } else {
        format!("{} Repair", title(slug))
    };
    let account = control::ensure_account(&control_db, slug, &name, plan, timezone, &format!("owner@{domain}"))
        .map_err(|e| format!("cannot create the account: {e}"))?;

    let dir = config.account_dir(slug);
    let attachments = dir.join("attachments");
    std::fs::create_dir_all(&attachments).map_err(|e| format!("cannot create {}: {e}", attachments.display()))?;
    let mut live = crate::db::open_connection(&dir.join("live.db")).map_err(|e| format!("cannot open live.db: {e}"))?;
    crate::db::migrate(&mut live, crate::live::MIGRATIONS).map_err(|e| format!("cannot migrate live.db: {e}"))?;

    let seed_value = blake3::hash(format!("{slug}/{size:?}").as_bytes());
    let mut rng = Rng::new(u64::from_le_bytes(
        seed_value.as_bytes()[..8].try_into().expect("8 bytes"),
    ));
    let report =
        fill(&mut live, &attachments, size, &mut rng, &domain).map_err(|e| format!("cannot write demo data: {e}"))?;

    let mut sign_ins = Vec::new();
    for (role, local, user_id) in [
        (Role::Owner, "owner", 1),
        (Role::Manager, "manager", 2),
        (Role::Technician, "tech", 3),
        (Role::FrontDesk, "desk", 5),
    ] {
        let email = format!("{local}@{domain}");
        let password = if slug == "demo" {
            demo_password(role).to_string()
        } else {
            let mut b = [0u8; 9];
            repairops_vault::crypto::fill_random(&mut b);
            hex::encode(b)
        };
        let person = live
            .query_row("SELECT name FROM users WHERE id = ?1", [user_id], |r| {
                r.get::<_, String>(0)
            })
            .unwrap_or_else(|_| local.to_string());
        control::upsert_identity(&control_db, account.id, user_id, &email, &person, role, &password)
            .map_err(|e| format!("cannot create sign-in {email}: {e}"))?;
        sign_ins.push((role, email, password));
    }
    Ok(SeedReport {
        slug: slug.to_string(),
        sign_ins,
        ..report
    })
}

fn title(slug: &str) -> String {
    slug.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fill(
    conn: &mut Connection,
    attachments: &Path,
    size: Size,
    rng: &mut Rng,
    domain: &str,
) -> rusqlite::Result<SeedReport> {
    let shape = size.shape();
    let tx = conn.transaction()?;
    // Refill: the data is replaced whole, so a seed is the same however often it runs.
    for table in crate::live::TABLES.iter().rev() {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    // And the ids count from 1 again (live migration 3: they would go on from the old
    // rows', and the seeded sign-ins name users 1, 2, 3 and 5).
    tx.execute("DELETE FROM sqlite_sequence", [])?;
    let _ = std::fs::remove_dir_all(attachments);
    let _ = std::fs::create_dir_all(attachments);
    let end = anchor();
    let start = end - Duration::days(30 * shape.months);
    let created = time_text(start - Duration::days(30));

    let mut shop_ids = Vec::new();
    for i in 0..shape.shops {
        let (city, zip) = CITIES[i % CITIES.len()];
        tx.execute(
            "INSERT INTO shops (name, address, phone, email, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![
                format!("{city} Repair Center"),
                format!("{} {}, {city} {zip}", 100 + rng.below(900), rng.pick(STREETS)),
                format!("(555) 01{}-{:04}", i, rng.below(10000)),
                format!("{}@{domain}", city.to_lowercase()),
                created
            ],
        )?;
        shop_ids.push(tx.last_insert_rowid());
    }
    // Team: ids 1 owner, 2 manager, 3-4 technicians, 5 front desk, then more per shop.
    let mut technicians = Vec::new();
    let team: Vec<(&str, Role)> = {
        let mut t = vec![
            ("owner", Role::Owner),
            ("manager", Role::Manager),
            ("tech", Role::Technician),
            ("tech2", Role::Technician),
            ("desk", Role::FrontDesk),
        ];
        for s in 1..shape.shops {
            t.push(if s % 2 == 0 {
                ("tech", Role::Technician)
            } else {
                ("manager", Role::Manager)
            });
            t.push(("tech", Role::Technician));
        }
        t
    };
    for (i, (local, role)) in team.iter().enumerate() {
        let name = format!("{} {}", rng.pick(FIRST), rng.pick(LAST));
        let email = if i < 5 {
            format!("{local}@{domain}")
        } else {
            format!("{local}{i}@{domain}")
        };
        tx.execute(
            "INSERT INTO users (shop_id, name, email, role, permissions, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, '[]', ?5, ?5)",
            params![shop_ids[i % shop_ids.len()], name, email, role.as_str(), created],
        )?;
        if *role == Role::Technician {
            technicians.push(tx.last_insert_rowid());
        }
    }
    // Inventory: a part for every problem at every shop.
    let mut parts: Vec<(i64, i64, &str, i64)> = Vec::new();
    for &shop in &shop_ids {
        for (j, (_, _, part, price, _)) in PROBLEMS.iter().enumerate() {
            for (k, (_, make, model)) in DEVICES.iter().enumerate().filter(|(k, _)| (k + j) % 4 == 0) {
                let cost = price * 45 / 100;
                tx.execute(
                    "INSERT INTO inventory (shop_id, sku, name, stock, reorder_level, cost_cents, price_cents, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                    params![shop, format!("P{j:02}-{k:02}"), format!("{part} — {make} {model}"), rng.below(25), 3, cost, price, created],
                )?;
                parts.push((shop, tx.last_insert_rowid(), part, *price));
            }
        }
    }

    let total_tickets = shape.shops * shape.tickets_per_shop_month * shape.months as usize;
    let span = (end - start).num_seconds();
    let mut customers: Vec<(i64, i64)> = Vec::new(); // (id, shop)
    let mut report = SeedReport {
        slug: String::new(),
        sign_ins: Vec::new(),
        tickets: 0,
        customers: 0,
        attachments: 0,
        bytes: 0,
    };
    let mut invoice_no = 1000;
    for t in 0..total_tickets {
        let at = start + Duration::seconds(span * t as i64 / total_tickets as i64 + rng.below(3600) as i64);
        let stamp = time_text(at);
        let shop = shop_ids[t % shop_ids.len()];
        // Returning customers: a third of tickets come from someone seen before.
        let customer = if !customers.is_empty() && rng.chance(33) {
            customers[rng.below(customers.len() as u64) as usize].0
        } else {
            let (first, last) = (*rng.pick(FIRST), *rng.pick(LAST));
            let (city, zip) = *rng.pick(CITIES);
            let n = customers.len();
            tx.execute(
                "INSERT INTO customers (shop_id, first_name, last_name, email, phone, address, city, postal_code, notes, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![
                    shop,
                    first,
                    last,
                    format!("{}.{}{n}@example.com", first.to_lowercase(), last.to_lowercase().replace(['\'', 'ü'], "")),
                    format!("(555) {:03}-{:04}", 200 + rng.below(799), rng.below(10000)),
                    format!("{} {}", 1 + rng.below(9999), rng.pick(STREETS)),
                    city,
                    zip,
                    if rng.chance(10) { Some("Prefers text messages.") } else { None },
                    stamp
                ],
            )?;
            let id = tx.last_insert_rowid();
            customers.push((id, shop));
            id
        };
        let (kind, make, model) = *rng.pick(DEVICES);
        let fitting: Vec<_> = PROBLEMS.iter().filter(|p| p.0.split(' ').any(|k| k == kind)).collect();
        let (_, problem, part, price, labor) = **rng.pick(&fitting);
        let age = (end - at).num_days();
        let status = ticket_status(age, rng);
        let tech = technicians[rng.below(technicians.len() as u64) as usize];
        let done = time_text(at + Duration::days(1 + rng.below(5) as i64));
        let serial = if kind == "phone" {
            imei(rng)
        } else {
            format!("SN{:010}", rng.below(10_000_000_000))
        };
        tx.execute(
            "INSERT INTO tickets (shop_id, customer_id, device_type, device_make, device_model, serial_number, problem, status,
                                  estimate_cents, technician_id, completed_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                shop,
                customer,
                kind,
                make,
                model,
                serial,
                problem,
                status,
                price + labor,
                tech,
                (status == "Completed").then(|| done.clone()),
                stamp,
                if status == "New" { stamp.clone() } else { done.clone() }
            ],
        )?;
        let ticket = tx.last_insert_rowid();
        report.tickets += 1;
        let steps = match status {
            "New" => 1,
            "In Diagnosis" => 2,
            "Pending Approval" => 3,
            "In Repair" | "Waiting for Parts" => 5,
            "Ready for Pickup" => 8,
            "Cancelled" => 2,
            _ => 9,
        };
        for (n, note) in NOTES.iter().take(steps).enumerate() {
            let note = if status == "Cancelled" && n == 1 {
                NOTES[9]
            } else {
                note
            };
            tx.execute(
                "INSERT INTO ticket_notes (ticket_id, author_id, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![ticket, tech, note, time_text(at + Duration::hours(n as i64 * 7))],
            )?;
        }
        if steps >= 3 {
            tx.execute(
                "INSERT INTO communications (customer_id, ticket_id, channel, direction, body, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'out', ?4, ?5, ?5)",
                params![
                    customer,
                    ticket,
                    *rng.pick(&["sms", "email", "call"]),
                    format!(
                        "Hi! Your {make} {model} repair estimate is ${}.{:02}. Reply YES to approve.",
                        (price + labor) / 100,
                        (price + labor) % 100
                    ),
                    time_text(at + Duration::hours(14))
                ],
            )?;
        }
        if matches!(status, "Ready for Pickup" | "Completed") {
            invoice_no += 1;
            let subtotal = price + labor;
            let tax = subtotal * 8 / 100;
            let paid = status == "Completed";
            tx.execute(
                "INSERT INTO invoices (shop_id, customer_id, ticket_id, number, status, subtotal_cents, tax_cents, total_cents, issued_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)",
                params![shop, customer, ticket, format!("INV-{invoice_no}"), if paid { "paid" } else { "issued" }, subtotal, tax, subtotal + tax, done],
            )?;
            let invoice = tx.last_insert_rowid();
            let part_row = parts
                .iter()
                .find(|(s, _, p, _)| *s == shop && *p == part)
                .map(|(_, id, _, _)| *id);
            if price > 0 {
                tx.execute(
                    "INSERT INTO invoice_lines (invoice_id, kind, description, quantity, unit_price_cents, inventory_id, created_at, updated_at)
                     VALUES (?1, 'part', ?2, 1, ?3, ?4, ?5, ?5)",
                    params![invoice, format!("{part} ({make} {model})"), price, part_row, done],
                )?;
            }
            tx.execute(
                "INSERT INTO invoice_lines (invoice_id, kind, description, quantity, unit_price_cents, created_at, updated_at)
                 VALUES (?1, 'labor', 'Labor', 1, ?2, ?3, ?3)",
                params![invoice, labor, done],
            )?;
            if paid {
                let card = rng.chance(80);
                let brand = card.then(|| *rng.pick(CARD_BRANDS));
                let last4 = card.then(|| format!("{:04}", rng.below(10000)));
                let method = if card { "card" } else { "cash" };
                tx.execute(
                    "INSERT INTO payments (invoice_id, method, card_brand, card_last4, amount_cents, paid_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6)",
                    params![invoice, method, brand, last4, subtotal + tax, done],
                )?;
                tx.execute(
                    "INSERT INTO transactions (shop_id, customer_id, invoice_id, kind, total_cents, payment_method, card_brand, card_last4, created_at, updated_at)
                     VALUES (?1, ?2, ?3, 'sale', ?4, ?5, ?6, ?7, ?8, ?8)",
                    params![shop, customer, invoice, subtotal + tax, method, brand, last4, done],
                )?;
            }
        }
        // Accessory sales at the counter.
        if rng.chance(15) {
            let card = rng.chance(70);
            tx.execute(
                "INSERT INTO transactions (shop_id, customer_id, kind, total_cents, payment_method, card_brand, card_last4, created_at, updated_at)
                 VALUES (?1, NULL, 'sale', ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    shop,
                    999 + rng.below(4000) as i64,
                    if card { "card" } else { "cash" },
                    card.then(|| *rng.pick(CARD_BRANDS)),
                    card.then(|| format!("{:04}", rng.below(10000))),
                    stamp
                ],
            )?;
        }
        // Photos: 0 to 6, mostly 2 or 3.
        let photos = *rng.pick(&[0u64, 1, 2, 2, 2, 3, 3, 3, 4, 5, 6]);
        for p in 0..photos {
            let (w, h) = shape.photo_size;
            let bytes = photo(rng, w, h);
            let sha = crate::attachments::store_content(attachments, &bytes)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            tx.execute(
                "INSERT INTO attachments (ticket_id, file_name, content_type, size, sha256, created_at, updated_at)
                 VALUES (?1, ?2, 'image/jpeg', ?3, ?4, ?5, ?5)",
                params![
                    ticket,
                    format!("IMG_{:04}.jpg", (t * 7 + p as usize) % 10000),
                    bytes.len() as i64,
                    sha,
                    stamp
                ],
            )?;
            report.attachments += 1;
            report.bytes += bytes.len() as u64;
        }
    }
    tx.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES ('seeded_at', ?1, ?1), ('currency', '\"USD\"', ?1)",
        params![ANCHOR],
    )?;
    report.customers = customers.len() as i64;
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(report)
}

/// Makes the demo account on first start when it is missing; `None` when it exists.
pub fn ensure_demo(config: &Config) -> Result<Option<SeedReport>, String> {
    std::fs::create_dir_all(&config.data).map_err(|e| format!("cannot create {}: {e}", config.data.display()))?;
    let mut conn = crate::db::open_connection(&config.data.join("server.db"))
        .map_err(|e| format!("cannot open server.db: {e}"))?;
    control::migrate(&mut conn, &config.data)?;
    if control::account_by_slug(&conn, "demo")
        .map_err(|e| format!("cannot read accounts: {e}"))?
        .is_some()
    {
        return Ok(None);
    }
    drop(conn);
    seed(config, "demo", Plan::Pro, "America/Chicago", Size::Small).map(Some)
}

/// The demo sign-ins, as `serve --demo` prints them.
pub fn demo_sign_ins() -> Vec<(Role, String, String)> {
    [
        (Role::Owner, "owner"),
        (Role::Manager, "manager"),
        (Role::Technician, "tech"),
        (Role::FrontDesk, "desk"),
    ]
    .into_iter()
    .map(|(role, local)| {
        (
            role,
            format!("{local}@demo.repairops.test"),
            demo_password(role).to_string(),
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refill_gives_the_same_data_and_every_sign_in_names_its_user() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data: dir.path().to_path_buf(),
            ..Config::default()
        };
        let dump = || {
            let live = Connection::open(config.account_dir("acme").join("live.db")).unwrap();
            let rows: Vec<(i64, String)> = live
                .prepare("SELECT id, name FROM users UNION ALL SELECT max(id), count(*) FROM tickets ORDER BY 1")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, String>(1).unwrap_or_default())))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            let control = Connection::open(dir.path().join("server.db")).unwrap();
            let named: Vec<i64> = control
                .prepare("SELECT user_id FROM identities ORDER BY user_id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            for id in &named {
                assert!(
                    rows.iter().any(|(u, _)| u == id),
                    "sign-in names user {id}, not in {rows:?}"
                );
            }
            rows
        };
        seed(&config, "acme", Plan::Pro, "UTC", Size::Small).unwrap();
        let first = dump();
        seed(&config, "acme", Plan::Pro, "UTC", Size::Small).unwrap();
        assert_eq!(dump(), first, "a refill is the first seed again");
    }

    #[test]
    fn imeis_pass_luhn() {
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let s = imei(&mut rng);
            assert_eq!(s.len(), 15);
            let sum: u32 = s
                .chars()
                .rev()
                .enumerate()
                .map(|(i, c)| {
                    let d = c.to_digit(10).unwrap();
                    if i % 2 == 1 {
                        let x = d * 2;
                        x / 10 + x % 10
                    } else {
                        d
                    }
                })
                .sum();
            assert_eq!(sum % 10, 0, "{s}");
        }
    }

    #[test]
    fn photos_are_real_jpegs() {
        let jpeg = photo(&mut Rng::new(3), 48, 36);
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
    }
}
