#!/usr/bin/env python3
"""Deterministic repair-shop dataset for the vault backup benchmark.

    gen_shop.py generate DIR [--db-mb 300] [--attachments-mb 800] [--seed 42]
    gen_shop.py mutate   DIR [--seed 1]

`generate` writes DIR/live.db (SQLite database of a phone/computer repair
shop) and DIR/attachments/ (incompressible JPEG "photos" in ab/cd/<hex>.jpg
subfolders plus partially compressible PDF documents).  The same arguments
always produce byte-identical output.

`mutate` applies one busy shop day to an existing dataset: about 1% of the
database rows are added or changed (new tickets, notes, invoices, payments
appended; status updates on the most recent ~2% of tickets; stock levels),
~5 new photos are added and ~3 existing ones are rewritten in place.  It is
deterministic for a given dataset and --seed.

Python 3.11 standard library only.
"""

import argparse
import datetime
import heapq
import multiprocessing
import os
import random
import sqlite3
import sys
import time

MB = 1_000_000

# --------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------

FIRST_NAMES = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth
William Barbara Richard Susan Joseph Jessica Thomas Sarah Christopher Karen Charles Lisa
Daniel Nancy Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew
Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah
Timothy Stephanie Ronald Dorothy Jason Rebecca Edward Sharon Jeffrey Laura Ryan Cynthia Jacob
Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Brenda Stephen Emma Larry Anna Justin
Pamela Scott Nicole Brandon Samantha Benjamin Katherine Samuel Christine Gregory Helen
Alexander Debra Patrick Rachel Frank Carolyn Raymond Janet Jack Maria Dennis Olivia Jerry
Heather Tyler Diane Aaron Julie Jose Joyce Adam Victoria Nathan Ruth Henry Virginia Zachary
Lauren Douglas Kelly Peter Christina Kyle Joan Noah Evelyn Ethan Judith Jeremy Andrea
Christian Hannah Walter Megan Keith Cheryl Austin Jacqueline Roger Martha Terry Madison Sean
Teresa Gerald Gloria Carl Sara Dylan Janice Harold Ann Jordan Kathryn Jesse Abigail Bryan
Sophia Lawrence Frances Arthur Jean Gabriel Alice Bruce Judy Logan Isabella Billy Julia Joe
Grace Alan Amber Juan Denise Elijah Danielle Willie Marilyn Albert Beverly Wayne Charlotte
Randy Natalie Mason Theresa Vincent Diana Liam Brittany Roy Doris Bobby Kayla Caleb Alexis
Bradley Lori Russell Tiffany Lucas Wei Priya Mohammed Fatima Hiroshi Yuki Carlos Sofia Luis
Mateo Aisha Omar Leila Dmitri Olga Anh Minh Kwame Ama Ingrid Lars""".split()

LAST_NAMES = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson
White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres
Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez
Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook
Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez
Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan
Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson
Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson
Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald
Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson
Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer
Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels
Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kowalski Novak Haddad
Okafor Mensah Yamamoto Tanaka Sato Ivanov Petrov Singh Sharma Khan Ali Hassan Larsen Berg""".split()

STREETS = """Main Oak Pine Maple Cedar Elm Washington Lake Hill Walnut Park Sunset Ridge
Church Highland Jefferson Lincoln Madison Spring North South Willow Meadow River Forest Valley
Chestnut Franklin Jackson Adams Mill Center Cherry Dogwood Birch Hickory Magnolia Lakeview
Railroad Broad Market Union Prospect Bridge College Academy Orchard Harbor Front Water
Grove Summit Fairview Poplar Locust Laurel Sycamore Spruce Aspen Juniper Vine Garden""".split()
STREET_TYPES = ["St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl", "Terrace"]
CITIES = [
    ("Springfield", "62701"), ("Riverton", "82501"), ("Fairview", "97024"),
    ("Greenville", "29601"), ("Franklin", "37064"), ("Clinton", "20735"),
    ("Georgetown", "78626"), ("Salem", "97301"), ("Madison", "53703"),
    ("Oakland", "94607"), ("Arlington", "22201"), ("Ashland", "41101"),
    ("Burlington", "05401"), ("Dover", "19901"), ("Milton", "02186"),
    ("Newport", "02840"), ("Oxford", "38655"), ("Jackson", "39201"),
    ("Lexington", "40507"), ("Bristol", "06010"), ("Chester", "19013"),
    ("Manchester", "03101"), ("Marion", "46952"), ("Auburn", "36830"),
]
EMAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
                 "aol.com", "proton.me", "comcast.net", "mail.com", "live.com"]
AREA_CODES = [212, 213, 305, 312, 404, 415, 503, 512, 602, 617, 702, 713, 720, 801, 916, 206]
TECHNICIANS = ["Alex R.", "Jamie T.", "Morgan K.", "Sam P.", "Chris D.", "Taylor B.",
               "Jordan M.", "Casey L.", "Riley S.", "Devon W."]
FRONT_DESK = ["Front desk (Ana)", "Front desk (Ben)", "Front desk (Cleo)", "Front desk (Dan)"]
COLORS = ["Black", "White", "Silver", "Space Gray", "Gold", "Blue", "Midnight", "Starlight",
          "Red", "Green", "Purple", "Graphite", "Rose Gold", "Phantom Black", "Sierra Blue"]
SUPPLIERS = ["MobileSentrix", "Injured Gadgets", "iFixit Pro", "PhoneParts Direct",
             "LaptopScreen Co", "RepairDepot Wholesale"]

# (device_type, make, model, has_imei, labor_cents)
DEVICES = []
for m in ["iPhone 8", "iPhone X", "iPhone XR", "iPhone XS", "iPhone 11", "iPhone 11 Pro",
          "iPhone 12", "iPhone 12 mini", "iPhone 12 Pro", "iPhone 13", "iPhone 13 Pro",
          "iPhone 13 Pro Max", "iPhone 14", "iPhone 14 Plus", "iPhone 14 Pro", "iPhone 15",
          "iPhone 15 Pro", "iPhone 15 Pro Max", "iPhone SE (2022)"]:
    DEVICES.append(("Phone", "Apple", m, True, 4900))
