// Generated from the Rust types by `UPDATE_BINDINGS=1 cargo test -p repairops-desktop bindings`.
// Do not edit: a test fails when this file and the Rust types drift apart.

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;

export type Role = "owner" | "manager" | "technician" | "front_desk";

export type Plan = "starter" | "pro" | "enterprise";

export type AccountMode = "normal" | "restoring";

export type Account = { slug: string, name: string, plan: Plan, 
/**
 * IANA time zone, e.g. `America/Chicago`; backups run at 02:00 there.
 */
timezone: string, admin_email: string, mode: AccountMode, };

export type AccountPatch = { name: string | null, timezone: string | null, admin_email: string | null, };

export type SignedInUser = { 
/**
 * The team member's id in the shop data (`users` table).
 */
id: number, name: string, email: string, role: Role, };

export type TeamMember = { 
/**
 * The sign-in's id (for `PATCH /api/v1/team/{id}`).
 */
id: number, email: string, name: string, role: Role, 
/**
 * A switched-off sign-in cannot sign in, and its sessions have ended.
 */
active: boolean, created_at: string, };

export type TeamChange = { role: Role | null, active: boolean | null, password: string | null, };

export type NewTeamMember = { email: string, name: string, role: Role, password: string, };

export type Page<T> = { items: Array<T>, next: string | null, };

export type Ticket = { id: number, shop_id: number, customer_id: number, device_make: string, device_model: string, problem: string, device_type: string | null, serial_number: string | null, status: string | null, estimate_cents: number | null, technician_id: number | null, completed_at: string | null, created_at: string, updated_at: string, };

export type Customer = { id: number, shop_id: number, first_name: string, last_name: string, email: string | null, phone: string | null, address: string | null, city: string | null, postal_code: string | null, notes: string | null, created_at: string, updated_at: string, };

export type BackupKind = "scheduled" | "manual" | "safety";

export type DataSummary = { rows: { [key in string]?: number }, attachments: number, attachment_bytes: number, database_bytes: number, };

export type BackupLocation = { 
/**
 * `primary` or `secondary`.
 */
name: string, 
/**
 * A folder or `s3://bucket/prefix`.
 */
url: string, ok: boolean, 
/**
 * The vault snapshot id there.
 */
snapshot: string | null, error: string | null, 
/**
 * Time spent on this location: the backup itself for the first, the copy for the
 * second.
 */
duration_ms: number | null, };

export type JobState = "queued" | "running" | "succeeded" | "failed";

export type Backup = { id: number, kind: BackupKind, state: JobState, started_at: string, finished_at: string | null, duration_ms: number | null, 
/**
 * Live data backed up (database plus attachments), bytes.
 */
size_bytes: number | null, 
/**
 * Bytes this backup added to the primary repository.
 */
added_bytes: number | null, summary: DataSummary | null, locations: Array<BackupLocation>, error: string | null, warnings: Array<string>, };

export type Job = { id: number, 
/**
 * backup, restore, record_restore, sandbox, drill, export, prune, copy, key_rotation.
 */
kind: string, state: JobState, phase: string | null, bytes_done: number, bytes_total: number, 
/**
 * For a backup: `{"backup_id": N}`.
 */
result: JsonValue | null, error: string | null, created_at: string, finished_at: string | null, };

export type NextBackup = { 
/**
 * Shop-local time with its offset, e.g. `2026-12-01T02:00:00-06:00`.
 */
shop_time: string, utc: string, timezone: string, };

export type BackupStatus = { 
/**
 * The last backup that completed (in at least one location).
 */
last: Backup | null, next: NextBackup, 
/**
 * The last 30 backups, newest first.
 */
history: Array<Backup>, errors: Array<string>, warnings: Array<string>, 
/**
 * The newest restore drill (test restore), if any.
 */
last_drill: Drill | null, };

export type Drill = { id: number, backup_id: number, state: JobState, 
/**
 * Whether every check passed (none while it runs).
 */
passed: boolean | null, 
/**
 * One line per check, e.g. `tickets: 1500 rows, as in the backup's summary`.
 */
checks: Array<string>, 
/**
 * The location the backup was read from.
 */
location: string | null, started_at: string, duration_ms: number | null, 
/**
 * `manual` or `scheduled` (monthly).
 */
kind: string, };

