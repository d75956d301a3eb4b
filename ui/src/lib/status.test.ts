import { describe, expect, it } from "vitest";
import type { Backup, BackupStatus, Job, Overview } from "./bindings";
import { healthSummary, latestFinished, overallHealth } from "./status";

const NOW = Date.parse("2026-03-10T12:00:00Z");
const minutesAgo = (m: number) => new Date(NOW - m * 60_000).toISOString();

function backup(id: number, over: Partial<Backup> = {}): Backup {
  return {
    id,
    kind: "scheduled",
    state: "succeeded",
    started_at: minutesAgo(10),
    finished_at: minutesAgo(4),
    duration_ms: 360_000,
    size_bytes: 1_000_000,
    added_bytes: 10_000,
    summary: null,
    locations: [],
    error: null,
    warnings: [],
    ...over,
  };
}

function status(over: Partial<BackupStatus> = {}): BackupStatus {
  const last = backup(1);
  return {
    last,
    next: { shop_time: "2026-03-11T02:00:00-06:00", utc: "2026-03-11T08:00:00Z", timezone: "America/Chicago" },
    history: [last],
    errors: [],
    warnings: [],
    last_drill: null,
    ...over,
  };
}

function overview(over: Partial<Overview> = {}): Overview {
  return {
    online: true,
    offline_reason: null,
    as_of: minutesAgo(0),
    account: null,
    status: status(),
    storage: [
      { name: "primary", url: "/srv/a", reachable: true, error: null, last_success: minutesAgo(4) },
      { name: "secondary", url: "s3://b/p", reachable: true, error: null, last_success: minutesAgo(4) },
    ],
    running: [],
    ...over,
  };
}

function job(over: Partial<Job> = {}): Job {
  return {
    id: 9,
    kind: "backup",
    state: "running",
    phase: null,
    bytes_done: 10,
    bytes_total: 100,
    result: null,
    error: null,
    created_at: minutesAgo(1),
    finished_at: null,
    ...over,
  };
}

const opts = { now: NOW };

describe("overallHealth", () => {
  it("is healthy after a recent good backup", () => {
    expect(overallHealth(overview(), opts)).toBe("healthy");
    expect(healthSummary(overview(), opts)).toBe("Last backup 4 minutes ago");
  });

  it("is offline first of all", () => {
    const o = overview({ online: false, status: status({ errors: ["boom"] }), as_of: minutesAgo(120) });
    expect(overallHealth(o, opts)).toBe("offline");
    expect(healthSummary(o, opts)).toBe(
      "Offline. Last known status from 2 hours ago; last backup 4 minutes ago",
    );
  });

  it("fails when the newest finished backup failed", () => {
    const failed = backup(2, { state: "failed", finished_at: minutesAgo(30), error: "disk full" });
    const running = backup(3, { state: "running", finished_at: null });
    const o = overview({ status: status({ history: [running, failed, backup(1)] }) });
    expect(latestFinished(o.status!.history)?.id).toBe(2);
    expect(overallHealth(o, opts)).toBe("failed");
    expect(healthSummary(o, opts)).toBe("Last backup failed 30 minutes ago");
  });

  it("is not failed when an older backup failed but the newest succeeded", () => {
    const o = overview({ status: status({ history: [backup(3), backup(2, { state: "failed" })] }) });
    expect(overallHealth(o, opts)).toBe("healthy");
  });

  it("fails on status errors", () => {
    const o = overview({ status: status({ errors: ["The secondary copy failed."] }) });
    expect(overallHealth(o, opts)).toBe("failed");
    expect(healthSummary(o, opts)).toBe("The secondary copy failed.");
  });

  it("fails when a storage location is unreachable", () => {
    const o = overview();
    o.storage[1] = { ...o.storage[1], reachable: false, error: "timeout" };
    expect(overallHealth(o, opts)).toBe("failed");
    expect(healthSummary(o, opts)).toBe("The secondary backup location cannot be reached");
  });

  it("is running while a backup job runs", () => {
    expect(overallHealth(overview({ running: [job()] }), opts)).toBe("running");
    expect(overallHealth(overview({ running: [job({ state: "queued" })] }), opts)).toBe("running");
    expect(overallHealth(overview({ running: [job({ kind: "export" })] }), opts)).toBe("healthy");
    expect(overallHealth(overview(), { ...opts, running: [job()] })).toBe("running");
    expect(healthSummary(overview({ running: [job()] }), opts)).toBe(
      "Backing up now. Last backup 4 minutes ago",
    );
  });

  it("prefers failed over running", () => {
    const o = overview({ running: [job()], status: status({ errors: ["x"] }) });
    expect(overallHealth(o, opts)).toBe("failed");
  });

  it("warns on warnings", () => {
    const o = overview({ status: status({ warnings: ["Data passed 500 MB."] }) });
    expect(overallHealth(o, opts)).toBe("warning");
    expect(healthSummary(o, opts)).toBe("Last backup 4 minutes ago, with warnings");
  });

  it("warns when the last good backup is older than 26 hours", () => {
    const old = backup(1, { finished_at: minutesAgo(26 * 60 + 1) });
    const o = overview({ status: status({ last: old, history: [old] }) });
    expect(overallHealth(o, opts)).toBe("warning");
    expect(healthSummary(o, opts)).toBe("Last backup 1 day ago: later than expected");
    const fresh = backup(1, { finished_at: minutesAgo(25 * 60) });
    expect(overallHealth(overview({ status: status({ last: fresh, history: [fresh] }) }), opts)).toBe(
      "healthy",
    );
  });

  it("warns when there is no backup or no status", () => {
    const o = overview({ status: status({ last: null, history: [] }) });
    expect(overallHealth(o, opts)).toBe("warning");
    expect(healthSummary(o, opts)).toBe("No backup yet");
    expect(overallHealth(overview({ status: null }), opts)).toBe("warning");
  });
});