for m in ["Galaxy S10", "Galaxy S20", "Galaxy S21", "Galaxy S22 Ultra", "Galaxy S23",
          "Galaxy S24", "Galaxy A12", "Galaxy A32", "Galaxy A54", "Galaxy Note 20",
          "Galaxy Z Flip 4", "Galaxy Z Fold 5"]:
    DEVICES.append(("Phone", "Samsung", m, True, 5900))
for m in ["Pixel 4a", "Pixel 5", "Pixel 6", "Pixel 6 Pro", "Pixel 7", "Pixel 7a", "Pixel 8"]:
    DEVICES.append(("Phone", "Google", m, True, 5900))
for mk, m in [("OnePlus", "9 Pro"), ("OnePlus", "Nord N20"), ("Motorola", "Moto G Power"),
              ("Motorola", "Edge 2023"), ("Xiaomi", "Redmi Note 12"), ("Nokia", "G20")]:
    DEVICES.append(("Phone", mk, m, True, 4900))
for m in ["iPad 9th gen", "iPad Air 4", "iPad Pro 11\"", "iPad mini 6"]:
    DEVICES.append(("Tablet", "Apple", m, True, 6900))
for m in ["Galaxy Tab A8", "Galaxy Tab S8"]:
    DEVICES.append(("Tablet", "Samsung", m, True, 6900))
for mk, m in [("Apple", "MacBook Air M1 13\""), ("Apple", "MacBook Air M2 13\""),
              ("Apple", "MacBook Pro 14\" M1 Pro"), ("Apple", "MacBook Pro 16\" 2019"),
              ("Dell", "XPS 13 9310"), ("Dell", "XPS 15 9520"), ("Dell", "Inspiron 15 3511"),
              ("Lenovo", "ThinkPad T14 Gen 2"), ("Lenovo", "ThinkPad X1 Carbon Gen 9"),
              ("Lenovo", "IdeaPad 3 15"), ("HP", "Pavilion 15"), ("HP", "EliteBook 840 G8"),
              ("HP", "Spectre x360 14"), ("ASUS", "ZenBook 14"), ("ASUS", "ROG Strix G15"),
              ("Acer", "Aspire 5"), ("Microsoft", "Surface Laptop 4"),
              ("Microsoft", "Surface Pro 8")]:
    DEVICES.append(("Laptop", mk, m, False, 8900))
for mk, m in [("Nintendo", "Switch"), ("Nintendo", "Switch OLED"), ("Sony", "PlayStation 5"),
              ("Microsoft", "Xbox Series X")]:
    DEVICES.append(("Console", mk, m, False, 7900))
for mk, m in [("Apple", "iMac 24\" M1"), ("Custom", "Gaming PC"), ("Dell", "OptiPlex 7090")]:
    DEVICES.append(("Desktop", mk, m, False, 9900))

# device_type -> list of (problem text, part kind or None, extra labor cents)
PROBLEMS = {
    "Phone": [
        ("cracked screen after a drop, touch still works", "Screen assembly", 0),
        ("screen shattered, lines across the display and no touch in the top half", "Screen assembly", 0),
        ("battery drains from 100% to 20% in a couple of hours", "Battery", 0),
        ("phone shuts off at 30% battery, battery health shows Service", "Battery", 0),
        ("not charging unless the cable is held at an angle", "Charging port flex", 0),
        ("dropped in the pool for a few seconds, now boot loops", None, 4000),
        ("back glass cracked, sharp edges near the camera", "Back glass", 0),
        ("rear camera is blurry and will not focus", "Rear camera", 0),
        ("front camera black screen, Face ID not available", "Front camera", 2000),
        ("no sound on calls, speakerphone works", "Earpiece speaker", 0),
        ("loudspeaker crackles at high volume", "Loudspeaker", 0),
        ("no service / searching, SIM tested in another phone OK", None, 3000),
        ("stuck on the logo after an update, customer wants data saved", None, 5000),
        ("power button is stuck and does not click", "Power flex", 0),
    ],
    "Tablet": [
        ("digitizer cracked, kids dropped it off the couch", "Digitizer", 0),
        ("battery swollen, screen lifting on the left side", "Battery", 0),
        ("charging port loose, charges intermittently", "Charging port flex", 0),
        ("LCD has a green tint and flickers", "LCD panel", 0),
        ("home button not working", None, 2500),
    ],
    "Laptop": [
        ("keyboard has several dead keys after a coffee spill", "Keyboard", 2000),
        ("won't power on, no lights, charger tested OK", None, 6000),
        ("screen hinge broken, lid wobbles and display cuts out", "Hinge set", 0),
        ("LCD cracked from closing on a pen", "LCD panel", 0),
        ("very slow, fans loud, wants SSD upgrade and clean install", "SSD 1TB", 0),
        ("battery holds 40 minutes, shows Service Recommended", "Battery", 0),
        ("trackpad clicks on its own, cursor jumps", "Trackpad", 0),
        ("overheats and shuts down while gaming", None, 4500),
        ("no Wi-Fi adapter detected after Windows update", None, 3500),
        ("data recovery requested, drive clicking", None, 12000),
    ],
    "Console": [
        ("HDMI port damaged, no picture", "HDMI port", 0),
        ("Joy-Con drifting left stick", "Analog stick", 0),
        ("disc drive will not read discs", "Disc drive", 0),
        ("overheating, loud fan, needs thermal paste", None, 3500),
    ],
    "Desktop": [
        ("no display on boot, beeps three times", None, 4000),
        ("power supply failed after a storm", "Power supply", 0),
        ("virus/malware cleanup and backup of photos", None, 7000),
        ("upgrade RAM to 32 GB and reinstall OS", "RAM 32GB kit", 0),
    ],
}

