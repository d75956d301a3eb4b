// The only module that talks to the Rust side: one typed function per Tauri command and
// one per event. Every rejection becomes an `ApiError` with a readable `message`.

import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type {
  Account,
  AccountPatch,
  AuditFilter,
  AuditRecord,
  Backup,
  BackupFilter,
  ComplianceRecord,
  Customer,
  DataSummary,
  DeletionResult,
  Export,
  Job,
  KitResult,
  NewExport,
  NewTeamMember,
  NotificationSettings,
  Overview,
  Page,
  Prefs,
  RecordRestoreRequest,
  RecordRestoreResult,
  Sandbox,
  SaveProgress,
  SavedFile,
  ServerIdentity,
  SessionInfo,
  TeamChange,
  TeamMember,
  Ticket,
  UiError,
  Verification,
} from "./bindings";

export type ErrorKind = UiError["kind"];

const KINDS: readonly ErrorKind[] = [
  "offline",
  "signed_out",
  "forbidden",
  "invalid",
  "conflict",
  "not_found",
  "busy",
  "read_only",
  "cancelled",
  "storage",
  "failed",
];

export const GENERIC_MESSAGE = "Something went wrong. Please try again.";

/** A failed command, ready to show: `message` is a sentence, never JSON or a stack. */
export class ApiError extends Error {
  readonly kind: ErrorKind;
  readonly details: unknown;

  constructor(kind: ErrorKind, message: string, details: unknown = null) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.details = details;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function looksLikeJson(s: string): boolean {
  const t = s.trim();
  return t.startsWith("{") || t.startsWith("[");
}

function usableText(s: unknown): s is string {
  return typeof s === "string" && s.trim() !== "" && !looksLikeJson(s);
}

/** Turns whatever a command rejected with into an `ApiError`. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (isRecord(e) && !(e instanceof Error) && typeof e.message === "string") {
    const kind = KINDS.includes(e.kind as ErrorKind) ? (e.kind as ErrorKind) : "failed";
    const message = usableText(e.message) ? e.message.trim() : GENERIC_MESSAGE;
    return new ApiError(kind, message, e.details ?? null);
  }
  if (usableText(e)) return new ApiError("failed", e.trim());
  return new ApiError("failed", GENERIC_MESSAGE);
}

/** The sentence to show for a failure. */
export function errorMessage(e: unknown): string {
  return toApiError(e).message;
}

/** The failure's kind (`failed` when it was not a UiError). */
export function errorKind(e: unknown): ErrorKind {
  return toApiError(e).kind;
}

type SignedOutHandler = () => void;
let signedOutHandler: SignedOutHandler | null = null;

/** Called whenever a command says the session is gone (kind `signed_out`). */
export function onSignedOut(handler: SignedOutHandler | null): void {
  signedOutHandler = handler;
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    const err = toApiError(e);
    if (err.kind === "signed_out" && signedOutHandler) signedOutHandler();
    throw err;
  }
}

// ---- session ----
export const session = () => call<SessionInfo | null>("session");
/** The first screen is on display (for the start-up benchmark). */
export const uiReady = () => call<null>("ui_ready").catch(() => null);
export const checkServer = (url: string) => call<ServerIdentity>("check_server", { url });
export const signIn = (url: string, ca_sha256: string, email: string, password: string) =>
  call<SessionInfo>("sign_in", { url, ca_sha256, email, password });
export const signOut = () => call<null>("sign_out");

// ---- status and backups ----
export const overview = () => call<Overview>("overview");
export const backups = (filter: BackupFilter) => call<Page<Backup>>("backups", { filter });
export const backup = (id: number) => call<Backup>("backup", { id });
export const backUpNow = () => call<Job>("back_up_now");
export const deleteBackup = (id: number) => call<null>("delete_backup", { id });
export const verifyBackup = (id: number) => call<Job>("verify_backup", { id });
export const job = (id: number) => call<Job>("job", { id });
export const runningJobs = () => call<Job[]>("running_jobs");
export const liveSummary = () => call<DataSummary>("live_summary");

