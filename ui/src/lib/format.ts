// Pure formatting helpers: numbers, times and dates as a shop manager reads them.

const BYTE_UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

function trimZero(s: string): string {
  return s.endsWith(".0") ? s.slice(0, -2) : s;
}

/** `1234567` -> `"1.2 MB"` (decimal units). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "–";
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  // 999.96 kB would print as "1000.0 kB": move to the next unit instead.
  if (Number(value.toFixed(1)) >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const text = value < 100 ? trimZero(value.toFixed(1)) : Math.round(value).toString();
  return `${text} ${BYTE_UNITS[unit]}`;
}

/** Milliseconds -> `"2 min 5 s"`, `"1 h 4 min"`, `"2 d 3 h"`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return "less than 1 s";
  const totalSeconds = Math.round(ms / 1000);
  const days = Math.floor(totalSeconds / 86400);
  const hours = Math.floor((totalSeconds % 86400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const pair = (a: number, ua: string, b: number, ub: string) =>
    b > 0 ? `${a} ${ua} ${b} ${ub}` : `${a} ${ua}`;
  if (days > 0) return pair(days, "d", hours, "h");
  if (hours > 0) return pair(hours, "h", minutes, "min");
  if (minutes > 0) return pair(minutes, "min", seconds, "s");
  return `${seconds} s`;
}

function toMillis(t: string | number | Date): number {
  if (t instanceof Date) return t.getTime();
  if (typeof t === "number") return t;
  return Date.parse(t);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `"4 minutes ago"`, `"in 3 hours"`, `"just now"`. */
export function relativeTime(
  when: string | number | Date | null | undefined,
  now: number = Date.now(),
): string {
  if (when === null || when === undefined) return "never";
  const t = toMillis(when);
  if (!Number.isFinite(t)) return "at an unknown time";
  const diff = t - now;
  const abs = Math.abs(diff);
  const s = Math.floor(abs / 1000);
  if (s < 45) return "just now";
  let text: string;
  if (s < 3600) text = plural(Math.max(1, Math.floor(s / 60)), "minute");
  else if (s < 86400) text = plural(Math.floor(s / 3600), "hour");
  else if (s < 60 * 86400) text = plural(Math.floor(s / 86400), "day");
  else if (s < 365 * 86400) text = plural(Math.floor(s / (30 * 86400)), "month");
  else text = plural(Math.floor(s / (365 * 86400)), "year");
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

/**
 * Time left for a job that did `done` of `total` bytes in `elapsedSeconds`, assuming a
 * steady pace: `"about 2 minutes left"`, or null when it cannot be told yet.
 */
export function timeRemaining(done: number, total: number, elapsedSeconds: number): string | null {
  if (!(total > 0) || !(done > 0) || !(elapsedSeconds >= 2)) return null;
  if (done >= total) return "almost done";
  const rate = done / elapsedSeconds;
  const left = (total - done) / rate;
  if (!Number.isFinite(left)) return null;
  if (left < 45) return "less than a minute left";
  if (left < 90 * 60) return `about ${plural(Math.max(1, Math.round(left / 60)), "minute")} left`;
  if (left < 48 * 3600) return `about ${plural(Math.round(left / 3600), "hour")} left`;
  return `about ${plural(Math.round(left / 86400), "day")} left`;
}

/** Whole percent of `done` in `total`, 0..100. */
export function percent(done: number, total: number): number {
  if (!(total > 0) || !(done > 0)) return 0;
  return Math.min(100, Math.max(0, Math.floor((done / total) * 100)));
}

/** `"42%"`. */
export function formatPercent(done: number, total: number): string {
  return `${percent(done, total)}%`;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const SHOP_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * The shop's wall-clock time as the server wrote it (`2026-12-01T02:00:00-06:00`), shown
 * as is, in the shop's zone: `"Tue 1 Dec, 02:00 (America/Chicago)"`. The offset is read
 * but the time is never converted to this computer's zone.
 */
export function formatShopTime(shopTime: string, timezone: string | null = null): string {
  const zone = timezone && timezone.trim() !== "" ? ` (${timezone})` : "";
  const m = SHOP_TIME.exec(shopTime.trim());
  if (!m) return `${shopTime}${zone}`;
  const [, y, mo, d, h, mi] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (!isValidDate(year, month, day) || Number(h) > 23 || Number(mi) > 59) {
    return `${shopTime}${zone}`;
  }
  const weekday = WEEKDAYS[new Date(Date.UTC(year, month - 1, day)).getUTCDay()];
  return `${weekday} ${day} ${MONTHS[month - 1]}, ${h}:${mi}${zone}`;
}

/** The UTC offset in minutes of a shop time string (`-06:00` -> -360), or null. */
export function shopTimeOffsetMinutes(shopTime: string): number | null {
  const m = SHOP_TIME.exec(shopTime.trim());
  if (!m || m[7] === undefined) return null;
  const off = m[7];
  if (off === "Z") return 0;
  const sign = off.startsWith("-") ? -1 : 1;
  const digits = off.slice(1).replace(":", "");
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4)));
}

function isValidDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const dt = new Date(Date.UTC(year, month - 1, day));
  return dt.getUTCFullYear() === year && dt.getUTCMonth() === month - 1 && dt.getUTCDate() === day;
}

/** Whether `s` is a real calendar date written `YYYY-MM-DD` (years 1970..9999). */
export function isIsoDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const year = Number(m[1]);
  if (year < 1970) return false;
  return isValidDate(year, Number(m[2]), Number(m[3]));
}

/**
 * Checks an optional date field: null when it is empty or fine, otherwise a sentence.
 * `label` names the field, e.g. "From".
 */
export function dateError(s: string, label: string): string | null {
  const t = s.trim();
  if (t === "") return null;
  return isIsoDate(t) ? null : `${label} must be a date written YYYY-MM-DD, e.g. 2026-03-31.`;
}

/** Checks a from/to pair: each a date, and `from` not after `to`. */
export function dateRangeError(from: string, to: string): string | null {
  const e = dateError(from, "From") ?? dateError(to, "To");
  if (e) return e;
  if (from.trim() !== "" && to.trim() !== "" && from.trim() > to.trim()) {
    return "From must be on or before To.";
  }
  return null;
}

/** An empty string becomes null (for optional filter fields). */
export function blankToNull(s: string): string | null {
  const t = s.trim();
  return t === "" ? null : t;
}

/** A date and time on this computer's clock, e.g. "1 Dec 2026, 02:00". */
export function formatDateTime(when: string | null | undefined): string {
  if (!when) return "–";
  const t = Date.parse(when);
  if (!Number.isFinite(t)) return when;
  return new Intl.DateTimeFormat(undefined, {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  }).format(new Date(t));
}

/** A short date for chart axes, e.g. "1 Dec". */
export function formatShortDate(t: number): string {
  const d = new Date(t);
  return `${d.getDate()} ${MONTHS[d.getMonth()]}`;
}

/** The first characters of a hex checksum, enough to compare by eye. */
export function shortHash(sha: string | null | undefined, length = 12): string {
  if (!sha) return "–";
  return sha.length > length ? `${sha.slice(0, length)}…` : sha;
}

/** `"1,234"`. */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  return Math.round(n).toLocaleString("en-US");
}

/** A snake_case word for people: `front_desk` -> `front desk`. */
export function humanize(s: string): string {
  return s.replace(/_/g, " ");
}