PART_PRICES = {  # kind -> (cost cents, price cents) baseline
    "Screen assembly": (6500, 17900), "Battery": (1800, 7900), "Charging port flex": (900, 5900),
    "Back glass": (1500, 9900), "Rear camera": (2500, 8900), "Front camera": (1800, 7900),
    "Earpiece speaker": (600, 4900), "Loudspeaker": (700, 4900), "Power flex": (800, 5900),
    "Digitizer": (3500, 12900), "LCD panel": (7500, 21900), "Keyboard": (3500, 12900),
    "Hinge set": (2500, 9900), "SSD 1TB": (5500, 14900), "Trackpad": (4500, 13900),
    "HDMI port": (500, 8900), "Analog stick": (400, 3900), "Disc drive": (4500, 11900),
    "Power supply": (4000, 11900), "RAM 32GB kit": (5500, 13900),
}
ACCESSORIES = [("Tempered glass screen protector", 150, 1999), ("USB-C cable 2m", 250, 1499),
               ("Lightning cable 1m", 250, 1499), ("20W USB-C charger", 600, 2499),
               ("Clear case", 200, 1999), ("Rugged case", 700, 3999),
               ("Laptop sleeve 14\"", 900, 2999), ("Microfiber cloth", 20, 299)]

CONDITIONS = ["scratches on the frame", "small dent on the bottom left corner",
              "no SIM tray", "screen protector already cracked", "case left with device",
              "back cover missing a screw", "minor scuffs", "sticker residue on the back",
              "camera lens cracked", "device arrived powered off", "charger included",
              "water damage indicator is red", "no visible damage besides the reported issue"]
INTAKE_OPENERS = ["Customer says", "Cx reports", "Per customer:", "Customer states",
                  "Walk-in, customer reports", "Mail-in ticket:", "Returning customer says"]
DIAG_NOTES = ["Opened device, confirmed fault.", "Ran diagnostics, all other functions pass.",
              "Found corrosion on the board near the connector, cleaned with IPA.",
              "Tested with known good part, issue resolved with replacement.",
              "Battery cycle count {n}, capacity {p}%.", "Board-level issue suspected, checking rails.",
              "Liquid damage found under the shield.", "Flex cable was torn, will replace."]
APPROVAL_NOTES = ["Called customer with quote ${q}, left voicemail.",
                  "Texted quote ${q} to customer, approved by reply.",
                  "Customer approved ${q} over the phone.",
                  "Emailed estimate ${q}; customer approved and asked for ETA."]
PARTS_NOTES = ["Part ordered from {s}, ETA {d} business days.", "Part backordered at {s}, checking alternatives.",
               "Ordered OEM part from {s}, tracking added to ticket."]
REPAIR_NOTES = ["Replaced part, tested touch/display/cameras/speakers, all OK.",
                "Repair done, ran 30-minute burn-in, temperatures normal.",
                "Reassembled with new adhesive, water seal applied.",
                "Cleaned board, reflowed connector, device powers on and charges."]
READY_NOTES = ["Texted customer that the device is ready for pickup.",
               "Called customer, ready for pickup, open until 7pm.",
               "Ready for pickup; invoice sent by email."]
DONE_NOTES = ["Picked up and paid, customer tested the device at the counter.",
              "Picked up by spouse with ID, paid in full.",
              "Customer picked up, 90-day warranty explained.",
              "Picked up; customer very happy, left a review."]
CALL_NOTES = ["Customer called asking for an update.", "Customer dropped off the charger.",
              "Customer asked to back up photos before the repair.",
              "Customer requested a call before any extra work.",
              "Customer will be out of town until next week."]

STATUSES = ["New", "In Diagnosis", "Awaiting Approval", "Awaiting Parts", "In Repair",
            "Ready for Pickup", "Completed"]
PAY_METHODS = ["Card"] * 14 + ["Cash"] * 4 + ["Apple Pay", "Bank transfer"]

HOUR = 3600
DAY = 86400
END_DATE = datetime.date(2024, 6, 29)          # last business day in the generated DB
EPOCH_ORD = datetime.date(1970, 1, 1).toordinal()
TAX_RATE_BP = 825                               # 8.25 %

_date_cache = {}


def iso(t):
    """Epoch seconds (naive, shop-local time) -> 'YYYY-MM-DDTHH:MM:SS'."""
    d, s = divmod(int(t), DAY)
    ds = _date_cache.get(d)
    if ds is None:
        ds = datetime.date.fromordinal(EPOCH_ORD + d).isoformat()
        _date_cache[d] = ds
    h, s = divmod(s, HOUR)
    m, s = divmod(s, 60)
    return "%sT%02d:%02d:%02d" % (ds, h, m, s)


def parse_iso(s):
    dt = datetime.datetime.fromisoformat(s)
    return (dt.date().toordinal() - EPOCH_ORD) * DAY + dt.hour * HOUR + dt.minute * 60 + dt.second


def biz(t, rnd):
    """Move a timestamp into business hours (09:00-19:00)."""
    d, s = divmod(int(t), DAY)
    if s < 9 * HOUR:
        return d * DAY + 9 * HOUR + int(rnd() * 2 * HOUR)
    if s >= 19 * HOUR:
        return (d + 1) * DAY + 9 * HOUR + int(rnd() * 2 * HOUR)
    return t


