// Drives soute's web UI in headless Chromium (playwright-core, axe-core) for
// tests/ui/browser.rs, which starts soute on loopback with real data, passes
// what to expect in SOUTE_UI (JSON) and asserts on the JSON this prints.
// It never talks to anything but the soute under test: the "other origin"
// page of the CSRF check is answered by playwright itself (page.route).
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const cfg = JSON.parse(process.env.SOUTE_UI);
const base = cfg.base;
const out = { steps: [], pages: [], axe: [], weights: {}, screenshots: [] };
const step = (name, data) => out.steps.push({ name, ...data });
const WIDTHS = [360, 1280];
mkdirSync(cfg.screenshots, { recursive: true });

const userDataDir = mkdtempSync(join(tmpdir(), "soute-ui-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: cfg.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
  viewport: { width: 1280, height: 900 },
  timeout: 30000,
});
context.setDefaultTimeout(15000);
const page = context.pages()[0] ?? (await context.newPage());
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));

// Bytes of the document, stylesheet and script a page loads.
async function visit(name, path) {
  let bytes = 0;
  const count = async (r) => {
    const t = r.request().resourceType();
    if (["document", "stylesheet", "script"].includes(t)) {
      try { bytes += (await r.body()).length; } catch { /* redirects have no body */ }
    }
  };
  page.on("response", count);
  const resp = await page.goto(base + path, { waitUntil: "load" });
  await page.waitForLoadState("networkidle");
  page.off("response", count);
  out.weights[name] = bytes;
  return resp;
}

// Screenshots at each width, and an axe scan.
async function record(name) {
  for (const w of WIDTHS) {
    await page.setViewportSize({ width: w, height: w === 360 ? 740 : 900 });
    const file = join(cfg.screenshots, `${name}-${w}.png`);
    await page.screenshot({ path: file, fullPage: true });
    out.screenshots.push(file);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    out.pages.push({ name, width: w, overflow });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  for (const v of result.violations) {
    out.axe.push({ page: name, id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) });
  }
}

async function signIn(user, password) {
  await visit("login", "/ui/login");
  await page.fill("#user", user);
  await page.fill("#secret", password);
  await Promise.all([page.waitForURL(base + "/ui/"), page.click("form[action='/ui/login'] button[type=submit]")]);
  return await page.locator("header .who").innerText();
}

