//! Wire types of HTTP API v1. Field names are the contract with the desktop app and
//! operators' scripts: change them only with a note.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"error": {"code", "message"}}`, the body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for a program (`code`) and for a person (`message`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `read_only`, `forbidden`, `not_found`.
    pub code: String,
    /// A sentence a shop manager can act on.
    pub message: String,
}

/// One page of a list: `next` is the cursor for the following page, or null at the end.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What a signed-in person may do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Manager,
    Technician,
    FrontDesk,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Technician => "technician",
            Role::FrontDesk => "front_desk",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "owner" => Role::Owner,
            "manager" => Role::Manager,
            "technician" => Role::Technician,
            "front_desk" => Role::FrontDesk,
            _ => return None,
        })
    }
}

/// The plan decides backup retention: Starter 30 days, Pro 60, Enterprise 730.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    Starter,
    Pro,
    Enterprise,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    pub fn parse(s: &str) -> Option<Plan> {
        Some(match s {
            "starter" => Plan::Starter,
            "pro" => Plan::Pro,
            "enterprise" => Plan::Enterprise,
            _ => return None,
        })
    }

    /// Days scheduled backups are kept.
    pub fn retention_days(self) -> u32 {
        match self {
            Plan::Starter => 30,
            Plan::Pro => 60,
            Plan::Enterprise => 730,
        }
    }
}

/// Whether an account takes writes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AccountMode {
    Normal,
    /// A restore is running: reads work, writes get HTTP 423.
    Restoring,
}

/// A business using RepairOps: one or more shops.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Account {
    pub slug: String,
    pub name: String,
    pub plan: Plan,
    /// IANA time zone, e.g. `America/Chicago`; backups run at 02:00 there.
    pub timezone: String,
    pub admin_email: String,
    pub mode: AccountMode,
}

/// `PATCH /api/v1/account` (owner only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub admin_email: Option<String>,
}

/// `POST /api/v1/keys/recovery` (owner only): the passphrase that will open the
/// backups without the server, 12 to 1,024 characters. It is not stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RecoveryKeyRequest {
    pub passphrase: String,
}

impl RecoveryKeyRequest {
    /// A passphrase's length, in characters: it alone opens every backup.
    pub const PASSPHRASE_CHARS: std::ops::RangeInclusive<usize> = 12..=1024;

    /// Why the passphrase would be refused, in words for the person choosing it; `None`
    /// when it will do. The server decides; the desktop asks first, before the save
    /// dialog, so no one picks a place for a file that is then refused.
    pub fn passphrase_problem(&self) -> Option<String> {
        let (min, max) = (Self::PASSPHRASE_CHARS.start(), Self::PASSPHRASE_CHARS.end());
        (!Self::PASSPHRASE_CHARS.contains(&self.passphrase.chars().count()))
            .then(|| format!("A recovery passphrase must be {min} to {max} characters: it alone opens every backup."))
    }
}

/// A team sign-in (`GET /api/v1/team`, owner only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamMember {
    /// The sign-in's id (for `PATCH /api/v1/team/{id}`).
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// A switched-off sign-in cannot sign in, and its sessions have ended.
    pub active: bool,
    pub created_at: String,
}

/// `PATCH /api/v1/team/{id}` (owner only): any of a new role, switching the sign-in
/// off or on, a new password (10 to 256 characters). Switching off and a new password
/// end that person's sessions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TeamChange {
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password: Option<String>,
}

/// `POST /api/v1/team` (owner only): a sign-in for someone who joined the shop. The
/// email must not sign in anywhere yet; the name is 1 to 200 characters and the
/// password 10 to 256. They appear among the shop's users (technicians are assigned
/// tickets from there), reusing the user with that email if the shop has one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewTeamMember {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
}

/// The signed-in person.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SignedInUser {
    /// The team member's id in the shop data (`users` table).
    pub id: i64,
    pub name: String,
    pub email: String,
    pub role: Role,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A bearer token and who it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub user: SignedInUser,
    pub account: Account,
}

