// Loads wsproto_tw's /status page in Debian's Chromium, headless, through
// playwright-core, waits until the page has refreshed REFRESHES times, and
// prints what it shows as one JSON line: the text of each figure by its
// element id, each table's rows as arrays of cell texts, and whether each
// element with an id is displayed.
//
//   node status.js CHROMIUM PAGE_URL REFRESHES [FLAG...]
'use strict';

const { chromium } = require('playwright-core');
const { TIMEOUT, printAndExit, readPage } = require('./chromium.js');

async function main([executablePath, url, refreshes, ...flags]) {
  printAndExit(await readPage(chromium, { executablePath, args: flags }, async (page) => {
    const requests = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(url, { timeout: TIMEOUT });
    await page.waitForFunction(
      (n) => Number(document.body.dataset.refreshes) >= n, Number(refreshes), { timeout: TIMEOUT });
    const shown = await page.evaluate(() => {
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
    return shown;
  }));
}

main(process.argv.slice(2));
