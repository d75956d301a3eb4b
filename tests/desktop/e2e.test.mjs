// End-to-end test of the real desktop app: the debug build of repairops-desktop driven
// by tauri-driver + WebKitWebDriver, against a real repairops-server process with the
// demo account, inside the session `with-desktop-session.sh` provides (Xvfb, a private
// D-Bus, GNOME Keyring, dunst). Run by `tests/desktop/run.sh`.
//
// Screenshots of each screen go to $SCREENSHOTS (default target/e2e-screenshots).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

const root = path.resolve(import.meta.dirname, "../..");
const APP = process.env.APP_BIN ?? path.join(root, "target/debug/repairops-desktop");
const SERVER = process.env.SERVER_BIN ?? path.join(root, "target/debug/repairops-server");
const SHOTS = process.env.SCREENSHOTS ?? path.join(root, "target/e2e-screenshots");
const here = import.meta.dirname;

const work = fs.mkdtempSync(path.join(os.tmpdir(), "repairops-e2e-"));
const dataDir = path.join(work, "server");
const appDir = path.join(work, "app");
const outDir = path.join(work, "drive");
fs.mkdirSync(outDir, { recursive: true });
fs.mkdirSync(SHOTS, { recursive: true });

let server = null; // { proc, url, fingerprint }
let driver = null;
let driverUrl = "";
let session = "";

