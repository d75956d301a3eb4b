import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: async () => () => {} }));

import { Action } from "./action.svelte";

describe("Action", () => {
  it("is running while its work runs and returns the work's result", async () => {
    let finish: (v: number) => void = () => {};
    const action = new Action((n: number) => new Promise<number>((resolve) => (finish = (v) => resolve(v + n))));
    const done = action.run(1);
    expect(action.running).toBe(true);
    finish(41);
    expect(await done).toBe(42);
    expect(action.running).toBe(false);
    expect(action.error).toBeNull();
  });

  it("turns a failure into a message and clears it on the next run", async () => {
    let fail = true;
    const action = new Action(async () => {
      if (fail) throw { kind: "unreachable", message: "The server at https://shop.example did not answer." };
      return "ok";
    });
    expect(await action.run()).toBeUndefined();
    expect(action.error).toBe("The server at https://shop.example did not answer.");
    expect(action.running).toBe(false);
    fail = false;
    const again = action.run();
    expect(action.error).toBeNull();
    expect(await again).toBe("ok");
  });

  it("shows a form's own complaint without running", async () => {
    const work = vi.fn(async () => {});
    const action = new Action(work);
    action.fail("From must be a date such as 2026-11-30.");
    expect(action.error).toBe("From must be a date such as 2026-11-30.");
    expect(work).not.toHaveBeenCalled();
  });
});
