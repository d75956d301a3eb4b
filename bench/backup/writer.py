"""A shop that keeps working during a backup: inserts a ticket and a note per
transaction into live.db as fast as it can, and on SIGTERM prints how long its writes
took (max and p99, milliseconds), how many it made, and how often it found the
database locked."""
import signal
import sqlite3
import sys
import time

db = sys.argv[1]
conn = sqlite3.connect(db, timeout=30, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
latencies = []
busy = 0
running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
n = 0
while running:
    n += 1
    start = time.perf_counter()
    try:
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "INSERT INTO tickets (shop_id, customer_id, device_make, device_model, problem, status, created_at, updated_at)"
            " VALUES (1, 1, 'Bench', ?, 'writer during backup', 'New', '2026-11-30T00:00:00Z', '2026-11-30T00:00:00Z')",
            (f"W{n}",),
        )
        conn.execute(
            "INSERT INTO ticket_notes (ticket_id, body, created_at, updated_at) VALUES (?, 'note', 'x', 'x')",
            (cur.lastrowid,),
        )
        conn.execute("COMMIT")
    except sqlite3.OperationalError:
        busy += 1
        conn.execute("ROLLBACK")
    latencies.append((time.perf_counter() - start) * 1000)
    time.sleep(0.002)
latencies.sort()
p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0
print(f"writes={len(latencies)} busy={busy} max_ms={latencies[-1] if latencies else 0:.1f} p99_ms={p99:.1f}")
