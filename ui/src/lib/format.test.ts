import { describe, expect, it } from "vitest";
import {
  blankToNull,
  dateError,
  dateRangeError,
  formatBytes,
  formatCount,
  formatDuration,
  formatPercent,
  formatShopTime,
  isIsoDate,
  percent,
  relativeTime,
  shopTimeOffsetMinutes,
  shortHash,
  timeRemaining,
} from "./format";

describe("formatBytes", () => {
  it("uses decimal units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1000)).toBe("1 kB");
    expect(formatBytes(1_234_567)).toBe("1.2 MB");
    expect(formatBytes(12_345_678)).toBe("12.3 MB");
    expect(formatBytes(523_000_000)).toBe("523 MB");
    expect(formatBytes(2_500_000_000)).toBe("2.5 GB");
    expect(formatBytes(3e12)).toBe("3 TB");
  });
  it("never prints 1000 of a unit", () => {
    expect(formatBytes(999_960)).toBe("1 MB");
  });
  it("shows a dash for unknown sizes", () => {
    expect(formatBytes(null)).toBe("–");
    expect(formatBytes(undefined)).toBe("–");
    expect(formatBytes(-1)).toBe("–");
    expect(formatBytes(Number.NaN)).toBe("–");
  });
});

describe("formatDuration", () => {
  it("reads like speech", () => {
    expect(formatDuration(125_000)).toBe("2 min 5 s");
    expect(formatDuration(120_000)).toBe("2 min");
    expect(formatDuration(45_000)).toBe("45 s");
    expect(formatDuration(500)).toBe("less than 1 s");
    expect(formatDuration(3_900_000)).toBe("1 h 5 min");
    expect(formatDuration(3_600_000)).toBe("1 h");
    expect(formatDuration(2 * 86_400_000 + 3 * 3_600_000)).toBe("2 d 3 h");
  });
  it("rounds to whole seconds", () => {
    expect(formatDuration(59_600)).toBe("1 min");
  });
  it("shows a dash for unknown durations", () => {
    expect(formatDuration(null)).toBe("–");
  });
});

describe("relativeTime", () => {
  const now = Date.parse("2026-03-10T12:00:00Z");
  it("says just now for a few seconds either way", () => {
    expect(relativeTime("2026-03-10T11:59:30Z", now)).toBe("just now");
    expect(relativeTime("2026-03-10T12:00:20Z", now)).toBe("just now");
  });
  it("counts minutes, hours and days in the past", () => {
    expect(relativeTime("2026-03-10T11:56:00Z", now)).toBe("4 minutes ago");
    expect(relativeTime("2026-03-10T11:59:00Z", now)).toBe("1 minute ago");
    expect(relativeTime("2026-03-10T09:00:00Z", now)).toBe("3 hours ago");
    expect(relativeTime("2026-03-09T12:00:00Z", now)).toBe("1 day ago");
    expect(relativeTime("2026-03-01T12:00:00Z", now)).toBe("9 days ago");
  });
  it("counts into the future", () => {
    expect(relativeTime("2026-03-10T15:00:00Z", now)).toBe("in 3 hours");
    expect(relativeTime("2026-03-16T12:00:00Z", now)).toBe("in 6 days");
    expect(relativeTime("2026-03-10T12:01:00Z", now)).toBe("in 1 minute");
  });
  it("handles months, years, dates and numbers", () => {
    expect(relativeTime("2025-12-10T12:00:00Z", now)).toBe("3 months ago");
    expect(relativeTime("2024-03-10T12:00:00Z", now)).toBe("2 years ago");
    expect(relativeTime(new Date(now - 7_200_000), now)).toBe("2 hours ago");
    expect(relativeTime(now - 600_000, now)).toBe("10 minutes ago");
  });
  it("copes with nothing or nonsense", () => {
    expect(relativeTime(null, now)).toBe("never");
    expect(relativeTime("not a date", now)).toBe("at an unknown time");
  });
});

describe("timeRemaining", () => {
  it("estimates from the pace so far", () => {
    // 25% in 40 s -> 120 s left
    expect(timeRemaining(250, 1000, 40)).toBe("about 2 minutes left");
    expect(timeRemaining(500, 1000, 30)).toBe("less than a minute left");
    expect(timeRemaining(100, 1000, 60)).toBe("about 9 minutes left");
    expect(timeRemaining(1, 1000, 60)).toBe("about 17 hours left");
    expect(timeRemaining(1, 1000, 600)).toBe("about 7 days left");
  });
  it("says 1 minute, not 1 minutes", () => {
    expect(timeRemaining(500, 1000, 60)).toBe("about 1 minute left");
  });
  it("is null when it cannot be told", () => {
    expect(timeRemaining(0, 1000, 60)).toBeNull();
    expect(timeRemaining(100, 0, 60)).toBeNull();
    expect(timeRemaining(100, 1000, 0)).toBeNull();
    expect(timeRemaining(100, 1000, 1)).toBeNull();
    expect(timeRemaining(Number.NaN, 1000, 10)).toBeNull();
  });
  it("is almost done at the end", () => {
    expect(timeRemaining(1000, 1000, 60)).toBe("almost done");
  });
});

