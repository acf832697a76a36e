// Loads wsproto_tw's /status page in Debian's Chromium, headless, through
// playwright-core, waits until the page has refreshed REFRESHES times, and
// prints what it shows as one JSON line: the text of each figure by its
// element id, each table's rows as arrays of cell texts, and whether each
// element with an id is displayed.
//
//   node status.js CHROMIUM PAGE_URL REFRESHES [FLAG...]
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const TIMEOUT = 60000;

async function main([executablePath, url, refreshes, ...flags]) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsproto_tw-chromium-'));
  const consoleLines = [];
  let context = null;
  let shown;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: executablePath,
      headless: true,
      args: flags,
      timeout: TIMEOUT,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (message) => consoleLines.push(message.type() + ': ' + message.text()));
    page.on('pageerror', (error) => consoleLines.push('pageerror: ' + error.message));
    const requests = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(url, { timeout: TIMEOUT });
    await page.waitForFunction(
      (n) => Number(document.body.dataset.refreshes) >= n, Number(refreshes), { timeout: TIMEOUT });
    shown = await page.evaluate(() => {
      const figures = {};
      document.querySelectorAll('[id]').forEach((element) => {
        if (element.tagName !== 'TABLE') figures[element.id] = element.textContent.trim();
      });
      const tables = {};
      document.querySelectorAll('table[id]').forEach((table) => {
        tables[table.id] = Array.from(table.querySelectorAll('tbody tr'), (row) =>
          Array.from(row.cells, (cell) => cell.textContent.trim()));
      });
      const visible = {};
      document.querySelectorAll('[id]').forEach((element) => {
        visible[element.id] = element.offsetParent !== null || element.tagName === 'BODY';
      });
      return { figures, tables, visible };
    });
    shown.requests = requests;
  } catch (error) {
    shown = { errors: [String(error.stack || error)] };
  } finally {
    if (context !== null) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  shown.console = consoleLines;
  process.stdout.write(JSON.stringify(shown) + '\n', () => process.exit(0));
}

main(process.argv.slice(2));