SCHEMA = """
CREATE TABLE customers(
  id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
  phone TEXT, email TEXT, address TEXT, city TEXT, postcode TEXT,
  marketing_opt_in INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, notes TEXT);
CREATE TABLE inventory(
  id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL, category TEXT,
  make TEXT, model TEXT, qty_on_hand INTEGER NOT NULL, reorder_level INTEGER,
  cost_cents INTEGER, price_cents INTEGER, supplier TEXT, bin_location TEXT, updated_at TEXT);
CREATE TABLE tickets(
  id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, status TEXT NOT NULL, priority TEXT,
  device_type TEXT, make TEXT, model TEXT, color TEXT, imei TEXT, serial TEXT,
  passcode_provided INTEGER, problem TEXT, diagnosis TEXT, technician TEXT,
  estimate_cents INTEGER, due_at TEXT, completed_at TEXT);
CREATE TABLE ticket_notes(
  id INTEGER PRIMARY KEY, ticket_id INTEGER NOT NULL REFERENCES tickets(id),
  created_at TEXT NOT NULL, author TEXT, kind TEXT, body TEXT);
CREATE TABLE invoices(
  id INTEGER PRIMARY KEY, number TEXT NOT NULL UNIQUE, ticket_id INTEGER REFERENCES tickets(id),
  customer_id INTEGER REFERENCES customers(id), issued_at TEXT, status TEXT,
  subtotal_cents INTEGER, tax_cents INTEGER, total_cents INTEGER, due_at TEXT);
CREATE TABLE invoice_lines(
  id INTEGER PRIMARY KEY, invoice_id INTEGER NOT NULL REFERENCES invoices(id),
  inventory_id INTEGER REFERENCES inventory(id), description TEXT, qty INTEGER,
  unit_price_cents INTEGER, line_total_cents INTEGER);
CREATE TABLE payments(
  id INTEGER PRIMARY KEY, invoice_id INTEGER NOT NULL REFERENCES invoices(id),
  paid_at TEXT NOT NULL, method TEXT, amount_cents INTEGER, reference TEXT);
CREATE INDEX customers_phone ON customers(phone);
CREATE INDEX customers_name ON customers(last_name, first_name);
CREATE INDEX tickets_customer ON tickets(customer_id);
CREATE INDEX tickets_status ON tickets(status, updated_at);
CREATE INDEX ticket_notes_ticket ON ticket_notes(ticket_id);
CREATE INDEX invoices_ticket ON invoices(ticket_id);
CREATE INDEX invoice_lines_invoice ON invoice_lines(invoice_id);
CREATE INDEX payments_invoice ON payments(invoice_id);
"""

INS = {
    "customers": "INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "inventory": "INSERT INTO inventory VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "tickets": "INSERT INTO tickets VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "ticket_notes": "INSERT INTO ticket_notes VALUES (?,?,?,?,?,?)",
    "invoices": "INSERT INTO invoices VALUES (?,?,?,?,?,?,?,?,?,?)",
    "invoice_lines": "INSERT INTO invoice_lines VALUES (?,?,?,?,?,?,?)",
    "payments": "INSERT INTO payments VALUES (?,?,?,?,?,?)",
}
TABLE_ORDER = ["customers", "tickets", "ticket_notes", "invoices", "invoice_lines", "payments"]


def luhn_imei(rng):
    digits = [3, 5] + [rng.randrange(10) for _ in range(12)]
    total = 0
    for i, d in enumerate(digits):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def build_inventory(rng, t_created):
    """Parts for every device model with a matching problem, plus accessories."""
    rows = []
    index = {}  # (make, model, part kind) -> (inventory id, price)
    iid = 0
    for dtype, make, model, _imei, _labor in DEVICES:
        kinds = sorted({p[1] for p in PROBLEMS[dtype] if p[1]})
        for kind in kinds:
            iid += 1
            cost, price = PART_PRICES[kind]
            f = 0.7 + rng.random() * 0.8
            cost, price = int(cost * f), int(price * f) // 100 * 100 + 99
            sku = "%s-%s-%s" % (make[:3].upper(), "".join(c for c in model if c.isalnum())[:10].upper(),
                                "".join(w[0] for w in kind.split()).upper())
            sku = "%s-%04d" % (sku, iid)
            rows.append((iid, sku, "%s for %s %s" % (kind, make, model), kind, make, model,
                         rng.randrange(0, 40), rng.choice([2, 3, 5, 10]), cost, price,
                         rng.choice(SUPPLIERS), "%s%d-%02d" % (rng.choice("ABCDEF"), rng.randrange(1, 6),
                                                             rng.randrange(1, 40)), iso(t_created)))
            index[(make, model, kind)] = (iid, price)
    for name, cost, price in ACCESSORIES:
        iid += 1
        rows.append((iid, "ACC-%04d" % iid, name, "Accessory", None, None, rng.randrange(10, 200), 20,
                     cost, price, rng.choice(SUPPLIERS), "FRONT-%02d" % rng.randrange(1, 12), iso(t_created)))
        index[("ACC", name)] = (iid, price)
    return rows, index


