import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
const listen = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: (...a: unknown[]) => listen(...a) }));

import * as api from "./api";
import { ApiError, GENERIC_MESSAGE, errorKind, errorMessage, toApiError } from "./api";

beforeEach(() => {
  invoke.mockReset();
  listen.mockReset();
  api.onSignedOut(null);
});

describe("error conversion", () => {
  it("keeps a UiError's message and kind", () => {
    const e = toApiError({ kind: "busy", message: "A backup is already running.", details: null });
    expect(e).toBeInstanceOf(ApiError);
    expect(e.message).toBe("A backup is already running.");
    expect(e.kind).toBe("busy");
  });
  it("keeps a conflict's details", () => {
    const details = [{ table: "tickets", id: 4, live_updated_at: null, backup_updated_at: null }];
    const e = toApiError({ kind: "conflict", message: "Would overwrite.", details });
    expect(e.details).toEqual(details);
  });
  it("uses a plain string as the message", () => {
    expect(errorMessage("The server cannot be reached.")).toBe("The server cannot be reached.");
    expect(errorKind("The server cannot be reached.")).toBe("failed");
  });
  it("never shows JSON, stacks or nothing", () => {
    expect(errorMessage('{"error":{"code":"x"}}')).toBe(GENERIC_MESSAGE);
    expect(errorMessage({ kind: "failed", message: '{"a":1}', details: null })).toBe(GENERIC_MESSAGE);
    expect(errorMessage("")).toBe(GENERIC_MESSAGE);
    expect(errorMessage(undefined)).toBe(GENERIC_MESSAGE);
    expect(errorMessage(null)).toBe(GENERIC_MESSAGE);
    expect(errorMessage(42)).toBe(GENERIC_MESSAGE);
    expect(errorMessage({ code: 500 })).toBe(GENERIC_MESSAGE);
    expect(errorMessage(new TypeError("window.__TAURI_INTERNALS__ is undefined"))).toBe(GENERIC_MESSAGE);
  });
  it("maps an unknown kind to failed", () => {
    expect(errorKind({ kind: "weird", message: "Hm." })).toBe("failed");
    expect(errorKind({ kind: "offline", message: "Offline." })).toBe("offline");
  });
  it("passes an ApiError through", () => {
    const e = new ApiError("forbidden", "Not for your role.");
    expect(toApiError(e)).toBe(e);
    expect(errorMessage(e)).toBe("Not for your role.");
  });
});

describe("commands", () => {
  it("send snake_case arguments", async () => {
    invoke.mockResolvedValueOnce({ id: 1 });
    await api.createSandbox(3);
    expect(invoke).toHaveBeenCalledWith("create_sandbox", { backup_id: 3 });
    invoke.mockResolvedValueOnce({ url: "u", ca_sha256: "ab", trusted: false });
    await api.checkServer("https://127.0.0.1:8443");
    expect(invoke).toHaveBeenLastCalledWith("check_server", { url: "https://127.0.0.1:8443" });
    invoke.mockResolvedValueOnce(null);
    await api.signIn("u", "ab", "a@b.c", "pw");
    expect(invoke).toHaveBeenLastCalledWith("sign_in", {
      url: "u",
      ca_sha256: "ab",
      email: "a@b.c",
      password: "pw",
    });
    invoke.mockResolvedValueOnce({ items: [], next: null });
    const filter = { kind: null, from: null, to: null, cursor: "c2" };
    await api.backups(filter);
    expect(invoke).toHaveBeenLastCalledWith("backups", { filter });
    invoke.mockResolvedValueOnce(null);
    await api.saveExport(7);
    expect(invoke).toHaveBeenLastCalledWith("save_export", { export_id: 7 });
  });

  it("reject with a readable ApiError", async () => {
    invoke.mockRejectedValueOnce({ kind: "read_only", message: "A restore is running.", details: null });
    await expect(api.backUpNow()).rejects.toMatchObject({
      name: "ApiError",
      kind: "read_only",
      message: "A restore is running.",
    });
    invoke.mockRejectedValueOnce("plain words");
    await expect(api.overview()).rejects.toMatchObject({ message: "plain words", kind: "failed" });
    invoke.mockRejectedValueOnce(new Error("internal stack"));
    await expect(api.overview()).rejects.toMatchObject({ message: GENERIC_MESSAGE });
  });

  it("report a lost session", async () => {
    const handler = vi.fn();
    api.onSignedOut(handler);
    invoke.mockRejectedValueOnce({ kind: "signed_out", message: "Please sign in again.", details: null });
    await expect(api.overview()).rejects.toBeInstanceOf(ApiError);
    expect(handler).toHaveBeenCalledTimes(1);
  });
});

describe("events", () => {
  it("hand over the payload", async () => {
    const unlisten = vi.fn();
    let captured: ((e: { payload: unknown }) => void) | null = null;
    listen.mockImplementationOnce(async (_name: string, cb: (e: { payload: unknown }) => void) => {
      captured = cb;
      return unlisten;
    });
    const seen: string[] = [];
    const stop = await api.onNavigate((s) => seen.push(s));
    expect(listen).toHaveBeenCalledWith("navigate", expect.any(Function));
    captured!({ payload: "restore" });
    expect(seen).toEqual(["restore"]);
    stop();
    expect(unlisten).toHaveBeenCalled();
  });
  it("do nothing outside the desktop shell", async () => {
    listen.mockRejectedValueOnce(new TypeError("no tauri"));
    const stop = await api.onJob(() => {});
    expect(() => stop()).not.toThrow();
  });
});
