// Loads the SockJS test page in Debian's Chromium, headless, through
// playwright-core (installed by tests/interop), optionally through an HTTP
// proxy, and prints the page's verdict as one JSON line.
//
//   node browser.js CHROMIUM PAGE_URL PROXY_URL|- [FLAG...]
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "interop", "node_modules", "playwright-core"));

const TIMEOUT = 60000;

async function main([executablePath, url, proxy, ...flags]) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "wsproto_tw-sockjs-chromium-"));
  const consoleLines = [];
  let context = null;
  let verdict;
  try {
    const options = { executablePath, headless: true, args: flags, timeout: TIMEOUT };
    if (proxy !== "-") {
      // Playwright proxies loopback too (it adds <-loopback> to the bypass
      // rules), so the page and SockJS both go through the proxy.
      options.proxy = { server: proxy };
    }
    context = await chromium.launchPersistentContext(profile, options);
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (message) => consoleLines.push(message.type() + ": " + message.text()));
    page.on("pageerror", (error) => consoleLines.push("pageerror: " + error.message));
    await page.goto(url, { timeout: TIMEOUT });
    await page.waitForFunction(() => window.verdict !== undefined, null, { timeout: TIMEOUT });
    verdict = await page.evaluate(() => window.verdict);
  } catch (error) {
    verdict = { errors: [String(error.stack || error)] };
  } finally {
    if (context !== null) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  verdict.console = consoleLines.slice(-30);
  process.stdout.write(JSON.stringify(verdict) + "\n", () => process.exit(0));
}

main(process.argv.slice(2));