class Shop:
    """Generates shop activity.  Row ids are assigned in insertion (time) order."""

    def __init__(self, rng, inv_index, now, ids=None):
        self.rng = rng
        self.inv = inv_index
        self.now = now
        self.ids = ids or {t: 0 for t in TABLE_ORDER}
        self.rows = {t: [] for t in TABLE_ORDER}
        self.events = []   # heap of (ts, seq, kind, payload)
        self.seq = 0
        self.customer_count = self.ids["customers"]
        self.part_usage = {}

    # --- helpers -------------------------------------------------------
    def _next(self, table):
        self.ids[table] += 1
        return self.ids[table]

    def _push(self, ts, kind, payload):
        self.seq += 1
        heapq.heappush(self.events, (ts, self.seq, kind, payload))

    def new_customer(self, t):
        r = self.rng
        cid = self._next("customers")
        self.customer_count = cid
        fn, ln = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        phone = "(%d) %03d-%04d" % (r.choice(AREA_CODES), r.randrange(200, 999), r.randrange(10000))
        x = r.random()
        if x < 0.35:
            email = "%s.%s@%s" % (fn.lower(), ln.lower(), r.choice(EMAIL_DOMAINS))
        elif x < 0.7:
            email = "%s%s%d@%s" % (fn[0].lower(), ln.lower(), r.randrange(1, 99), r.choice(EMAIL_DOMAINS))
        elif x < 0.9:
            email = "%s_%d@%s" % (fn.lower(), r.randrange(1950, 2010), r.choice(EMAIL_DOMAINS))
        else:
            email = None
        city, pc = r.choice(CITIES)
        addr = "%d %s %s" % (r.randrange(1, 9999), r.choice(STREETS), r.choice(STREET_TYPES))
        if r.random() < 0.15:
            addr += " Apt %d%s" % (r.randrange(1, 40), r.choice("ABCD"))
        notes = None
        y = r.random()
        if y < 0.05:
            notes = "Prefers text messages, do not call before 10am."
        elif y < 0.08:
            notes = "Business account, invoice to company email."
        elif y < 0.10:
            notes = "VIP: always rush."
        self.rows["customers"].append((cid, fn, ln, phone, email, addr, city, pc,
                                       1 if r.random() < 0.4 else 0, iso(t), notes))
        return cid

    def new_ticket(self, t0, status_cap=None):
        """Create a ticket at t0 with its full life cycle up to self.now.
        status_cap limits how far the ticket progresses (used by mutate)."""
        r = self.rng
        rnd = r.random
        if self.customer_count == 0 or rnd() < 0.55:
            cid = self.new_customer(t0)
        else:
            cid = r.randrange(1, self.customer_count + 1)
        tid = self._next("tickets")
        dtype, make, model, has_imei, labor = r.choice(DEVICES)
        problem, part, extra = r.choice(PROBLEMS[dtype])
        tech = r.choice(TECHNICIANS)
        imei = luhn_imei(r) if has_imei else None
        serial = None if has_imei and rnd() < 0.7 else "".join(
            r.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(12))
        part_ref = self.inv.get((make, model, part)) if part else None
        estimate = labor + extra + (part_ref[1] if part_ref else 0)
        priority = "Rush" if rnd() < 0.08 else ("Low" if rnd() < 0.1 else "Normal")
        color = r.choice(COLORS)

        # life cycle
        stages = [(t0, "New")]
        t = biz(t0 + 0.2 * HOUR + rnd() * 26 * HOUR, rnd)
        stages.append((t, "In Diagnosis"))
        t = biz(t + 0.5 * HOUR + rnd() * 30 * HOUR, rnd)
        stages.append((t, "Awaiting Approval"))
        if part and rnd() < 0.45:
            t = biz(t + HOUR + rnd() * 20 * HOUR, rnd)
            stages.append((t, "Awaiting Parts"))
            t = biz(t + DAY + rnd() * 7 * DAY, rnd)
        else:
            t = biz(t + HOUR + rnd() * 30 * HOUR, rnd)
        stages.append((t, "In Repair"))
        t = biz(t + 0.5 * HOUR + rnd() * 48 * HOUR, rnd)
        stages.append((t, "Ready for Pickup"))
        t = biz(t + min(r.expovariate(1 / (2.5 * DAY)), 30 * DAY), rnd)
        stages.append((t, "Completed"))
        now = self.now
        reached = [s for s in stages if s[0] <= now]
        if status_cap is not None:
            reached = reached[:status_cap]
        updated_at, status = reached[-1]
        diagnosis = None
        if len(reached) >= 3:
            diagnosis = "%s %s" % (r.choice(DIAG_NOTES).format(n=r.randrange(300, 1400), p=r.randrange(62, 86)),
                                   ("Needs %s." % part.lower()) if part else "Labor only.")
        desc = "%s %s. %s." % (r.choice(INTAKE_OPENERS), problem, r.choice(CONDITIONS).capitalize())
        if rnd() < 0.3:
            desc += " Passcode given, customer OK with data reset if needed."
        self.rows["tickets"].append((
            tid, cid, iso(t0), iso(updated_at), status, priority, dtype, make, model, color,
            imei, serial, 1 if rnd() < 0.6 else 0, desc, diagnosis, tech, estimate,
            iso(t0 + (2 + r.randrange(5)) * DAY), iso(updated_at) if status == "Completed" else None))

        # notes and money, as future events
        self.rows["ticket_notes"].append((self._next("ticket_notes"), tid, iso(t0), r.choice(FRONT_DESK),
                                          "intake", "Checked in %s %s (%s). %s." % (
                                              make, model, color, r.choice(CONDITIONS).capitalize())))
        for ts, st in reached[1:]:
            if st == "In Diagnosis":
                body = "Started diagnosis. " + r.choice(DIAG_NOTES).format(n=r.randrange(300, 1400), p=r.randrange(62, 86))
            elif st == "Awaiting Approval":
                body = r.choice(APPROVAL_NOTES).format(q="%d.%02d" % divmod(estimate, 100))
            elif st == "Awaiting Parts":
                body = r.choice(PARTS_NOTES).format(s=r.choice(SUPPLIERS), d=r.randrange(2, 8))
            elif st == "In Repair":
                body = r.choice(REPAIR_NOTES)
            elif st == "Ready for Pickup":
                body = r.choice(READY_NOTES)
            else:
                body = r.choice(DONE_NOTES)
            self._push(ts, "N", (tid, tech if st != "Completed" else r.choice(FRONT_DESK), "status", body))
            if st == "Ready for Pickup":
                paid = reached[-1][0] if reached[-1][1] == "Completed" else None
                self._push(ts, "I", (tid, cid, labor + extra, part_ref, part, make, model, paid))
        for _ in range(r.randrange(0, 3)):
            ts = t0 + rnd() * max(HOUR, updated_at - t0)
            if ts <= now:
                self._push(ts, "N", (tid, r.choice(FRONT_DESK), "call", r.choice(CALL_NOTES)))
        return tid

    def make_invoice(self, ts, payload):
        r = self.rng
        tid, cid, labor, part_ref, part, make, model, paid = payload
        inv_id = self._next("invoices")
        lines = [(self._next("invoice_lines"), inv_id, None, "Labor - %s %s repair" % (make, model), 1, labor, labor)]
        if part_ref:
            lines.append((self._next("invoice_lines"), inv_id, part_ref[0], "%s - %s %s" % (part, make, model),
                          1, part_ref[1], part_ref[1]))
            self.part_usage[part_ref[0]] = self.part_usage.get(part_ref[0], 0) + 1
        if r.random() < 0.25:
            name = r.choice(ACCESSORIES)[0]
            aid, price = self.inv[("ACC", name)]
            q = 1 if r.random() < 0.8 else 2
            lines.append((self._next("invoice_lines"), inv_id, aid, name, q, price, q * price))
        if r.random() < 0.1:
            lines.append((self._next("invoice_lines"), inv_id, None, "Loyalty discount", 1, -1000, -1000))
        sub = sum(l[6] for l in lines)
        tax = sub * TAX_RATE_BP // 10000
        year = iso(ts)[:4]
        self.rows["invoices"].append((inv_id, "INV-%s-%07d" % (year, inv_id), tid, cid, iso(ts),
                                      "Paid" if paid else "Sent", sub, tax, sub + tax, iso(ts + 14 * DAY)))
        self.rows["invoice_lines"].extend(lines)
        if paid:
            self._push(paid, "P", (inv_id, sub + tax))

    def make_payment(self, ts, payload):
        r = self.rng
        inv_id, total = payload
        parts = [total] if r.random() < 0.95 else [total // 2, total - total // 2]
        for amount in parts:
            method = r.choice(PAY_METHODS)
            ref = None
            if method in ("Card", "Apple Pay"):
                ref = "auth %06d ****%04d" % (r.randrange(10 ** 6), r.randrange(10 ** 4))
            elif method == "Bank transfer":
                ref = "TRF%010d" % r.randrange(10 ** 10)
            self.rows["payments"].append((self._next("payments"), inv_id, iso(ts), method, amount, ref))

    def drain(self, until):
        ev = self.events
        while ev and ev[0][0] < until:
            ts, _s, kind, payload = heapq.heappop(ev)
            if kind == "N":
                tid, author, nkind, body = payload
                self.rows["ticket_notes"].append((self._next("ticket_notes"), tid, iso(ts), author, nkind, body))
            elif kind == "I":
                self.make_invoice(ts, payload)
            else:
                self.make_payment(ts, payload)

    def flush(self, conn):
        n = 0
        for table in TABLE_ORDER:
            rows = self.rows[table]
            if rows:
                conn.executemany(INS[table], rows)
                n += len(rows)
                rows.clear()
        return n


# --------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------

BYTES_PER_TICKET_GUESS = 1700.0
WEEKDAY_FACTOR = [1.15, 1.05, 1.0, 1.05, 1.15, 0.9, 0.0]   # Mon..Sun (closed Sundays)


def gen_db(path, target_bytes, seed):
    rng = random.Random(seed)
    if os.path.exists(path):
        os.remove(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    conn.executescript(SCHEMA)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]

    est_tickets = max(50, target_bytes / BYTES_PER_TICKET_GUESS)
    days = int(min(6 * 365, max(60, est_tickets / 80)))
    end_day = END_DATE.toordinal() - EPOCH_ORD
    start_day = end_day - days + 1
    now = end_day * DAY + 19 * HOUR

    conn.execute("BEGIN")
    inv_rows, inv_index = build_inventory(rng, start_day * DAY + 8 * HOUR)
    conn.executemany(INS["inventory"], inv_rows)
    shop = Shop(rng, inv_index, now)

    open_days = [d for d in range(start_day, end_day + 1)
                 if WEEKDAY_FACTOR[datetime.date.fromordinal(EPOCH_ORD + d).weekday()] > 0]
    open_after = {d: len(open_days) - i for i, d in enumerate(open_days)}  # open days from d to the end
    bpt = BYTES_PER_TICKET_GUESS
    check_every = max(100, int(est_tickets / 60))
    since_check = 0
    carry = 0.0
    per_day = None
    for day in range(start_day, end_day + 1):
        shop.drain(day * DAY)
        factor = WEEKDAY_FACTOR[datetime.date.fromordinal(EPOCH_ORD + day).weekday()]
        if factor == 0.0:
            continue
        if per_day is None:
            # adaptive rate: spread the bytes still missing over the remaining open days
            size = conn.execute("PRAGMA page_count").fetchone()[0] * page_size
            per_day = max(0.0, target_bytes - size) / bpt / open_after[day]
        want = per_day * factor * (0.75 + rng.random() * 0.5) + carry
        n = int(want)
        carry = want - n
        times = sorted(day * DAY + 9 * HOUR + int(rng.random() * 10 * HOUR) for _ in range(n))
        for t0 in times:
            shop.drain(t0)
            shop.new_ticket(t0)
        since_check += n
        if since_check >= check_every:
            shop.flush(conn)
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            size = conn.execute("PRAGMA page_count").fetchone()[0] * page_size
            # bytes per ticket so far (children of recent tickets are still pending: slight overestimate)
            bpt = max(300.0, size / shop.ids["tickets"])
            since_check = 0
            per_day = None
    shop.drain(now + 1)
    # stock levels reflect parts used
    conn.executemany("UPDATE inventory SET qty_on_hand = max(0, qty_on_hand - ?) + reorder_level WHERE id = ?",
                     [(n % 37, iid) for iid, n in sorted(shop.part_usage.items())])
    shop.flush(conn)
    conn.execute("COMMIT")
    conn.execute("PRAGMA optimize")
    conn.close()
    return shop.ids


def photo_bytes(rng, size):
    header = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00"
              b"\xff\xe1\x00\x40Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08")
    header += (b"RepairOps intake photo %08x" % rng.getrandbits(32)).ljust(40, b"\x00")
    body = rng.randbytes(max(0, size - len(header) - 2))
    return header + body + b"\xff\xd9"


