// Small list helpers for paged lists.

/** `list` followed by the items of `more` whose key is not in `list` yet. */
export function appendUnique<T, K>(list: readonly T[], more: readonly T[], key: (item: T) => K): T[] {
  const seen = new Set(list.map(key));
  const out = [...list];
  for (const item of more) {
    const k = key(item);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(item);
    }
  }
  return out;
}

/** Rows per table of two summaries side by side, every table of either, sorted by name. */
export function compareRows(
  backup: { [key in string]?: number },
  live: { [key in string]?: number },
): { table: string; backup: number | null; live: number | null; differs: boolean }[] {
  const tables = [...new Set([...Object.keys(backup), ...Object.keys(live)])].sort();
  return tables.map((table) => {
    const b = backup[table] ?? null;
    const l = live[table] ?? null;
    return { table, backup: b, live: l, differs: b !== l };
  });
}