// ---------------------------------------------------------------- helpers

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function eventually(what, fn, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(150);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

/** Starts the server (on a free port unless `listen` is given); resolves once it
 * printed its address and CA. */
async function startServer(data = dataDir, listen = "127.0.0.1:0") {
  fs.mkdirSync(data, { recursive: true });
  const config = path.join(work, "server.toml");
  // No 02:00 schedule (and no catch-up run holding the backup slot) in a test.
  fs.writeFileSync(config, "[backup]\nschedule = false\n");
  const proc = spawn(SERVER, ["serve", "--demo", "--data", data, "--listen", listen, "--config", config], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, REPAIROPS_LOG: "warn" },
  });
  const log = fs.createWriteStream(path.join(work, "server.log"));
  proc.stderr.pipe(log);
  const lines = readline.createInterface({ input: proc.stdout });
  const found = {};
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start within 120 s")), 120000);
    proc.on("exit", (code) => reject(new Error(`the server exited with ${code}; see ${work}/server.log`)));
    lines.on("line", (l) => {
      const m = l.match(/^listening on (\S+)/);
      if (m) found.url = m[1];
      const f = l.match(/^ca-sha256 (\S+)/);
      if (f) found.fingerprint = f[1];
      if (found.url && found.fingerprint) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  proc.removeAllListeners("exit");
  return { proc, ...found };
}

async function stopServer() {
  if (!server) return;
  const { proc } = server;
  server = null;
  await new Promise((resolve) => {
    proc.on("exit", resolve);
    proc.kill("SIGKILL");
  });
}

async function wd(method, url, body) {
  const res = await fetch(`${driverUrl}${url}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (json.value && json.value.error) {
    throw new Error(`${json.value.error}: ${json.value.message}`);
  }
  return json.value;
}

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

async function newSession() {
  const value = await wd("POST", "/session", {
    capabilities: { alwaysMatch: { "tauri:options": { application: APP } } },
  });
  session = value.sessionId;
}

async function endSession() {
  if (!session) return;
  try {
    await wd("DELETE", `/session/${session}`);
  } catch {
    // the app may already be gone
  }
  session = "";
  // The app keeps running in the tray when its window closes: end it.
  try {
    execFileSync("pkill", ["-f", APP]);
  } catch {
    // not running
  }
  await sleep(300);
}

const find = async (css) => {
  const v = await wd("POST", `/session/${session}/element`, { using: "css selector", value: css });
  if (!v || !v[ELEMENT]) throw new Error(`no element ${css}: ${JSON.stringify(v)}`);
  return v[ELEMENT];
};
const findAll = async (css) =>
  (await wd("POST", `/session/${session}/elements`, { using: "css selector", value: css })).map((e) => e[ELEMENT]);
const tid = (id) => `[data-testid="${id}"]`;
const click = async (css) => wd("POST", `/session/${session}/element/${await find(css)}/click`, {});
const text = async (css) => wd("GET", `/session/${session}/element/${await find(css)}/text`);
const script = (body, args = []) => wd("POST", `/session/${session}/execute/sync`, { script: body, args });

/** Sets an input's value the way a person typing would (Svelte listens to `input`). */
async function type(css, value) {
  const el = await find(css);
  await wd("POST", `/session/${session}/element/${el}/clear`, {});
  await wd("POST", `/session/${session}/element/${el}/value`, { text: value });
}

async function select(css, value) {
  await script(
    `const el = document.querySelector(arguments[0]); el.value = arguments[1];
     el.dispatchEvent(new Event('change', { bubbles: true })); el.dispatchEvent(new Event('input', { bubbles: true }));`,
    [css, value],
  );
}

const visible = (css) =>
  script(
    `const el = document.querySelector(arguments[0]); return !!el && el.getClientRects().length > 0;`,
    [css],
  );

const waitFor = (css, timeoutMs) => eventually(`${css} to show`, () => visible(css), timeoutMs);

async function shot(name) {
  await sleep(400); // a screenshot can lag one repaint behind
  const png = await wd("GET", `/session/${session}/screenshot`);
  fs.writeFileSync(path.join(SHOTS, `${name}.png`), Buffer.from(png, "base64"));
}

/** Rows of a list as [{attr...}] read from data attributes. */
const rows = (testid) =>
  script(
    `return [...document.querySelectorAll('[data-testid="' + arguments[0] + '"]')].map(e => ({...e.dataset}));`,
    [testid],
  );

function secretFromKeyring() {
  return execFileSync("secret-tool", ["search", "--all", "service", "com.repairops.backup.desktop"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

async function api(token, method, p) {
  // The server's CA is private: ask curl, pinned to it, rather than weaken Node's TLS.
  const ca = path.join(dataDir, "keys/ca.pem");
  const out = execFileSync(
    "curl",
    ["-s", "--cacert", ca, "-X", method, "-H", `authorization: Bearer ${token}`, "-w", "\n%{http_code}", `${server.url}${p}`],
    { encoding: "utf8" },
  );
  const i = out.lastIndexOf("\n");
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

/** A JSON request over curl (pinned): the status and the parsed answer. */
function apiJson(token, method, p, body) {
  const ca = path.join(dataDir, "keys/ca.pem");
  const out = execFileSync(
    "curl",
    ["-s", "--cacert", ca, "-X", method, "-H", `authorization: Bearer ${token}`, "-H", "content-type: application/json",
      "-d", JSON.stringify(body), "-w", "\n%{http_code}", `${server.url}${p}`],
    { encoding: "utf8" },
  );
  const i = out.lastIndexOf("\n");
  return { status: Number(out.slice(i + 1)), body: JSON.parse(out.slice(0, i)) };
}

function notifySummaries() {
  // Each Notify call's 4th top-level argument is the summary.
  const log = fs.readFileSync(process.env.NOTIFY_LOG, "utf8").split("\n");
  const out = [];
  let n = -1;
  for (const line of log) {
    if (/member=Notify( |$)/.test(line)) {
      n = 0;
      continue;
    }
    if (/^(method call|method return|signal|error)/.test(line)) n = -1;
    if (n >= 0 && /^ {3}[a-z]/.test(line)) {
      n++;
      if (n === 4) {
        out.push(line.replace(/^ {3}string "/, "").replace(/"$/, ""));
        n = -1;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- setup

before(async () => {
  assert.ok(process.env.NOTIFY_LOG, "run me inside tests/desktop/with-desktop-session.sh");
  server = await startServer();
  const port = await freePort();
  const nativePort = await freePort();
  driverUrl = `http://127.0.0.1:${port}`;
  driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(nativePort)], {
    stdio: ["ignore", "ignore", fs.openSync(path.join(work, "tauri-driver.log"), "w")],
    env: { ...process.env, REPAIROPS_DESKTOP_DIR: appDir, REPAIROPS_LOG: "info" },
  });
  await eventually("tauri-driver to listen", async () => (await fetch(`${driverUrl}/status`)).ok, 20000);
  await newSession();
});

after(async () => {
  await endSession();
  driver?.kill();
  await stopServer();
  if (!process.env.KEEP_E2E) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
});

// ---------------------------------------------------------------- the journey

let token = "";