/// `POST /api/v1/portal/repairs`: a customer asks for a repair, without signing in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PortalRepairRequest {
    /// The shop's account slug (from the portal's address).
    pub account: String,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub phone: Option<String>,
    /// e.g. "iPhone 13".
    pub device: String,
    pub problem: String,
}

/// The portal's answer: the ticket number to quote.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PortalRepairResponse {
    pub ticket_id: i64,
    pub status: String,
}

/// Declares a shop-data resource: the record as stored and returned, the body that
/// creates one (required fields plus optional ones), and the body that updates one.
macro_rules! resource {
    (
        $(#[$doc:meta])*
        $record:ident, $input:ident, $patch:ident {
            required { $($req:ident : $req_ty:ty),* $(,)? }
            optional { $($opt:ident : $opt_ty:ty),* $(,)? }
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        pub struct $record {
            pub id: i64,
            $(pub $req: $req_ty,)*
            $(pub $opt: Option<$opt_ty>,)*
            pub created_at: DateTime<Utc>,
            pub updated_at: DateTime<Utc>,
        }

        #[doc = concat!("Creates a `", stringify!($record), "`.")]
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[serde(deny_unknown_fields)]
        pub struct $input {
            $(pub $req: $req_ty,)*
            $(#[serde(default, skip_serializing_if = "Option::is_none")] pub $opt: Option<$opt_ty>,)*
        }

        #[doc = concat!("Changes the given fields of a `", stringify!($record), "`.")]
        #[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[serde(deny_unknown_fields)]
        pub struct $patch {
            $(#[serde(default, skip_serializing_if = "Option::is_none")] pub $req: Option<$req_ty>,)*
            $(#[serde(default, skip_serializing_if = "Option::is_none")] pub $opt: Option<$opt_ty>,)*
        }
    };
}

resource! {
    /// A shop location.
    Shop, ShopInput, ShopPatch {
        required { name: String }
        optional { address: String, phone: String, email: String }
    }
}

resource! {
    /// A customer. Amounts elsewhere are in cents.
    Customer, CustomerInput, CustomerPatch {
        required { shop_id: i64, first_name: String, last_name: String }
        optional { email: String, phone: String, address: String, city: String, postal_code: String, notes: String }
    }
}

resource! {
    /// A repair ticket. `status` moves New → In Diagnosis → Pending Approval → In Repair →
    /// Waiting for Parts → Ready for Pickup → Completed (or Cancelled).
    Ticket, TicketInput, TicketPatch {
        required { shop_id: i64, customer_id: i64, device_make: String, device_model: String, problem: String }
        optional {
            device_type: String,
            serial_number: String,
            status: String,
            estimate_cents: i64,
            technician_id: i64,
            completed_at: DateTime<Utc>,
        }
    }
}

resource! {
    /// An invoice for a ticket.
    Invoice, InvoiceInput, InvoicePatch {
        required { shop_id: i64, customer_id: i64, number: String }
        optional {
            ticket_id: i64,
            status: String,
            subtotal_cents: i64,
            tax_cents: i64,
            total_cents: i64,
            issued_at: DateTime<Utc>,
        }
    }
}

resource! {
    /// A stocked part or product.
    InventoryItem, InventoryItemInput, InventoryItemPatch {
        required { shop_id: i64, sku: String, name: String }
        optional { stock: i64, reorder_level: i64, cost_cents: i64, price_cents: i64 }
    }
}

resource! {
    /// A point-of-sale transaction (a sale or a refund). Card payments keep only the
    /// brand and the last four digits.
    Transaction, TransactionInput, TransactionPatch {
        required { shop_id: i64, kind: String, total_cents: i64, payment_method: String }
        optional { customer_id: i64, invoice_id: i64, card_brand: String, card_last4: String }
    }
}

resource! {
    /// A payment towards an invoice. As for transactions, a card payment keeps only the
    /// brand and the last four digits.
    Payment, PaymentInput, PaymentPatch {
        required { invoice_id: i64, method: String, amount_cents: i64, paid_at: DateTime<Utc> }
        optional { card_brand: String, card_last4: String }
    }
}

resource! {
    /// A note on a ticket. Made without `author_id`, it names the person who signed in.
    TicketNote, TicketNoteInput, TicketNotePatch {
        required { ticket_id: i64, body: String }
        optional { author_id: i64 }
    }
}

resource! {
    /// A message to or from a customer: `channel` sms, email or call; `direction` in or
    /// out; about a ticket when `ticket_id` is set.
    Communication, CommunicationInput, CommunicationPatch {
        required { customer_id: i64, channel: String, direction: String, body: String }
        optional { ticket_id: i64 }
    }
}

resource! {
    /// A line of an invoice: `kind` part or labor, `quantity` at `unit_price_cents`, and
    /// the stock item it took when `inventory_id` is set. The invoice's totals are its
    /// own fields.
    InvoiceLine, InvoiceLineInput, InvoiceLinePatch {
        required { invoice_id: i64, kind: String, description: String, quantity: i64, unit_price_cents: i64 }
        optional { inventory_id: i64 }
    }
}

/// Metadata of a stored photo or document; its bytes are at `/attachments/{id}/content`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Attachment {
    pub id: i64,
    pub ticket_id: i64,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes an attachment's name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AttachmentPatch {
    pub file_name: Option<String>,
}

/// Ticket statuses in their usual order.
pub const TICKET_STATUSES: &[&str] = &[
    "New",
    "In Diagnosis",
    "Pending Approval",
    "In Repair",
    "Waiting for Parts",
    "Ready for Pickup",
    "Completed",
    "Cancelled",
];

/// Invoice statuses.
pub const INVOICE_STATUSES: &[&str] = &["draft", "issued", "paid", "void"];

/// Transaction kinds.
pub const TRANSACTION_KINDS: &[&str] = &["sale", "refund"];

/// Payment methods.
pub const PAYMENT_METHODS: &[&str] = &["card", "cash", "bank_transfer", "store_credit", "other"];

/// How a message to or from a customer went.
pub const COMMUNICATION_CHANNELS: &[&str] = &["sms", "email", "call"];

/// Whether the shop sent a message (`out`) or the customer did (`in`).
pub const COMMUNICATION_DIRECTIONS: &[&str] = &["in", "out"];

/// What an invoice line charges for.
pub const INVOICE_LINE_KINDS: &[&str] = &["part", "labor"];

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// The nightly 02:00 backup; kept as long as the plan says.
    Scheduled,
    /// Taken on request; kept until deleted.
    Manual,
    /// Taken before a restore so the restore can be undone; kept 30 days.
    Safety,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Scheduled => "scheduled",
            BackupKind::Manual => "manual",
            BackupKind::Safety => "safety",
        }
    }

    pub fn parse(s: &str) -> Option<BackupKind> {
        Some(match s {
            "scheduled" => BackupKind::Scheduled,
            "manual" => BackupKind::Manual,
            "safety" => BackupKind::Safety,
            _ => return None,
        })
    }
}

/// What is in a backup: rows per table and attachment files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DataSummary {
    pub rows: std::collections::BTreeMap<String, i64>,
    pub attachments: i64,
    pub attachment_bytes: u64,
    pub database_bytes: u64,
}