def pdf_bytes(rng, size):
    """Partially compressible: text objects (invoices/waivers) + random 'image' streams."""
    out = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    n = len(out[0])
    obj = 1
    target_text = size * 2 // 5
    while n < target_text:
        lines = []
        for _ in range(40):
            lines.append("BT /F1 10 Tf 72 %d Td (%s %s - %s %s  $%d.%02d) Tj ET" % (
                rng.randrange(50, 750), rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES),
                rng.choice(DEVICES)[2], rng.choice(PROBLEMS["Phone"])[0], rng.randrange(20, 400),
                rng.randrange(100)))
        content = ("\n".join(lines)).encode()
        chunk = b"%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (obj, len(content), content)
        out.append(chunk)
        n += len(chunk)
        obj += 1
    while n < size - 64:
        blen = min(size - n - 64, rng.randrange(16_000, 200_000))
        blob = rng.randbytes(max(1, blen))
        chunk = (b"%d 0 obj\n<< /Type /XObject /Subtype /Image /Filter /DCTDecode /Length %d >>\nstream\n"
                 % (obj, len(blob))) + blob + b"\nendstream\nendobj\n"
        out.append(chunk)
        n += len(chunk)
        obj += 1
    out.append(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
    return b"".join(out)


def attachment_path(root, rng, ext):
    h = "%032x" % rng.getrandbits(128)
    d = os.path.join(root, h[:2], h[2:4])
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, h + ext)