test("a wrong address gets a sentence, not JSON", async () => {
  await waitFor(tid("server-url"), 30000);
  await shot("connect");
  await type(tid("server-url"), "https://127.0.0.1:9");
  await click(tid("check-server"));
  await waitFor(tid("error"));
  const message = await text(tid("error"));
  assert.match(message, /^[A-Z].*\.$/s, message);
  assert.doesNotMatch(message, /[{}]|at .*\(|stack/, message);
});

test("sign in pins the CA shown and keeps the token in the keyring only", async () => {
  await type(tid("server-url"), server.url);
  await click(tid("check-server"));
  await waitFor(tid("ca-fingerprint"));
  const shown = await text(tid("ca-fingerprint"));
  assert.ok(shown.includes(server.fingerprint), `shown ${shown}, server printed ${server.fingerprint}`);
  await click(tid("fingerprint-matches"));
  await type(tid("email"), "owner@demo.repairops.test");
  await type(tid("password"), "demo-owner");
  await click(tid("sign-in"));
  await waitFor(tid("nav-dashboard"), 30000);
  await waitFor(tid("last-backup"), 30000);

  // The token is in GNOME Keyring (read back through the Secret Service), and works.
  const found = secretFromKeyring();
  const m = found.match(/^secret = (\S+)$/m);
  assert.ok(m, `no secret stored in the keyring:\n${found}`);
  token = m[1];
  const me = await api(token, "GET", "/api/v1/account");
  assert.equal(me.status, 200, me.body);
  // …and nowhere on disk.
  for (const f of fs.readdirSync(appDir)) {
    const bytes = fs.readFileSync(path.join(appDir, f), "utf8");
    assert.ok(!bytes.includes(token), `${f} holds the token`);
  }
});

test("back up now shows progress and finishes", async () => {
  await click(tid("nav-backups"));
  await waitFor(tid("back-up-now"));
  const before = (await rows("backup-row")).length;
  await click(tid("back-up-now"));
  await eventually(
    "a new manual backup to succeed",
    async () => {
      const r = await rows("backup-row");
      return r.length > before && r.some((b) => b.kind === "manual" && b.state === "succeeded");
    },
    120000,
  );
  await shot("backups");
  await click(tid("nav-dashboard"));
  await eventually("the dashboard to show the backup", async () => /ago|just now/.test(await text(tid("last-backup"))));
  await shot("dashboard");
});

test("a sandbox opens from the backup and shows its data", async () => {
  await click(tid("nav-sandboxes"));
  await waitFor(tid("create-sandbox"));
  // The form is drawn before the backups it offers have loaded.
  let options = [];
  await eventually("a backup offered for a sandbox", async () => {
    options = await script(
      `return [...document.querySelectorAll('[data-testid="sandbox-backup"] option')].map(o => o.value).filter(v => v);`,
    );
    return options.length > 0;
  });
  await select(tid("sandbox-backup"), options[0]);
  await click(tid("create-sandbox"));
  await eventually(
    "the sandbox to be ready",
    async () => (await rows("sandbox-row")).some((s) => s.state === "succeeded"),
    120000,
  );
  await click(tid("open-sandbox"));
  await eventually("sandbox tickets", async () => (await findAll(tid("sandbox-ticket-row"))).length > 0, 30000);
  await shot("sandboxes");
});

test("an export is saved through the real GTK save dialog and its hash checks out", async () => {
  await click(tid("nav-exports"));
  await waitFor(tid("start-export"));
  await select(tid("export-dataset"), "tickets");
  await select(tid("export-format"), "csv");
  await click(tid("start-export"));
  const ready = await eventually(
    "the export to finish",
    async () => (await rows("export-row")).find((e) => e.state === "succeeded"),
    120000,
  );
  const target = path.join(outDir, "tickets-export.csv");
  const answering = new Promise((resolve, reject) => {
    const p = spawn(path.join(here, "answer-save-dialog.sh"), ["Save export", target], { stdio: "inherit" });
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`answer-save-dialog exited ${code}`))));
  });
  await click(`${tid("export-row")}[data-id="${ready.id}"] ${tid("save-export")}`);
  await answering;
  await eventually("the saved file to be listed", async () =>
    (await rows("saved-row")).some((r) => r.path === target),
  );
  const bytes = fs.readFileSync(target);
  const sha = createHash("sha256").update(bytes).digest("hex");
  const listed = JSON.parse((await api(token, "GET", "/api/v1/exports")).body).items.find(
    (e) => String(e.id) === String(ready.id),
  );
  assert.equal(sha, listed.sha256, "the saved file's SHA-256 is the server's");
  assert.deepEqual(
    fs.readdirSync(outDir).filter((f) => f.endsWith(".partial")),
    [],
    "no temporary file left beside it",
  );
  await click(tid("verify-saved"));
  await eventually("the verdict", async () => /intact/i.test(await text(tid("saved-verdict"))));
  await shot("exports");
});