export type NewExport = { 
/**
 * tickets, customers, invoices, inventory, users or transactions.
 */
dataset: string, 
/**
 * csv, json, or pdf (invoices only).
 */
format: string, 
/**
 * CSV only: one ASCII character, `,` by default (`;` for spreadsheets set to a
 * decimal comma, `\t` for tab-separated).
 */
delimiter?: string | null, filters?: ExportFilters | null, };

export type ExportFilters = { 
/**
 * First shop-local date (inclusive) of `created_at`, `YYYY-MM-DD`.
 */
from?: string | null, 
/**
 * Last shop-local date (inclusive) of `created_at`, `YYYY-MM-DD`.
 */
to?: string | null, 
/**
 * Tickets and invoices: one status.
 */
status?: string | null, 
/**
 * Every dataset but users without a shop: one shop location.
 */
shop_id?: number | null, };

export type Export = { id: number, dataset: string, format: string, filters: ExportFilters, state: JobState, 
/**
 * Records written (rows of a CSV, records of a JSON array, invoices of a PDF).
 */
rows: number | null, 
/**
 * Size of the file as downloaded, bytes.
 */
size_bytes: number | null, 
/**
 * SHA-256 of the file as downloaded (hex); also sent as `X-Content-SHA256`.
 */
sha256: string | null, 
/**
 * A name for the file that is safe on every drive format.
 */
file_name: string, requested_by: string, created_at: string, 
/**
 * When the file is deleted (30 days after it was made).
 */
expires_at: string, error: string | null, };

export type ComplianceRecord = { id: number, 
/**
 * subject_export, ccpa_export or ccpa_delete.
 */
kind: string, subject: string, requested_by: string, at: string, 
/**
 * What was found or done, e.g. `1 customer, 14 tickets`.
 */
detail: string, };

export type DeletionResult = { request_id: number, 
/**
 * Customers deleted (several when the email was on more than one record).
 */
customer_ids: Array<number>, 
/**
 * Rows removed per table, and `attachment_files` removed from disk.
 */
removed: { [key in string]?: number }, };

export type Sandbox = { id: number, backup_id: number, 
/**
 * running (being restored), succeeded (ready to browse) or failed.
 */
state: JobState, 
/**
 * The location the backup was read from: primary or secondary.
 */
location: string | null, created_at: string, 
/**
 * Deleted automatically then (7 days after creation), files included.
 */
expires_at: string, error: string | null, };

export type NotificationSettings = { 
/**
 * Email when a backup fails.
 */
on_failure: boolean, 
/**
 * Email when a backup is more than two hours late.
 */
on_delay: boolean, 
/**
 * Email when the shop's data passes 500 MB.
 */
on_large: boolean, };

export type StorageLocation = { 
/**
 * `primary` or `secondary`.
 */
name: string, url: string, reachable: boolean, error: string | null, 
/**
 * When a backup last reached this location.
 */
last_success: string | null, };

export type AuditEntry = { at: string, 
/**
 * Account slug, or `-` for server-wide events.
 */
account: string, 
/**
 * Email of who did it, `anonymous`, or `portal`.
 */
user: string, 
/**
 * login, logout, data_change, deletion, export, restore, backup, settings, ...
 */
event_type: string, 
/**
 * What was done, e.g. `POST /api/v1/tickets`.
 */
action: string, 
/**
 * What it was done to, e.g. `/api/v1/tickets/42`.
 */
resource: string, ip: string, 
/**
 * `success` or `failure`.
 */
result: string, 
/**
 * Status code and anything else worth keeping (never a password).
 */
detail: string, };