def gen_attachments(root, target_bytes, seed):
    rng = random.Random(seed * 1_000_003 + 7)
    os.makedirs(root, exist_ok=True)
    total = 0
    count = 0
    while total < target_bytes:
        left = target_bytes - total
        if rng.random() < 0.12:
            size = rng.randrange(20_000, 900_000)
            data = pdf_bytes(rng, min(size, max(left, 10_000)))
            path = attachment_path(root, rng, ".pdf")
        else:
            size = int(min(3_000_000, max(150_000, rng.lognormvariate(13.9, 0.6))))
            data = photo_bytes(rng, min(size, max(left, 150_000)))
            path = attachment_path(root, rng, ".jpg")
        with open(path, "wb") as f:
            f.write(data)
        total += len(data)
        count += 1
    return count, total


def dir_bytes(root):
    total = files = 0
    for dp, _dn, fn in os.walk(root):
        for f in fn:
            total += os.path.getsize(os.path.join(dp, f))
            files += 1
    return files, total


def cmd_generate(args):
    t_start = time.monotonic()
    os.makedirs(args.dir, exist_ok=True)
    att_root = os.path.join(args.dir, "attachments")
    if os.path.exists(att_root):
        sys.exit("refusing to generate: %s already exists (use an empty directory)" % att_root)
    # attachments in a second process: the DB generation is CPU-bound Python
    proc = None
    if args.attachments_mb > 0:
        proc = multiprocessing.get_context("fork").Process(
            target=gen_attachments, args=(att_root, int(args.attachments_mb * MB), args.seed))
        proc.start()
    ids = gen_db(os.path.join(args.dir, "live.db"), int(args.db_mb * MB), args.seed)
    t_db = time.monotonic() - t_start
    if proc is not None:
        proc.join()
        if proc.exitcode != 0:
            sys.exit("attachment generation failed (exit %s)" % proc.exitcode)
    db_size = os.path.getsize(os.path.join(args.dir, "live.db"))
    nfiles, att_size = dir_bytes(att_root) if os.path.exists(att_root) else (0, 0)
    print("generated %s: live.db %.1f MB (%d tickets, %d customers, %d notes, %d invoices) in %.1fs; "
          "attachments %d files %.1f MB; total %.1fs" % (
              args.dir, db_size / MB, ids["tickets"], ids["customers"], ids["ticket_notes"], ids["invoices"],
              t_db, nfiles, att_size / MB, time.monotonic() - t_start))


# --------------------------------------------------------------------------
# mutate
# --------------------------------------------------------------------------

NEXT_STATUS = {"New": "In Diagnosis", "In Diagnosis": "Awaiting Approval",
               "Awaiting Parts": "In Repair", "In Repair": "Ready for Pickup",
               "Ready for Pickup": "Completed"}