impl DataSummary {
    /// Bytes of live data (database plus attachments).
    pub fn size(&self) -> u64 {
        self.database_bytes + self.attachment_bytes
    }
}

/// How one backup location fared.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BackupLocation {
    /// `primary` or `secondary`.
    pub name: String,
    /// A folder or `s3://bucket/prefix`.
    pub url: String,
    pub ok: bool,
    /// The vault snapshot id there.
    pub snapshot: Option<String>,
    pub error: Option<String>,
    /// Time spent on this location: the backup itself for the first, the copy for the
    /// second.
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// State of a backup or a job.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
}

/// One backup of an account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Backup {
    pub id: i64,
    pub kind: BackupKind,
    pub state: JobState,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    /// Live data backed up (database plus attachments), bytes.
    pub size_bytes: Option<u64>,
    /// Bytes this backup added to the primary repository.
    pub added_bytes: Option<u64>,
    pub summary: Option<DataSummary>,
    pub locations: Vec<BackupLocation>,
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

/// Long work: a backup, restore, export…
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Job {
    pub id: i64,
    /// backup, restore, record_restore, sandbox, drill, export, prune, copy, key_rotation.
    pub kind: String,
    pub state: JobState,
    pub phase: Option<String>,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// For a backup: `{"backup_id": N}`.
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The next scheduled backup, in shop time and in UTC.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NextBackup {
    /// Shop-local time with its offset, e.g. `2026-12-01T02:00:00-06:00`.
    pub shop_time: String,
    pub utc: DateTime<Utc>,
    pub timezone: String,
}

/// `GET /api/v1/backups/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BackupStatus {
    /// The last backup that completed (in at least one location).
    pub last: Option<Backup>,
    pub next: NextBackup,
    /// The last 30 backups, newest first.
    pub history: Vec<Backup>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The newest restore drill (test restore), if any.
    #[serde(default)]
    pub last_drill: Option<Drill>,
}

