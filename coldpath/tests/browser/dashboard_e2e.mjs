// Owner-dashboard end-to-end test, run by plans/verify.d/40-dashboard.sh.
//
// Usage: node dashboard_e2e.mjs BASE_URL TOKEN_FILE SCREENSHOT_PNG RESULT_JSON
//
// 1. Opens the dashboard in Debian's headless Chromium and waits for the green Active banner.
// 2. A POST without the token must be refused (401) and change nothing.
// 3. POSTs /api/v1/emergency/reduce_only with the bearer token (the real endpoint).
// 4. Asserts that within 5 s the banner is ReduceOnly (amber) and shows the plain sentence for
//    REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE, as served by /api/v1/reason_text.
// 5. Saves a screenshot and a small JSON result. Exits non-zero on any failure.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const [base, tokenFile, shotPath, resultPath] = process.argv.slice(2);
if (!base || !tokenFile || !shotPath || !resultPath) {
  console.error("usage: node dashboard_e2e.mjs BASE_URL TOKEN_FILE SCREENSHOT_PNG RESULT_JSON");
  process.exit(2);
}
const token = readFileSync(tokenFile, "utf8").split("\n")[0].trim();
const REASON = "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE";
const DEADLINE_MS = 5000;

function fail(msg) { throw new Error(msg); }

async function post(auth) {
  const headers = { "Content-Type": "application/json" };
  if (auth) headers.Authorization = auth;
  const r = await fetch(base + "/api/v1/emergency/reduce_only", {
    method: "POST", headers,
    body: JSON.stringify({ reason: "dashboard e2e: operator forces reduce-only", requested_by: "verify-40-dashboard" }),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

const profile = mkdtempSync(join(tmpdir(), "stoic-chromium-"));
let context;
const result = { base, started_utc: new Date().toISOString() };
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] || await context.newPage();
  const text = await (await fetch(base + "/api/v1/reason_text")).json();
  const sentence = text.mode_reasons[REASON] && text.mode_reasons[REASON].plain;
  if (!sentence) fail("reason_text has no sentence for " + REASON);

  await page.goto(base + "/", { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#banner.Active", { timeout: DEADLINE_MS });
  const activeHeadline = await page.textContent("#mode");
  if (!/ACTIVE/.test(activeHeadline)) fail("Active banner headline wrong: " + activeHeadline);

  // Without the token nothing may change.
  const refused = await post(null);
  const wrong = await post("Bearer not-the-token-000000000000");
  if (refused.status !== 401 || wrong.status !== 401) fail(`unauthenticated POSTs got ${refused.status}/${wrong.status}, want 401`);
  await page.waitForTimeout(1500); // more than one poll period
  if (!(await page.$("#banner.Active"))) fail("banner left Active after refused POSTs");

  const t0 = Date.now();
  const accepted = await post("Bearer " + token);
  if (accepted.status !== 200) fail("authorised POST got " + accepted.status);
  if (!accepted.body || accepted.body.trading_mode !== "ReduceOnly") fail("POST response is not the ReduceOnly status");
  await page.waitForSelector("#banner.ReduceOnly", { timeout: DEADLINE_MS });
  await page.waitForFunction(
    (s) => document.querySelector("#reasons").textContent.includes(s) && document.querySelector("#primary").textContent.includes(s),
    sentence, { timeout: Math.max(1, DEADLINE_MS - (Date.now() - t0)) });
  const elapsed = Date.now() - t0;
  if (elapsed > DEADLINE_MS) fail(`ReduceOnly took ${elapsed} ms to show, limit ${DEADLINE_MS}`);
  const headline = await page.textContent("#mode");
  if (!/REDUCE-ONLY/.test(headline)) fail("ReduceOnly headline wrong: " + headline);
  const bg = await page.$eval("#banner", (e) => getComputedStyle(e).backgroundColor);
  if (bg !== "rgb(216, 138, 0)") fail("ReduceOnly banner is not amber: " + bg);
  // The mode change itself is listed (newest first): Active -> ReduceOnly, with its reason.
  await page.waitForFunction((s) => {
    const row = document.querySelector("#transitions tbody tr");
    if (!row) return false;
    const c = Array.from(row.cells).map((x) => x.textContent);
    return c[1] === "Active" && c[2] === "ReduceOnly" && c[3].includes(s);
  }, sentence, { timeout: DEADLINE_MS });
  const transitionRow = await page.$eval("#transitions tbody tr", (r) => Array.from(r.cells).slice(1).map((x) => x.textContent));

  mkdirSync(dirname(shotPath), { recursive: true });
  await page.screenshot({ path: shotPath, fullPage: true });
  Object.assign(result, {
    ok: true, reduce_only_visible_after_ms: elapsed, limit_ms: DEADLINE_MS, headline: headline.trim(),
    reason_sentence: sentence, banner_background: bg, unauthenticated_status: [refused.status, wrong.status],
    newest_transition: transitionRow,
    screenshot: shotPath,
  });
  console.log(`dashboard e2e: PASS (ReduceOnly + reason visible ${elapsed} ms after the POST)`);
} catch (e) {
  Object.assign(result, { ok: false, error: String(e && e.message || e) });
  console.error("dashboard e2e: FAIL: " + result.error);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  result.finished_utc = new Date().toISOString();
  mkdirSync(dirname(resultPath), { recursive: true });
  writeFileSync(resultPath, JSON.stringify(result, null, 2) + "\n");
}