def cmd_mutate(args):
    t_start = time.monotonic()
    db = os.path.join(args.dir, "live.db")
    if not os.path.exists(db):
        sys.exit("no database at %s" % db)
    rng = random.Random(args.seed * 7919 + 13)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN IMMEDIATE")
    counts = {t: conn.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
              for t in TABLE_ORDER + ["inventory"]}
    total_rows = sum(counts.values())
    target = max(10, total_rows // 100)
    ids = {t: conn.execute("SELECT coalesce(max(id), 0) FROM %s" % t).fetchone()[0] for t in TABLE_ORDER}
    last = parse_iso(conn.execute("SELECT max(created_at) FROM tickets").fetchone()[0])
    day = last // DAY + 1
    while datetime.date.fromordinal(EPOCH_ORD + day).weekday() == 6:
        day += 1
    day_start, now = day * DAY + 9 * HOUR, day * DAY + 19 * HOUR

    inv_index = {}
    for iid, cat, make, model, name, price in conn.execute(
            "SELECT id, category, make, model, name, price_cents FROM inventory ORDER BY id"):
        if cat == "Accessory":
            inv_index[("ACC", name)] = (iid, price)
        else:
            inv_index[(make, model, cat)] = (iid, price)
    shop = Shop(rng, inv_index, now, ids=dict(ids))
    tick = lambda: day_start + int(rng.random() * 10 * HOUR)  # noqa: E731

    # 1. status updates on the most recent ~2% of tickets
    n_recent = max(1, counts["tickets"] // 50)
    recent = conn.execute(
        "SELECT id, customer_id, status, make, model, device_type, estimate_cents, problem FROM tickets "
        "WHERE id > ? ORDER BY id", (ids["tickets"] - n_recent,)).fetchall()
    changed = 0
    ticket_updates = []
    for tid, cid, status, make, model, dtype, estimate, problem in recent:
        t = tick()
        if status == "Completed":
            if rng.random() < 0.1:
                shop.rows["ticket_notes"].append((shop._next("ticket_notes"), tid, iso(t), rng.choice(FRONT_DESK),
                                                  "call", "Warranty follow-up call: customer reports device works fine."))
                ticket_updates.append((status, iso(t), None, None, tid))
                changed += 2
            continue
        if rng.random() > 0.8:
            continue
        new = NEXT_STATUS.get(status)
        if status == "Awaiting Approval":
            new = "Awaiting Parts" if rng.random() < 0.4 else "In Repair"
        tech = rng.choice(TECHNICIANS)
        diag = None
        if new == "Awaiting Approval":
            diag = "%s Quote sent." % rng.choice(DIAG_NOTES).format(n=rng.randrange(300, 1400), p=rng.randrange(62, 86))
        body = {"In Diagnosis": "Started diagnosis.", "Awaiting Approval": "Diagnosis done, quote sent to customer.",
                "Awaiting Parts": rng.choice(PARTS_NOTES).format(s=rng.choice(SUPPLIERS), d=rng.randrange(2, 8)),
                "In Repair": rng.choice(REPAIR_NOTES), "Ready for Pickup": rng.choice(READY_NOTES),
                "Completed": rng.choice(DONE_NOTES)}[new]
        shop.rows["ticket_notes"].append((shop._next("ticket_notes"), tid, iso(t), tech, "status", body))
        ticket_updates.append((new, iso(t), diag, iso(t) if new == "Completed" else None, tid))
        changed += 2
        if new == "Ready for Pickup":
            part = None
            for p, kind, _x in PROBLEMS.get(dtype, []):
                if p in (problem or ""):
                    part = kind
                    break
            part_ref = inv_index.get((make, model, part)) if part else None
            labor = max(2900, (estimate or 0) - (part_ref[1] if part_ref else 0))
            shop.make_invoice(t, (tid, cid, labor, part_ref, part, make, model, None))
            changed += 3
        elif new == "Completed":
            row = conn.execute("SELECT id, total_cents FROM invoices WHERE ticket_id = ? ORDER BY id DESC LIMIT 1",
                               (tid,)).fetchone()
            if row:
                conn.execute("UPDATE invoices SET status = 'Paid' WHERE id = ?", (row[0],))
                shop.make_payment(t, row)
                changed += 2
    conn.executemany("UPDATE tickets SET status = ?, updated_at = ?, diagnosis = coalesce(?, diagnosis), "
                     "completed_at = coalesce(?, completed_at) WHERE id = ?", ticket_updates)

    # 2. new tickets for the day (intake only, a few already in diagnosis)
    times = []
    rows_before = sum(len(v) for v in shop.rows.values())
    new_tickets = 0
    while changed + sum(len(v) for v in shop.rows.values()) - rows_before < target or new_tickets == 0:
        t0 = tick()
        shop.new_ticket(t0, status_cap=2 if rng.random() < 0.3 else 1)
        times.append(t0)
        new_tickets += 1
        if new_tickets % 16 == 0:
            shop.drain(now + 1)
    shop.drain(now + 1)
    # stock used today
    conn.executemany("UPDATE inventory SET qty_on_hand = max(0, qty_on_hand - ?), updated_at = ? WHERE id = ?",
                     [(n, iso(now), iid) for iid, n in sorted(shop.part_usage.items())])
    # new tickets appended in creation order, like the real application would
    inserted = shop.flush(conn)
    conn.execute("COMMIT")
    conn.close()

    # 3. attachments: ~5 new photos, ~3 existing rewritten (e.g. re-shot or re-exported)
    att_root = os.path.join(args.dir, "attachments")
    added = rewritten = 0
    if os.path.isdir(att_root):
        existing = sorted(os.path.join(dp, f)[len(att_root) + 1:]
                          for dp, _dn, fn in os.walk(att_root) for f in fn if f.endswith(".jpg"))
        for rel in rng.sample(existing, min(3, len(existing))):
            p = os.path.join(att_root, rel)
            data = photo_bytes(rng, max(150_000, os.path.getsize(p) + rng.randrange(-50_000, 50_000)))
            with open(p, "wb") as f:
                f.write(data)
            rewritten += 1
        for _ in range(5):
            size = int(min(3_000_000, max(150_000, rng.lognormvariate(13.9, 0.6))))
            with open(attachment_path(att_root, rng, ".jpg"), "wb") as f:
                f.write(photo_bytes(rng, size))
            added += 1
    print("mutated %s: %d rows of %d (%.2f%%): %d inserted, %d ticket updates, %d new tickets; "
          "attachments +%d new, %d rewritten; %.1fs" % (
              args.dir, inserted + len(ticket_updates), total_rows,
              100.0 * (inserted + len(ticket_updates)) / max(1, total_rows), inserted, len(ticket_updates),
              new_tickets, added, rewritten, time.monotonic() - t_start))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="create a new dataset in DIR")
    g.add_argument("dir")
    g.add_argument("--db-mb", type=float, default=300)
    g.add_argument("--attachments-mb", type=float, default=800)
    g.add_argument("--seed", type=int, default=42)
    m = sub.add_parser("mutate", help="apply one shop day of changes to DIR")
    m.add_argument("dir")
    m.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.cmd == "generate":
        cmd_generate(args)
    else:
        cmd_mutate(args)


if __name__ == "__main__":
    main()