/// A restore drill: a backup restored into a scratch folder and checked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Drill {
    pub id: i64,
    pub backup_id: i64,
    pub state: JobState,
    /// Whether every check passed (none while it runs).
    pub passed: Option<bool>,
    /// One line per check, e.g. `tickets: 1500 rows, as in the backup's summary`.
    pub checks: Vec<String>,
    /// The location the backup was read from.
    pub location: Option<String>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: Option<u64>,
    /// `manual` or `scheduled` (monthly).
    pub kind: String,
}

/// `POST /api/v1/exports`: what to export and how.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewExport {
    /// tickets, customers, invoices, inventory, users or transactions.
    pub dataset: String,
    /// csv, json, or pdf (invoices only).
    pub format: String,
    /// CSV only: one ASCII character, `,` by default (`;` for spreadsheets set to a
    /// decimal comma, `\t` for tab-separated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<ExportFilters>,
}

/// Filters of an export (a "custom selection"): any combination, on any dataset they apply to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ExportFilters {
    /// First shop-local date (inclusive) of `created_at`, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last shop-local date (inclusive) of `created_at`, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Tickets and invoices: one status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Every dataset but users without a shop: one shop location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<i64>,
}

/// A stored export file (`GET /api/v1/exports`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Export {
    pub id: i64,
    pub dataset: String,
    pub format: String,
    pub filters: ExportFilters,
    pub state: JobState,
    /// Records written (rows of a CSV, records of a JSON array, invoices of a PDF).
    pub rows: Option<u64>,
    /// Size of the file as downloaded, bytes.
    pub size_bytes: Option<u64>,
    /// SHA-256 of the file as downloaded (hex); also sent as `X-Content-SHA256`.
    pub sha256: Option<String>,
    /// A name for the file that is safe on every drive format.
    pub file_name: String,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    /// When the file is deleted (30 days after it was made).
    pub expires_at: DateTime<Utc>,
    pub error: Option<String>,
}

/// `POST /api/v1/compliance/subject-export` and `ccpa`: whose data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SubjectRequest {
    pub email: String,
}

/// `POST /api/v1/compliance/ccpa`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CcpaRequest {
    pub email: String,
    /// `export` (the categories of data collected, and the data) or `delete`.
    pub kind: String,
}

/// The outcome of a CCPA deletion: what was removed, counted per table.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeletionResult {
    pub request_id: i64,
    /// Customers deleted (several when the email was on more than one record).
    pub customer_ids: Vec<i64>,
    /// Rows removed per table, and `attachment_files` removed from disk.
    pub removed: std::collections::BTreeMap<String, u64>,
}

/// A compliance request handled (`GET /api/v1/compliance/requests`). Holds no personal
/// data of the subject: the email is masked (`j***@e***.com`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ComplianceRecord {
    pub id: i64,
    /// subject_export, ccpa_export or ccpa_delete.
    pub kind: String,
    pub subject: String,
    pub requested_by: String,
    pub at: DateTime<Utc>,
    /// What was found or done, e.g. `1 customer, 14 tickets`.
    pub detail: String,
}

/// `POST /api/v1/sandboxes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewSandbox {
    pub backup_id: i64,
}