export type AuditRecord = { seq: number, at: string, 
/**
 * Account slug, or `-` for server-wide events.
 */
account: string, 
/**
 * Email of who did it, `anonymous`, or `portal`.
 */
user: string, 
/**
 * login, logout, data_change, deletion, export, restore, backup, settings, ...
 */
event_type: string, 
/**
 * What was done, e.g. `POST /api/v1/tickets`.
 */
action: string, 
/**
 * What it was done to, e.g. `/api/v1/tickets/42`.
 */
resource: string, ip: string, 
/**
 * `success` or `failure`.
 */
result: string, 
/**
 * Status code and anything else worth keeping (never a password).
 */
detail: string, };

export type RecordRestoreRequest = { backup_id: number, 
/**
 * `ticket` or `customer`.
 */
kind: string, id: number, 
/**
 * Replace live rows that differ from the backup's (after a 409 listed them).
 */
overwrite: boolean, };

export type RecordConflict = { table: string, id: number, 
/**
 * When the live row last changed, and when the backup's did.
 */
live_updated_at: string | null, backup_updated_at: string | null, };

export type RecordRestoreResult = { backup_id: number, kind: string, id: number, 
/**
 * The location the backup was read from.
 */
location: string, inserted: { [key in string]?: number }, 
/**
 * Rows replaced with the backup's (asked for with `overwrite`), or linked again to
 * a row brought back (a ticket, an invoice, a customer) after its deletion had
 * unlinked them, in any table: payment records in `transactions` too.
 */
overwritten: { [key in string]?: number }, unchanged: { [key in string]?: number }, attachment_files: number, };

export type ServerEvent = { 
/**
 * Resume after this id (`Last-Event-ID`).
 */
id: number | null, kind: string, data: JsonValue, };

export type ErrorKind = "offline" | "signed_out" | "forbidden" | "invalid" | "conflict" | "not_found" | "busy" | "read_only" | "cancelled" | "storage" | "failed";

export type UiError = { kind: ErrorKind, 
/**
 * A sentence to show as is.
 */
message: string, 
/**
 * Structured extras, e.g. the rows a record restore would overwrite.
 */
details: unknown, };

export type SessionInfo = { server: string, 
/**
 * The CA fingerprint this app trusts for the server.
 */
ca_sha256: string, email: string, user: SignedInUser, account: Account, 
/**
 * The token is in the credential store, so the next start opens signed in. False
 * when this computer has none the app can use (a bare Linux desktop with no Secret
 * Service): the token then lives in memory only, for this run.
 */
remembered: boolean, };

export type Overview = { online: boolean, 
/**
 * Why the server could not be reached, as a sentence.
 */
offline_reason: string | null, 
/**
 * When this was fetched from the server (RFC 3339).
 */
as_of: string | null, account: Account | null, 
/**
 * None when the role may not see backups.
 */
status: BackupStatus | null, storage: Array<StorageLocation>, running: Array<Job>, };

export type Prefs = { start_at_login: boolean, 
/**
 * Refresh the disaster kit daily while the app runs and the kit's drive is present.
 */
kit_daily: boolean, 
/**
 * Where the kit was last saved.
 */
kit_folder: string | null, };

export type SavedFile = { path: string, 
/**
 * SHA-256 of the bytes written, hex.
 */
sha256: string, size: number, 
/**
 * When it was saved (RFC 3339).
 */
saved_at: string, 
/**
 * What it holds, e.g. `tickets (CSV), export 12`.
 */
what: string, 
/**
 * The server it came from.
 */
server: string, };

export type Verification = { path: string, intact: boolean, message: string, };

export type ServerIdentity = { url: string, ca_sha256: string, 
/**
 * This computer trusted this CA for this server before.
 */
trusted: boolean, 
/**
 * The CA this computer trusted for this server before, when it is not this one: the
 * server was reinstalled, or someone is in between. The person must confirm the new
 * fingerprint with whoever runs the server.
 */
replaces: string | null, };

export type BackupFilter = { kind: string | null, from: string | null, to: string | null, cursor: string | null, };

export type AuditFilter = { from: string | null, to: string | null, event_type: string | null, user: string | null, cursor: string | null, };

export type SaveProgress = { target: string, done: number, total: number, 
/**
 * The connection dropped and the download is being picked up again from `done`.
 */
resuming: boolean, };

export type KitResult = { folder: string, files: Array<SavedFile>, };
