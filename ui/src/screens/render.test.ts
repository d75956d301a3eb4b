// Smoke tests: the screens render (server-side, without effects) with typical data.
import { describe, expect, it, vi } from "vitest";
import { render } from "svelte/server";
import type { Overview, SessionInfo } from "../lib/bindings";

vi.mock("@tauri-apps/api/core", () => ({ invoke: async () => null }));
vi.mock("@tauri-apps/api/event", () => ({ listen: async () => () => {} }));

import Dashboard from "./Dashboard.svelte";
import Connect from "./Connect.svelte";
import Settings from "./Settings.svelte";
import Exports from "./Exports.svelte";
import Backups from "./Backups.svelte";
import Restore from "./Restore.svelte";
import Sandboxes from "./Sandboxes.svelte";
import Compliance from "./Compliance.svelte";
import Audit from "./Audit.svelte";

const now = Date.now();
const iso = (msAgo: number) => new Date(now - msAgo).toISOString();

const account = {
  slug: "acme-repair",
  name: "Acme Repair",
  plan: "pro" as const,
  timezone: "America/Chicago",
  admin_email: "owner@acme.test",
  mode: "normal" as const,
};

const overview: Overview = {
  online: true,
  offline_reason: null,
  as_of: iso(0),
  account,
  status: {
    last: {
      id: 3,
      kind: "scheduled",
      state: "succeeded",
      started_at: iso(300_000),
      finished_at: iso(240_000),
      duration_ms: 60_000,
      size_bytes: 12_345_678,
      added_bytes: 1000,
      summary: { rows: { tickets: 10 }, attachments: 2, attachment_bytes: 100, database_bytes: 1000 },
      locations: [],
      error: null,
      warnings: [],
    },
    next: { shop_time: "2026-12-01T02:00:00-06:00", utc: "2026-12-01T08:00:00Z", timezone: "America/Chicago" },
    history: [
      {
        id: 3,
        kind: "scheduled",
        state: "succeeded",
        started_at: iso(300_000),
        finished_at: iso(240_000),
        duration_ms: 60_000,
        size_bytes: 12_345_678,
        added_bytes: 1000,
        summary: null,
        locations: [],
        error: null,
        warnings: [],
      },
      {
        id: 2,
        kind: "scheduled",
        state: "failed",
        started_at: iso(86_400_000),
        finished_at: iso(86_000_000),
        duration_ms: null,
        size_bytes: null,
        added_bytes: null,
        summary: null,
        locations: [],
        error: "disk full",
        warnings: [],
      },
    ],
    errors: [],
    warnings: ["Data passed 500 MB."],
    last_drill: {
      id: 1,
      backup_id: 3,
      state: "succeeded",
      passed: true,
      checks: ["tickets: 10 rows, as in the backup's summary"],
      location: "primary",
      started_at: iso(3_600_000),
      duration_ms: 5000,
      kind: "manual",
    },
  },
  storage: [{ name: "primary", url: "/srv/backups", reachable: true, error: null, last_success: iso(240_000) }],
  running: [],
};

const session: SessionInfo = {
  server: "https://127.0.0.1:8443",
  ca_sha256: "ab".repeat(32),
  email: "owner@acme.test",
  user: { id: 1, name: "Olive Owner", email: "owner@acme.test", role: "owner" },
  account,
  remembered: true,
};

describe("screens render", () => {
  it("Dashboard shows status, last and next backup", () => {
    const { body } = render(Dashboard, { props: { overview } });
    expect(body).toContain('data-testid="overall-status"');
    expect(body).toContain('data-status="warning"');
    expect(body).toContain('data-testid="last-backup"');
    expect(body).toContain("12.3 MB");
    expect(body).toContain("Tue 1 Dec, 02:00 (America/Chicago)");
    expect(body).toContain("<svg");
    expect(body).toContain("Data passed 500 MB.");
  });

  it("Dashboard waits for an overview", () => {
    expect(render(Dashboard, { props: { overview: null } }).body).toContain("Loading");
  });

  it("Connect has its fields", () => {
    const { body } = render(Connect, { props: { onSignedIn: () => {} } });
    for (const id of ["server-url", "check-server", "email", "password", "sign-in"]) {
      expect(body).toContain(`data-testid="${id}"`);
    }
    expect(body).toContain("https://127.0.0.1:8443");
  });

  it("Settings shows the plan and the owner's controls", () => {
    const { body } = render(Settings, {
      props: { session, account, online: true, onSignOut: async () => {}, onAccountChanged: () => {} },
    });
    expect(body).toContain('data-testid="sign-out"');
    expect(body).toContain("60 days");
    expect(body).toContain('data-testid="rotate-key"');
    expect(body).toContain("Team sign-ins");
    expect(body).toContain('data-testid="team"');
    expect(body).toContain('data-testid="save-recovery-key"');
  });

  it("Settings hides the owner's controls from a technician", () => {
    const tech = { ...session, user: { ...session.user, role: "technician" as const } };
    const { body } = render(Settings, {
      props: { session: tech, account, online: true, onSignOut: async () => {}, onAccountChanged: () => {} },
    });
    expect(body).not.toContain('data-testid="rotate-key"');
    expect(body).not.toContain('data-testid="save-notifications"');
    expect(body).not.toContain('data-testid="admin-email"');
    expect(body).not.toContain("Team sign-ins");
    expect(body).not.toContain('data-testid="save-recovery-key"');
  });

  it("the other screens render", () => {
    expect(render(Exports, { props: { online: false, canExport: true } }).body).toContain(
      'data-testid="start-export"',
    );
    expect(render(Backups, { props: { role: "manager" } }).body).toContain('data-testid="back-up-now"');
    expect(render(Backups, { props: { role: "technician" } }).body).not.toContain('data-testid="back-up-now"');
    expect(render(Restore, { props: { slug: "acme-repair" } }).body).toContain("Restore one record");
    expect(render(Sandboxes, {}).body).toContain('data-testid="create-sandbox"');
    expect(render(Compliance, {}).body).toContain('data-testid="ccpa-delete"');
    expect(render(Audit, {}).body).toContain("Export CSV to drive");
  });
});