describe("percent", () => {
  it("is a whole number from 0 to 100", () => {
    expect(percent(1, 3)).toBe(33);
    expect(percent(0, 10)).toBe(0);
    expect(percent(10, 10)).toBe(100);
    expect(percent(20, 10)).toBe(100);
    expect(percent(5, 0)).toBe(0);
    expect(formatPercent(999, 1000)).toBe("99%");
  });
});

describe("formatShopTime", () => {
  it("shows the shop's wall clock and zone without converting", () => {
    expect(formatShopTime("2026-12-01T02:00:00-06:00", "America/Chicago")).toBe(
      "Tue 1 Dec, 02:00 (America/Chicago)",
    );
    expect(formatShopTime("2026-07-04T02:00:00+02:00", "Europe/Paris")).toBe(
      "Sat 4 Jul, 02:00 (Europe/Paris)",
    );
    expect(formatShopTime("2026-01-01T23:30:00.000Z", "UTC")).toBe("Thu 1 Jan, 23:30 (UTC)");
    expect(formatShopTime("2026-03-08T02:00:00+0530", "Asia/Kolkata")).toBe(
      "Sun 8 Mar, 02:00 (Asia/Kolkata)",
    );
  });
  it("leaves out an empty zone", () => {
    expect(formatShopTime("2026-12-01T02:00:00-06:00", null)).toBe("Tue 1 Dec, 02:00");
  });
  it("falls back to the text it was given", () => {
    expect(formatShopTime("tomorrow", "America/Chicago")).toBe("tomorrow (America/Chicago)");
    expect(formatShopTime("2026-02-30T02:00:00-06:00", "X")).toBe("2026-02-30T02:00:00-06:00 (X)");
  });
  it("reads the offset", () => {
    expect(shopTimeOffsetMinutes("2026-12-01T02:00:00-06:00")).toBe(-360);
    expect(shopTimeOffsetMinutes("2026-12-01T02:00:00+05:30")).toBe(330);
    expect(shopTimeOffsetMinutes("2026-12-01T02:00:00Z")).toBe(0);
    expect(shopTimeOffsetMinutes("2026-12-01T02:00:00")).toBeNull();
    expect(shopTimeOffsetMinutes("nope")).toBeNull();
  });
});

describe("dates", () => {
  it("accepts real YYYY-MM-DD dates only", () => {
    expect(isIsoDate("2026-03-31")).toBe(true);
    expect(isIsoDate("2024-02-29")).toBe(true);
    expect(isIsoDate("2026-02-29")).toBe(false);
    expect(isIsoDate("2026-13-01")).toBe(false);
    expect(isIsoDate("2026-3-1")).toBe(false);
    expect(isIsoDate("2026-03-31T00:00")).toBe(false);
    expect(isIsoDate("1900-01-01")).toBe(false);
    expect(isIsoDate("'; DROP")).toBe(false);
    expect(isIsoDate("")).toBe(false);
  });
  it("explains a bad field and accepts an empty one", () => {
    expect(dateError("", "From")).toBeNull();
    expect(dateError("2026-01-05", "From")).toBeNull();
    expect(dateError("05/01/2026", "From")).toMatch(/From must be a date written YYYY-MM-DD/);
  });
  it("checks the order of a range", () => {
    expect(dateRangeError("2026-01-01", "2026-01-31")).toBeNull();
    expect(dateRangeError("2026-02-01", "2026-01-31")).toBe("From must be on or before To.");
    expect(dateRangeError("", "x")).toMatch(/^To must/);
  });
  it("turns blanks into null", () => {
    expect(blankToNull("  ")).toBeNull();
    expect(blankToNull(" a ")).toBe("a");
  });
});

describe("small helpers", () => {
  it("shortens hashes and counts", () => {
    expect(shortHash("0123456789abcdef")).toBe("0123456789ab…");
    expect(shortHash("abc")).toBe("abc");
    expect(shortHash(null)).toBe("–");
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatCount(null)).toBe("–");
  });
});