test("the exports list shows the newest 50 and Load more brings the older ones", async () => {
  // A busy shop makes more exports than one page holds in the 30 days they are kept.
  const listed = () => api(token, "GET", "/api/v1/exports?limit=500").then((r) => JSON.parse(r.body).items);
  for (let n = (await listed()).length; n < 51; n++) {
    const started = apiJson(token, "POST", "/api/v1/exports", { dataset: "inventory", format: "csv" });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await eventually("the export to finish", async () => {
      const job = JSON.parse((await api(token, "GET", `/api/v1/jobs/${started.body.id}`)).body);
      return job.state === "succeeded" || job.state === "failed";
    });
  }
  const all = await listed();
  assert.equal(all.length, 51);
  await click(tid("nav-dashboard"));
  await click(tid("nav-exports"));
  await eventually("the first page of 50", async () => (await rows("export-row")).length === 50);
  await click(tid("exports-more"));
  await eventually("all 51", async () => (await rows("export-row")).length === 51);
  const shown = (await rows("export-row")).map((r) => Number(r.id));
  assert.deepEqual([...shown].sort((a, b) => b - a), all.map((e) => e.id).sort((a, b) => b - a), "each export once");
  assert.equal(await visible(tid("exports-more")), false, "no more to load");
});

test("the other screens render for the owner", async () => {
  for (const screen of ["restore", "compliance", "audit", "settings"]) {
    await click(tid(`nav-${screen}`));
    await sleep(800);
    await shot(screen);
  }
  await click(tid("nav-dashboard"));
});

test("the owner saves a recovery key through the save dialog, and it names both locations", async () => {
  await click(tid("nav-settings"));
  await waitFor(tid("save-recovery-key"));
  await type(tid("recovery-pass"), "correct horse battery staple");
  await type(tid("recovery-again"), "correct horse battery staple");
  const target = path.join(outDir, "recovery-key.txt");
  const answering = new Promise((resolve, reject) => {
    const p = spawn(path.join(here, "answer-save-dialog.sh"), ["Save recovery key", target], { stdio: "inherit" });
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`answer-save-dialog exited ${code}`))));
  });
  await click(tid("save-recovery-key"));
  await answering;
  await waitFor(tid("recovery-saved"), 30000);
  const file = fs.readFileSync(target, "utf8");
  for (const needed of ["primary: ", "secondary: ", "key object keys/", "restore latest"]) {
    assert.ok(file.includes(needed), `${needed} missing from the recovery key file`);
  }
  assert.ok(!file.includes("correct horse battery staple"), "the passphrase is not in the file");
  await shot("recovery-key");
  await click(tid("nav-dashboard"));
});

/** Signs in over the API with curl (pinned to the server's CA): the login answer. */
function login(email, password) {
  const ca = path.join(dataDir, "keys/ca.pem");
  return JSON.parse(
    execFileSync(
      "curl",
      ["-s", "--cacert", ca, "-H", "content-type: application/json", "-d",
        JSON.stringify({ email, password }), `${server.url}/api/v1/auth/login`],
      { encoding: "utf8" },
    ),
  );
}

test("the owner switches off a technician who left, and their session ends", async () => {
  const signedIn = login("tech@demo.repairops.test", "demo-tech");
  assert.equal((await api(signedIn.token, "GET", "/api/v1/tickets")).status, 200);
  const row = '[data-testid="team-row"][data-email="tech@demo.repairops.test"]';
  const active = () => script(`return document.querySelector('${row}')?.dataset.active ?? null`);
  await click(tid("nav-settings"));
  await waitFor(`${row} ${tid("switch-off")}`, 15000);
  await click(`${row} ${tid("switch-off")}`);
  await eventually("the technician's row to show off", async () => (await active()) === "false", 15000);
  assert.match(await text(tid("team-done")), /switched off and signed out/);
  await shot("team-switched-off");
  assert.equal((await api(signedIn.token, "GET", "/api/v1/tickets")).status, 401, "their session ended");
  await click(`${row} ${tid("switch-on")}`);
  await eventually("the technician's row to show on", async () => (await active()) === "true", 15000);

  // Someone joins: the owner gives them a sign-in, and they can sign in with it.
  await click(tid("new-member"));
  await waitFor(tid("add-member-form"), 5000);
  await type(tid("joiner-name"), "Robin Newhire");
  await type(tid("joiner-email"), "robin@demo.repairops.test");
  await select(tid("joiner-role"), "front_desk");
  await type(tid("joiner-password"), "short");
  await click(tid("add-member"));
  await eventually("the form to refuse a short password", async () => /10 to 256/.test(await script("return document.body.innerText")), 5000);
  await type(tid("joiner-password"), "robin-first-password");
  await click(tid("add-member"));
  const newRow = '[data-testid="team-row"][data-email="robin@demo.repairops.test"]';
  await waitFor(newRow, 15000);
  assert.match(await text(tid("team-done")), /Robin Newhire can now sign in as front desk/);
  await shot("team-member-added");
  const robin = login("robin@demo.repairops.test", "robin-first-password");
  assert.equal(robin.user.role, "front_desk", JSON.stringify(robin));
  assert.equal((await api(robin.token, "GET", "/api/v1/tickets")).status, 200);
  await click(tid("nav-dashboard"));
});