try {
  // Anonymous: the sign-in page.
  await visit("login", "/ui/login");
  await record("login");

  step("sign in", { who: await signIn(cfg.admin[0], cfg.admin[1]) });
  await visit("repositories", "/ui/");
  await record("repositories");
  const space = await page.$$eval("tbody tr", (rows) => rows.map((r) => {
    const exact = (i) => Number(r.children[i].querySelector(".size").getAttribute("title").split(" ")[0]);
    return { name: r.children[0].innerText, unique: exact(4), shared: exact(5) };
  }));
  step("repositories", { names: await page.locator("tbody tr td:first-child a").allInnerTexts(), space });

  await visit("repository", "/ui/r/lab/app");
  await record("repository");

  // The multi-arch image: per platform its digest, exact size and layers.
  await visit("image", "/ui/i/lab/app:multi");
  await record("image");
  const platforms = await page.$$eval("section.card", (cards) => cards.map((c) => ({
    platform: c.querySelector("h2").firstChild.textContent.trim(),
    size: Number(c.querySelector("h2 .size").getAttribute("title").split(" ")[0]),
    digest: c.querySelector("p code.digest").getAttribute("title"),
    layers: [...c.querySelectorAll("tr.layer")].map((r) => ({
      digest: r.dataset.digest, size: Number(r.dataset.size), others: Number(r.dataset.others),
    })),
    copyButtons: 0,
  })));
  const copies = await page.locator("button[data-copy]").count();
  step("image", { platforms, copyButtons: copies });

  // Delete two tags at once, through the confirmation page.
  await visit("repository", "/ui/r/lab/app");
  await page.check('input[name=tag][value="old-1"]');
  await page.check('input[name=tag][value="old-2"]');
  const label = await page.locator("#delete-selected").innerText();
  await Promise.all([page.waitForURL(base + "/ui/delete"), page.click("#delete-selected")]);
  await record("delete-confirm");
  const frees = Number(await page.locator("#frees").getAttribute("data-bytes"));
  await Promise.all([page.waitForURL(base + "/ui/r/lab/app"), page.click("button.danger")]);
  const left = await page.locator("input[name=tag]").evaluateAll((e) => e.map((x) => x.value));
  step("delete", { label, frees, left });

  // Roll `moving` back to its first digest.
  await visit("history", "/ui/h/lab/app:moving");
  await record("history");
  const button = page.locator(`form:has(input[name=digest][value="${cfg.rollbackTo}"]) button`);
  await Promise.all([page.waitForURL(base + "/ui/h/lab/app:moving"), button.first().click()]);
  const newest = await page.locator("tbody tr:first-child td:nth-child(2) code").getAttribute("title");
  step("rollback", { newest });

  // The annotation holding markup is text, and runs nothing.
  await visit("xss", "/ui/i/lab/app:xss");
  const xss = await page.evaluate(() => ({
    executed: window.__xss ?? null,
    shown: document.body.innerText.includes("<script>window.__xss=1</script>"),
    injected: document.querySelectorAll("main script, main img").length,
  }));
  step("xss", xss);

  await visit("dashboard", "/ui/dashboard");
  await page.click("button[name=mode][value=dry]");
  await page.waitForSelector("#gc-report");
  await record("dashboard");
  await visit("admin", "/ui/admin");
  await record("admin");
  // A user created in the admin page (signs in at the end).
  await page.fill("#user-name", cfg.created[0]);
  await page.fill("#user-password", cfg.created[1]);
  // Post, redirect, get: the form answers 303 to the admin page, which
  // shows what it did once.
  await page.click("form[action='/ui/admin/user/add'] button");
  await page.waitForSelector("#done");
  step("user added url", { url: page.url() });
  await record("admin-user-added");
  step("user added", { done: await page.locator("#done").innerText() });

  // A form on another origin (127.0.0.2, answered by playwright) posting
  // a delete with a valid CSRF token: refused, nothing deleted.
  await visit("repository", "/ui/r/lab/app");
  const csrf = await page.locator("input[name=csrf]").first().inputValue();
  const evil = cfg.base.replace("127.0.0.1", "127.0.0.2") + "/evil";
  await page.route(evil, (route) => route.fulfill({
    contentType: "text/html",
    body: `<form id=f method=post action="${base}/ui/delete"><input name=csrf value="${csrf}">` +
      `<input name=repo value="lab/app"><input name=tag value="keep"><input name=confirm value="yes">` +
      `<button id=go>go</button></form>`,
  }));
  await page.goto(evil);
  const [csrfResp] = await Promise.all([
    page.waitForResponse((r) => r.url() === base + "/ui/delete"),
    page.click("#go"),
  ]);
  step("csrf", { status: csrfResp.status() });

  // Sign out: the admin pages are closed again.
  await visit("repositories", "/ui/");
  await Promise.all([page.waitForURL(base + "/ui/"), page.click("header button.link")]);
  const afterOut = await visit("dashboard-after-sign-out", "/ui/dashboard");
  step("sign out", { who: await page.locator("header .who").innerText(), dashboard: afterOut.status() });
  await record("error");

  // The reader: only what it may pull, no admin.
  step("reader sign in", { who: await signIn(cfg.reader[0], cfg.reader[1]) });
  const names = await page.locator("tbody tr td:first-child a").allInnerTexts();
  const adminStatus = (await visit("admin-as-reader", "/ui/admin")).status();
  const secretStatus = (await visit("secret-as-reader", "/ui/r/team/secret")).status();
  step("reader", { names, admin: adminStatus, secret: secretStatus });
  step("created sign in", { who: await signIn(cfg.created[0], cfg.created[1]) });

  // Dark mode (prefers-color-scheme), for the person reading the screenshots.
  await page.emulateMedia({ colorScheme: "dark" });
  await visit("repositories", "/ui/");
  await record("dark-repositories");
  await page.emulateMedia({ colorScheme: "light" });

  // Keyboard: the first Tab reaches the skip link.
  await visit("repositories", "/ui/");
  await page.keyboard.press("Tab");
  step("keyboard", { focused: await page.evaluate(() => document.activeElement?.textContent ?? "") });
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
} finally {
  out.consoleErrors = consoleErrors;
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(out) + "\n");
}