// ---- sandboxes ----
export const sandboxes = () => call<Page<Sandbox>>("sandboxes");
export const createSandbox = (backup_id: number) => call<Job>("create_sandbox", { backup_id });
export const deleteSandbox = (id: number) => call<null>("delete_sandbox", { id });
export const sandboxTickets = (id: number, cursor: string | null) =>
  call<Page<Ticket>>("sandbox_tickets", { id, cursor });
export const sandboxCustomers = (id: number, cursor: string | null) =>
  call<Page<Customer>>("sandbox_customers", { id, cursor });

// ---- restores ----
export const restore = (backup_id: number, confirm: string) =>
  call<Job>("restore", { backup_id, confirm });
export const restoreRecord = (req: RecordRestoreRequest) =>
  call<RecordRestoreResult>("restore_record", { req });

// ---- exports ----
export const listExports = (cursor: string | null = null) => call<Page<Export>>("exports", { cursor });
export const startExport = (req: NewExport) => call<Job>("start_export", { req });
export const saveExport = (export_id: number) => call<SavedFile | null>("save_export", { export_id });
export const savedFiles = () => call<SavedFile[]>("saved_files");
export const verifySaved = (path: string) => call<Verification>("verify_saved", { path });

// ---- compliance ----
export const complianceExport = (email: string, kind: "subject" | "ccpa") =>
  call<SavedFile | null>("compliance_export", { email, kind });
export const ccpaDelete = (email: string, confirm: string) =>
  call<DeletionResult>("ccpa_delete", { email, confirm });
export const complianceRequests = (cursor: string | null = null) =>
  call<Page<ComplianceRecord>>("compliance_requests", { cursor });

// ---- audit ----
export const audit = (filter: AuditFilter) => call<Page<AuditRecord>>("audit", { filter });
export const saveAuditCsv = (filter: AuditFilter) =>
  call<SavedFile | null>("save_audit_csv", { filter });

// ---- settings ----
export const notificationSettings = () => call<NotificationSettings>("notification_settings");
export const setNotificationSettings = (settings: NotificationSettings) =>
  call<NotificationSettings>("set_notification_settings", { settings });
export const account = () => call<Account>("account");
export const updateAccount = (patch: AccountPatch) => call<Account>("update_account", { patch });
export const rotateKey = () => call<Job>("rotate_key");
export const saveRecoveryKey = (passphrase: string) => call<SavedFile | null>("save_recovery_key", { passphrase });
export const team = () => call<TeamMember[]>("team");
export const addTeamMember = (member: NewTeamMember) => call<TeamMember>("add_team_member", { member });
export const changeTeamMember = (id: number, change: TeamChange) =>
  call<TeamMember>("change_team_member", { id, change });
export const prefs = () => call<Prefs>("prefs");
export const setPrefs = (p: Prefs) => call<Prefs>("set_prefs", { prefs: p });
export const saveDisasterKit = () => call<KitResult | null>("save_disaster_kit");

// ---- events ----
export type Unlisten = () => void;

/** The "connection" event: whether the server can be reached. */
export type ConnectionEvent = { online: boolean; message: string | null };

async function on<T>(event: string, handler: (payload: T) => void): Promise<Unlisten> {
  try {
    return await listen<T>(event, (e) => handler(e.payload));
  } catch {
    // Outside the desktop shell (a plain browser) there are no events to listen to.
    return () => {};
  }
}

export const onJob = (handler: (job: Job) => void) => on<Job>("job", handler);
export const onConnection = (handler: (c: ConnectionEvent) => void) =>
  on<ConnectionEvent>("connection", handler);
export const onOverview = (handler: (o: Overview) => void) => on<Overview>("overview", handler);
export const onSaveProgress = (handler: (p: SaveProgress) => void) =>
  on<SaveProgress>("save-progress", handler);
export const onNavigate = (handler: (screen: string) => void) => on<string>("navigate", handler);
