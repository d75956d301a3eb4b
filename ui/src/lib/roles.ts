// What the UI offers to each role. It mirrors the server's rules
// (crates/server/src/auth.rs); the server enforces them anyway.

import type { Role } from "./bindings";

export type Action =
  /** Dashboard, backups list, status. */
  | "viewBackups"
  /** Back up now, delete a backup, verify, sandboxes, restores, record restores. */
  | "runBackups"
  /** Exports, compliance requests and the audit log. */
  | "exports"
  /** Email notification settings. */
  | "notificationSettings"
  /** Timezone, admin email and key rotation. */
  | "accountSettings";

const RULES: Record<Action, readonly Role[]> = {
  viewBackups: ["owner", "manager", "technician"],
  runBackups: ["owner", "manager"],
  exports: ["owner", "manager"],
  notificationSettings: ["owner", "manager"],
  accountSettings: ["owner"],
};

/** Whether `role` may do `action`. An unknown or missing role may do nothing. */
export function can(role: Role | null | undefined, action: Action): boolean {
  if (!role) return false;
  return RULES[action].includes(role);
}

/** How a role reads in the UI. */
export function roleLabel(role: Role): string {
  switch (role) {
    case "owner":
      return "Owner";
    case "manager":
      return "Manager";
    case "technician":
      return "Technician";
    case "front_desk":
      return "Front desk";
  }
}
