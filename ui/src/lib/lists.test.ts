import { describe, expect, it } from "vitest";
import { appendUnique, compareRows } from "./lists";

describe("appendUnique", () => {
  it("keeps order and drops repeats", () => {
    const a = [{ id: 1 }, { id: 2 }];
    expect(appendUnique(a, [{ id: 2 }, { id: 3 }, { id: 3 }], (x) => x.id)).toEqual([
      { id: 1 },
      { id: 2 },
      { id: 3 },
    ]);
  });
});

describe("compareRows", () => {
  it("lists every table and flags differences", () => {
    expect(compareRows({ tickets: 10, customers: 5 }, { tickets: 12, customers: 5, shops: 1 })).toEqual([
      { table: "customers", backup: 5, live: 5, differs: false },
      { table: "shops", backup: null, live: 1, differs: true },
      { table: "tickets", backup: 10, live: 12, differs: true },
    ]);
  });
});
