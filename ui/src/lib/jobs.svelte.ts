// Jobs this app knows about, by id: seeded from `running_jobs()` at start (so progress
// survives an app restart) and updated from "job" events. Screens read it, so a progress
// bar survives navigating away and back.

import type { Job } from "./bindings";
import * as api from "./api";
import { timeRemaining } from "./format";

export type TrackedJob = {
  job: Job;
  /** When this app first saw the job (ms, this computer's clock). */
  firstSeen: number;
  /** bytes_done when first seen: the pace is measured from there. */
  firstBytes: number;
  /** When the job last changed here (ms). */
  updatedAt: number;
};

export function isFinished(j: Job): boolean {
  return j.state === "succeeded" || j.state === "failed";
}

type FinishedHandler = (job: Job) => void;

/** How long a job may go without news before it is asked for (ms). */
const STALE_MS = 5000;
const POLL_MS = 3000;

/** A number field of a job's result, e.g. `resultId(job, "backup_id")`. */
export function resultId(job: Job, key: string): number | null {
  const r: unknown = job.result;
  if (typeof r !== "object" || r === null || Array.isArray(r)) return null;
  const v = (r as Record<string, unknown>)[key];
  return typeof v === "number" ? v : null;
}

class JobStore {
  byId = $state<Record<number, TrackedJob>>({});
  #finished = new Set<FinishedHandler>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #unlisten: api.Unlisten | null = null;

  /** Every known job, newest first. */
  all = $derived(
    Object.values(this.byId).sort(
      (a, b) => b.firstSeen - a.firstSeen || b.job.id - a.job.id,
    ),
  );

  /** Jobs still queued or running, newest first. */
  active = $derived(this.all.filter((t) => !isFinished(t.job)));

  /** Records a job (from an event, a command's answer or a poll). */
  update(job: Job, now: number = Date.now()): void {
    const known = this.byId[job.id];
    if (known) {
      // A late progress event must not bring a finished job back to life.
      if (isFinished(known.job) && !isFinished(job)) return;
      const wasFinished = isFinished(known.job);
      this.byId[job.id] = { ...known, job, updatedAt: now };
      if (!wasFinished && isFinished(job)) this.#emitFinished(job);
    } else {
      this.byId[job.id] = { job, firstSeen: now, firstBytes: job.bytes_done, updatedAt: now };
      if (isFinished(job)) this.#emitFinished(job);
    }
  }

  get(id: number): TrackedJob | null {
    return this.byId[id] ?? null;
  }

  /** The newest job of a kind (running ones first), or null. */
  latest(kind: string): TrackedJob | null {
    return (
      this.active.find((t) => t.job.kind === kind) ??
      this.all.find((t) => t.job.kind === kind) ??
      null
    );
  }

  /** Whether a job of this kind is queued or running. */
  isRunning(kind: string): boolean {
    return this.active.some((t) => t.job.kind === kind);
  }

  /** "about 2 minutes left", or null when it cannot be told yet. */
  remaining(id: number, now: number = Date.now()): string | null {
    const t = this.byId[id];
    if (!t || isFinished(t.job)) return null;
    const done = t.job.bytes_done - t.firstBytes;
    const total = t.job.bytes_total - t.firstBytes;
    return timeRemaining(done, total, (now - t.firstSeen) / 1000);
  }

  /** Calls `handler` whenever a job finishes; returns the way to stop. */
  onFinished(handler: FinishedHandler): () => void {
    this.#finished.add(handler);
    return () => this.#finished.delete(handler);
  }

  #emitFinished(job: Job): void {
    for (const h of [...this.#finished]) {
      try {
        h(job);
      } catch {
        // One screen's mistake must not stop the others from hearing about it.
      }
    }
  }

  /** Seeds from the server and follows events until `stop()`. */
  async start(): Promise<void> {
    this.stop();
    const unlisten = await api.onJob((j) => this.update(j));
    this.#unlisten = unlisten;
    this.#timer = setInterval(() => void this.#poll(), POLL_MS);
    await this.refresh();
  }

  /** Asks the server which jobs are running now. */
  async refresh(): Promise<void> {
    try {
      const running = await api.runningJobs();
      for (const j of running) this.update(j);
    } catch {
      // Offline: keep what we know.
    }
  }

  stop(): void {
    if (this.#unlisten) this.#unlisten();
    this.#unlisten = null;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Forgets every job (on sign-out). */
  clear(): void {
    this.byId = {};
  }

  /** Jobs without news for a while are asked for, in case an event was missed. */
  async #poll(): Promise<void> {
    const now = Date.now();
    const stale = this.active.filter((t) => now - t.updatedAt > STALE_MS);
    for (const t of stale) {
      try {
        this.update(await api.job(t.job.id));
      } catch (e) {
        if (api.errorKind(e) === "not_found") {
          this.update({ ...t.job, state: "failed", error: "This job is no longer known." });
        } else {
          // Offline or busy: try again on the next round.
          this.byId[t.job.id] = { ...t, updatedAt: now };
        }
      }
    }
  }
}

export const jobs = new JobStore();

/** A friendly name for a job kind. */
export function jobLabel(kind: string): string {
  switch (kind) {
    case "backup":
      return "Backup";
    case "restore":
      return "Restore";
    case "record_restore":
      return "Record restore";
    case "sandbox":
      return "Sandbox";
    case "drill":
      return "Restore drill";
    case "export":
      return "Export";
    case "prune":
      return "Removing old backups";
    case "copy":
      return "Copy to second location";
    case "key_rotation":
      return "Key rotation";
    default:
      return kind.replace(/_/g, " ");
  }
}

/** A friendly name for a job phase. */
export function phaseLabel(phase: string | null): string {
  switch (phase) {
    case null:
      return "";
    case "safety_backup":
      return "Taking a safety backup";
    case "fetching":
      return "Fetching the backup";
    case "checking":
      return "Checking the data";
    case "reapplying_deletions":
      return "Removing again customers deleted since the backup";
    case "swapping":
      return "Switching to the restored data";
    case "done":
      return "Done";
    default:
      return phase.charAt(0).toUpperCase() + phase.slice(1).replace(/_/g, " ");
  }
}
