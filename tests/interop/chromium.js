// Shared by the scripts that drive Debian's Chromium, headless, through
// playwright-core (which downloads no browser): tests/interop/browser.js,
// tests/interop/status.js and tests/sockjs/browser.js.
//
// It requires no npm package itself: each caller passes the `chromium`
// of the playwright-core it loaded.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

// Milliseconds allowed for the launch and for each step on the page.
const TIMEOUT = 60000;

// Launch Chromium on a fresh, empty profile (a persistent context is how
// Playwright takes a --user-data-dir), open one page, and return what
// `read(page)` resolves to, an object; or {errors: [stack]} if anything
// failed. Either way the result gets `console`: the page's console
// messages and uncaught errors, as "type: text" strings. The browser is
// closed and the profile removed.
//
// chromium: playwright-core's `chromium`.
// launch: more options for launchPersistentContext ({executablePath,
//   args, proxy, ...}).
// profilePrefix: the temporary profile folder's name prefix.
async function readPage(chromium, launch, read, profilePrefix = 'wsproto_tw-chromium-') {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), profilePrefix));
  const consoleLines = [];
  let context = null;
  let result;
  try {
    context = await chromium.launchPersistentContext(profile, { headless: true, timeout: TIMEOUT, ...launch });
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (message) => consoleLines.push(message.type() + ': ' + message.text()));
    page.on('pageerror', (error) => consoleLines.push('pageerror: ' + error.message));
    result = await read(page);
  } catch (error) {
    result = { errors: [String(error.stack || error)] };
  } finally {
    if (context !== null) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  result.console = consoleLines;
  return result;
}

// Open `url` on `page` and wait for the page to set window.verdict.
//
// Returns window.verdict.
async function readVerdict(page, url) {
  await page.goto(url, { timeout: TIMEOUT });
  await page.waitForFunction(() => window.verdict !== undefined, null, { timeout: TIMEOUT });
  return page.evaluate(() => window.verdict);
}

// Print `result` as one JSON line, then exit 0 once it is written.
function printAndExit(result) {
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

module.exports = { TIMEOUT, printAndExit, readPage, readVerdict };