/// A backup restored into a separate database, served under `/sandboxes/{id}/api/v1/…`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Sandbox {
    pub id: i64,
    pub backup_id: i64,
    /// running (being restored), succeeded (ready to browse) or failed.
    pub state: JobState,
    /// The location the backup was read from: primary or secondary.
    pub location: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Deleted automatically then (7 days after creation), files included.
    pub expires_at: DateTime<Utc>,
    pub error: Option<String>,
}

/// Which notifications an account wants by email (`GET`/`PUT /api/v1/settings/notifications`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Email when a backup fails.
    pub on_failure: bool,
    /// Email when a backup is more than two hours late.
    pub on_delay: bool,
    /// Email when the shop's data passes 500 MB.
    pub on_large: bool,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            on_failure: true,
            on_delay: true,
            on_large: true,
        }
    }
}

/// One backup location as `GET /api/v1/storage` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StorageLocation {
    /// `primary` or `secondary`.
    pub name: String,
    pub url: String,
    pub reachable: bool,
    pub error: Option<String>,
    /// When a backup last reached this location.
    pub last_success: Option<DateTime<Utc>>,
}

/// One thing that happened, as the audit log records it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    pub at: String,
    /// Account slug, or `-` for server-wide events.
    pub account: String,
    /// Email of who did it, `anonymous`, or `portal`.
    pub user: String,
    /// login, logout, data_change, deletion, export, restore, backup, settings, ...
    pub event_type: String,
    /// What was done, e.g. `POST /api/v1/tickets`.
    pub action: String,
    /// What it was done to, e.g. `/api/v1/tickets/42`.
    pub resource: String,
    pub ip: String,
    /// `success` or `failure`.
    pub result: String,
    /// Status code and anything else worth keeping (never a password).
    pub detail: String,
}

/// One audit-log entry as the API returns it: its place in the log and what it records.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub entry: AuditEntry,
}

/// `POST /api/v1/restores/records`: one ticket or customer back from a backup.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RecordRestoreRequest {
    pub backup_id: i64,
    /// `ticket` or `customer`.
    pub kind: String,
    pub id: i64,
    /// Replace live rows that differ from the backup's (after a 409 listed them).
    #[serde(default)]
    pub overwrite: bool,
}

/// A live row that differs from the backup's (listed by a 409 `would_overwrite`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RecordConflict {
    pub table: String,
    pub id: i64,
    /// When the live row last changed, and when the backup's did.
    pub live_updated_at: Option<String>,
    pub backup_updated_at: Option<String>,
}

/// What a record restore did, per table.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RecordRestoreResult {
    pub backup_id: i64,
    pub kind: String,
    pub id: i64,
    /// The location the backup was read from.
    pub location: String,
    pub inserted: std::collections::BTreeMap<String, u64>,
    /// Rows replaced with the backup's (asked for with `overwrite`), or linked again to
    /// a row brought back (a ticket, an invoice, a customer) after its deletion had
    /// unlinked them, in any table: payment records in `transactions` too.
    pub overwritten: std::collections::BTreeMap<String, u64>,
    pub unchanged: std::collections::BTreeMap<String, u64>,
    pub attachment_files: u64,
}

/// One event of `GET /api/v1/events`: `kind` is job.progress, job.finished,
/// backup.failed, backup.delayed, backup.large, drill.failed, restore.finished or
/// location.down; `data` holds at least `account`, `at` and the ids it concerns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ServerEvent {
    /// Resume after this id (`Last-Event-ID`).
    pub id: Option<u64>,
    pub kind: String,
    pub data: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_passphrase_is_counted_in_characters() {
        let problem = |p: &str| {
            RecoveryKeyRequest {
                passphrase: p.to_string(),
            }
            .passphrase_problem()
        };
        assert!(problem("eleven char").is_some());
        assert_eq!(problem("twelve chars"), None);
        // Twelve characters of four bytes each: long enough, whatever the bytes.
        assert_eq!(problem(&"🔑".repeat(12)), None);
        assert!(problem(&"🔑".repeat(11)).is_some());
        assert_eq!(problem(&"x".repeat(1024)), None);
        let long = problem(&"x".repeat(1025)).unwrap();
        assert!(long.contains("12 to 1024 characters"), "{long}");
    }
}
