import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Job } from "./bindings";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: async () => () => {} }));

import { jobs, resultId } from "./jobs.svelte";

function job(over: Partial<Job> = {}): Job {
  return {
    id: 1,
    kind: "backup",
    state: "running",
    phase: null,
    bytes_done: 0,
    bytes_total: 1000,
    result: null,
    error: null,
    created_at: "2026-03-10T12:00:00Z",
    finished_at: null,
    ...over,
  };
}

beforeEach(() => {
  jobs.stop();
  jobs.clear();
  invoke.mockReset();
});

describe("jobs store", () => {
  it("tracks jobs by id and tells the newest of a kind", () => {
    jobs.update(job({ id: 1 }), 1000);
    jobs.update(job({ id: 2, kind: "export" }), 2000);
    expect(jobs.get(1)?.job.state).toBe("running");
    expect(jobs.latest("backup")?.job.id).toBe(1);
    expect(jobs.isRunning("backup")).toBe(true);
    expect(jobs.isRunning("restore")).toBe(false);
    expect(jobs.active.map((t) => t.job.id)).toEqual([2, 1]);
  });

  it("does not bring a finished job back with a late progress event", () => {
    const seen: number[] = [];
    const stop = jobs.onFinished((j) => seen.push(j.id));
    jobs.update(job({ id: 5 }), 0);
    jobs.update(job({ id: 5, state: "succeeded", bytes_done: 1000 }), 10);
    jobs.update(job({ id: 5, state: "running", bytes_done: 500 }), 20);
    expect(jobs.get(5)?.job.state).toBe("succeeded");
    expect(seen).toEqual([5]);
    jobs.update(job({ id: 5, state: "succeeded" }), 30);
    expect(seen).toEqual([5]);
    stop();
    expect(jobs.isRunning("backup")).toBe(false);
    expect(jobs.latest("backup")?.job.id).toBe(5);
  });

  it("estimates time left from what it saw since it first saw the job", () => {
    jobs.update(job({ id: 7, bytes_done: 200 }), 0);
    jobs.update(job({ id: 7, bytes_done: 400 }), 60_000);
    // 200 bytes a minute, 600 left -> 3 minutes
    expect(jobs.remaining(7, 60_000)).toBe("about 3 minutes left");
    expect(jobs.remaining(99, 60_000)).toBeNull();
  });

  it("is seeded from running_jobs() at start", async () => {
    invoke.mockImplementation(async (cmd: string) => (cmd === "running_jobs" ? [job({ id: 11 })] : null));
    await jobs.start();
    expect(invoke).toHaveBeenCalledWith("running_jobs", undefined);
    expect(jobs.get(11)?.job.id).toBe(11);
    jobs.stop();
  });

  it("reads numbers out of a job's result", () => {
    expect(resultId(job({ result: { backup_id: 4 } }), "backup_id")).toBe(4);
    expect(resultId(job({ result: { backup_id: "4" } }), "backup_id")).toBeNull();
    expect(resultId(job({ result: null }), "backup_id")).toBeNull();
  });
});
