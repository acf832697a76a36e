// Drives examples/stomp_ticker's page in Debian's Chromium, headless,
// through playwright-core: waits for an ACME price, clicks "buy 10", waits
// for the holding to show 10, and prints what it saw as one JSON line.
//
//   node ticker.cjs CHROMIUM PAGE_URL
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const TIMEOUT = 30000;

async function run(executablePath, url) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "wsproto_tw-ticker-"));
  const result = { console: [] };
  let context = null;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, timeout: TIMEOUT });
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (message) => result.console.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => result.console.push(`pageerror: ${error.message}`));
    await page.goto(url, { timeout: TIMEOUT });
    await page.waitForFunction(() => {
      const cell = document.querySelector("#q-ACME .price");
      return cell !== null && cell.textContent !== "";
    }, null, { timeout: TIMEOUT });
    result.status = await page.textContent("#status");
    result.price = await page.textContent("#q-ACME .price");
    await page.click("#q-ACME button");
    await page.waitForFunction(() => document.querySelector("#q-ACME .held").textContent === "10", null, { timeout: TIMEOUT });
    result.held = await page.textContent("#q-ACME .held");
  } catch (error) {
    result.error = String(error.stack || error);
  } finally {
    if (context !== null) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
}

run(process.argv[2], process.argv[3]);
