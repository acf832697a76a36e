// Opens a page in Debian's Chromium, headless, through playwright-core (no
// browser download), waits for the page to set window.verdict, and prints
// it as one JSON line with the page's console output.
//
//   node browser.cjs CHROMIUM PAGE_URL
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const TIMEOUT = 30000;

async function run(executablePath, url) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "wsproto_tw-stomp-"));
  const lines = [];
  let context = null;
  let verdict;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, timeout: TIMEOUT });
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (message) => lines.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => lines.push(`pageerror: ${error.message}`));
    await page.goto(url, { timeout: TIMEOUT });
    await page.waitForFunction(() => window.verdict !== undefined, null, { timeout: TIMEOUT });
    verdict = await page.evaluate(() => window.verdict);
  } catch (error) {
    verdict = { error: String(error.stack || error) };
  } finally {
    if (context !== null) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  verdict.console = lines;
  process.stdout.write(JSON.stringify(verdict) + "\n", () => process.exit(0));
}

run(process.argv[2], process.argv[3]);
