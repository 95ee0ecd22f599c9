// Headless Chromium through the served doc UIs, as a person would use them:
// Swagger UI at /docs (register through "Try it out", authorize with the
// returned token, create a task and see 201), then ReDoc at /redoc (the
// operations are listed).
//
// Usage: node browser.mjs BASE_URL   (Chromium at /usr/bin/chromium, or CHROMIUM)
import { chromium } from "playwright-core";

const base = (process.argv[2] ?? "").replace(/\/$/, "");
if (!base) {
  console.error("usage: node browser.mjs BASE_URL");
  process.exit(2);
}
const shots = process.env.SCREENSHOT_DIR;

function step(text) {
  console.log(`  - ${text}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
});
const page = await browser.newPage();
page.setDefaultTimeout(20_000);
const problems = [];
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

/** Runs an operation in Swagger UI and returns its status and response body. */
async function tryItOut(block, body) {
  const operation = page.locator(block);
  await operation.locator(".opblock-summary").first().click();
  await operation.locator("button.try-out__btn").click();
  if (body !== undefined) {
    const editor = operation.locator("textarea.body-param__text");
    await editor.fill(JSON.stringify(body, null, 2));
  }
  await operation.locator("button.execute").click();
  const status = operation.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor();
  const code = Number((await status.innerText()).trim().split(/\s+/)[0]);
  const text = await operation.locator(".live-responses-table .response-col_description pre").first().innerText();
  return { code, body: text };
}

try {
  await page.goto(`${base}/docs`);
  await page.locator("#operations-Auth-register").waitFor();
  step("Swagger UI: the document is rendered");

  const email = `browser-${Date.now()}@example.com`;
  const registered = await tryItOut("#operations-Auth-register", {
    email,
    password: "browser-password-1",
    name: "Browser",
  });
  if (registered.code !== 201) throw new Error(`register answered ${registered.code}: ${registered.body}`);
  const token = JSON.parse(registered.body).data.access_token;
  if (!token) throw new Error(`no access_token in ${registered.body}`);
  step("Swagger UI: register through Try it out: 201");

  await page.locator("button.btn.authorize").first().click();
  const dialog = page.locator(".modal-ux");
  await dialog.locator("input").first().fill(token);
  await dialog.locator("button.authorize").first().click();
  await dialog.locator("button.btn-done, button.close-modal").first().click();
  step("Swagger UI: authorized with the returned token");

  const created = await tryItOut("#operations-Tasks-create_task", { title: "Made in Swagger UI", priority: "high" });
  if (created.code !== 201) throw new Error(`create_task answered ${created.code}: ${created.body}`);
  const task = JSON.parse(created.body).data;
  if (task.title !== "Made in Swagger UI") throw new Error(`unexpected task ${created.body}`);
  step("Swagger UI: create_task through Try it out: 201");
  if (shots) await page.screenshot({ path: `${shots}/swagger.png`, fullPage: false });

  await page.goto(`${base}/redoc`);
  for (const summary of ["Register a new account", "Create a task", "Create a séance session hosted by the caller"]) {
    await page.locator("h2").filter({ hasText: summary }).first().waitFor();
  }
  const operations = await page.locator("[data-section-id*='/operation/']").count();
  if (operations < 20) throw new Error(`ReDoc shows only ${operations} operations`);
  step(`ReDoc: the operations are listed (${operations} operation sections)`);
  if (shots) await page.screenshot({ path: `${shots}/redoc.png`, fullPage: false });

  if (problems.length) throw new Error(problems.join("\n"));
  console.log("browser: ok");
} catch (error) {
  if (shots) await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser check failed: ${error.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
