import { describe, expect, it } from "vitest";
import type { Role } from "./bindings";
import { can, roleLabel, type Action } from "./roles";

const table: Record<Action, Record<Role, boolean>> = {
  viewBackups: { owner: true, manager: true, technician: true, front_desk: false },
  runBackups: { owner: true, manager: true, technician: false, front_desk: false },
  exports: { owner: true, manager: true, technician: false, front_desk: false },
  notificationSettings: { owner: true, manager: true, technician: false, front_desk: false },
  accountSettings: { owner: true, manager: false, technician: false, front_desk: false },
};

describe("can", () => {
  for (const [action, byRole] of Object.entries(table) as [Action, Record<Role, boolean>][]) {
    for (const [role, allowed] of Object.entries(byRole) as [Role, boolean][]) {
      it(`${role} ${allowed ? "may" : "may not"} ${action}`, () => {
        expect(can(role, action)).toBe(allowed);
      });
    }
  }
  it("gives nothing without a role", () => {
    expect(can(null, "viewBackups")).toBe(false);
    expect(can(undefined, "viewBackups")).toBe(false);
    expect(can("admin" as Role, "viewBackups")).toBe(false);
  });
  it("labels roles", () => {
    expect(roleLabel("front_desk")).toBe("Front desk");
    expect(roleLabel("owner")).toBe("Owner");
  });
});