test("a failed backup raises one system notification at the real daemon", async () => {
  // Both backup locations become unwritable: a file where their folder was.
  const repos = path.join(dataDir, "repos");
  fs.renameSync(repos, `${repos}.away`);
  fs.writeFileSync(repos, "not a folder");
  try {
    const started = await api(token, "POST", "/api/v1/backups");
    assert.equal(started.status, 202, started.body);
    await eventually("a Notify call titled 'Backup failed'", async () => notifySummaries().includes("Backup failed"), 60000);
    const displayed = execFileSync("dunstctl", ["count", "displayed"], { encoding: "utf8" }).trim();
    const history = execFileSync("dunstctl", ["count", "history"], { encoding: "utf8" }).trim();
    assert.ok(Number(displayed) + Number(history) >= 1, `dunst shows ${displayed} and has ${history} in history`);
    await sleep(1500);
    assert.equal(notifySummaries().filter((s) => s === "Backup failed").length, 1, "told once");
    assert.ok(!notifySummaries().some((s) => /succeeded|finished/i.test(s) && !/Restore/.test(s)), "no success notices");
  } finally {
    fs.rmSync(repos);
    fs.renameSync(`${repos}.away`, repos);
  }
});

let lastUrl = "";
let lastFingerprint = "";

test("with the server stopped the app says offline and keeps what it knew", async () => {
  lastUrl = server.url;
  lastFingerprint = server.fingerprint;
  await stopServer();
  await waitFor(tid("offline"), 60000);
  await shot("offline");
  // A restart of the app while offline: it opens signed in (token read back from the
  // keyring), says it is offline, and still lists the exports saved to drives.
  await endSession();
  await newSession();
  await waitFor(tid("offline"), 60000);
  await click(tid("nav-exports"));
  await eventually("the saved exports listed offline", async () => (await rows("saved-row")).length > 0, 20000);
});

test("a server reinstalled at the same address needs its new fingerprint confirmed", async () => {
  // The app, offline since the server stopped, is signed out; the same address then
  // answers with a new data folder, so a new CA.
  const before = { url: lastUrl, fingerprint: lastFingerprint };
  await click(tid("nav-settings"));
  await click(tid("sign-out"));
  await waitFor(tid("server-url"), 30000);
  server = await startServer(path.join(work, "reinstalled"), new URL(before.url).host);
  assert.notEqual(server.fingerprint, before.fingerprint);
  await type(tid("server-url"), server.url);
  await click(tid("check-server"));
  await waitFor(tid("ca-changed"));
  assert.ok((await text(tid("ca-previous"))).includes(before.fingerprint));
  assert.ok((await text(tid("ca-fingerprint"))).includes(server.fingerprint));
  await shot("ca-changed");
  await type(tid("email"), "owner@demo.repairops.test");
  await type(tid("password"), "demo-owner");
  assert.equal(
    await script(`return document.querySelector(arguments[0]).disabled;`, [tid("sign-in")]),
    true,
    "signing in waits for the new fingerprint to be confirmed",
  );
  await click(tid("fingerprint-matches"));
  await click(tid("sign-in"));
  await waitFor(tid("nav-dashboard"), 30000);
  // The new CA is the one trusted now.
  const pins = JSON.parse(fs.readFileSync(path.join(appDir, "pins.json"), "utf8"));
  assert.ok(JSON.stringify(pins).includes(server.fingerprint), JSON.stringify(pins));
});

