// The dashboard's overall health, derived from an Overview.

import type { Backup, Job, Overview } from "./bindings";
import { relativeTime } from "./format";

export type Health = "healthy" | "running" | "warning" | "failed" | "offline";

/** A successful backup older than this is late. */
export const STALE_AFTER_MS = 26 * 3600 * 1000;

export type HealthOptions = {
  now?: number;
  /** Jobs known to be running besides `overview.running` (e.g. from live events). */
  running?: readonly Job[];
};

function isActive(j: Job): boolean {
  return j.state === "running" || j.state === "queued";
}

/** The newest backup of the history that has finished (succeeded or failed). */
export function latestFinished(history: readonly Backup[]): Backup | null {
  return history.find((b) => b.state === "succeeded" || b.state === "failed") ?? null;
}

/** When a backup finished, or started when it has no finish time. */
export function backupTime(b: Backup): string {
  return b.finished_at ?? b.started_at;
}

export function backupRunning(o: Overview, extra: readonly Job[] = []): boolean {
  return [...o.running, ...extra].some((j) => j.kind === "backup" && isActive(j));
}

export function overallHealth(o: Overview, opts: HealthOptions = {}): Health {
  const now = opts.now ?? Date.now();
  if (!o.online) return "offline";
  const status = o.status;
  const latest = status ? latestFinished(status.history) : null;
  if (
    (latest !== null && latest.state === "failed") ||
    (status !== null && status.errors.length > 0) ||
    o.storage.some((s) => !s.reachable)
  ) {
    return "failed";
  }
  if (backupRunning(o, opts.running)) return "running";
  if (status === null || status.warnings.length > 0 || status.last === null) return "warning";
  const lastAt = Date.parse(backupTime(status.last));
  if (!Number.isFinite(lastAt) || now - lastAt > STALE_AFTER_MS) return "warning";
  return "healthy";
}

export const HEALTH_LABEL: Record<Health, string> = {
  healthy: "Healthy",
  running: "Backing up",
  warning: "Needs attention",
  failed: "Failed",
  offline: "Offline",
};

/** One line under the badge, e.g. "Last backup 4 minutes ago". */
export function healthSummary(o: Overview, opts: HealthOptions = {}): string {
  const now = opts.now ?? Date.now();
  const health = overallHealth(o, opts);
  const status = o.status;
  const last = status?.last ?? null;
  const lastLine = last ? `Last backup ${relativeTime(backupTime(last), now)}` : "No backup yet";
  switch (health) {
    case "offline":
      return o.as_of
        ? `Offline. Last known status from ${relativeTime(o.as_of, now)}; ${lastLine.charAt(0).toLowerCase()}${lastLine.slice(1)}`
        : "Offline. No status was saved yet.";
    case "failed": {
      const latest = status ? latestFinished(status.history) : null;
      if (latest && latest.state === "failed") {
        return `Last backup failed ${relativeTime(backupTime(latest), now)}`;
      }
      const down = o.storage.find((s) => !s.reachable);
      if (down) return `The ${down.name} backup location cannot be reached`;
      return status?.errors[0] ?? lastLine;
    }
    case "running":
      return `Backing up now. ${lastLine}`;
    case "warning":
      if (!status) return "No backup status yet";
      if (!last) return "No backup yet";
      if (status.warnings.length > 0) return `${lastLine}, with warnings`;
      return `${lastLine}: later than expected`;
    case "healthy":
      return lastLine;
  }
}
