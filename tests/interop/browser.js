// Loads the interoperability page in Debian's Chromium, headless, through
// playwright-core (which downloads no browser), and prints the page's
// verdict as one JSON line.
//
//   node browser.js CHROMIUM PAGE_URL [FLAG...]
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const TIMEOUT = 60000;

async function main([executablePath, url, ...flags]) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsproto_tw-chromium-'));
  const consoleLines = [];
  let context = null;
  let verdict;
  try {
    // A persistent context is how Playwright takes a --user-data-dir: a
    // fresh, empty one each run.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: executablePath,
      headless: true,
      args: flags,
      timeout: TIMEOUT,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (message) => consoleLines.push(message.type() + ': ' + message.text()));
    page.on('pageerror', (error) => consoleLines.push('pageerror: ' + error.message));
    await page.goto(url, { timeout: TIMEOUT });
    await page.waitForFunction(() => window.verdict !== undefined, null, { timeout: TIMEOUT });
    verdict = await page.evaluate(() => window.verdict);
  } catch (error) {
    verdict = { errors: [String(error.stack || error)] };
  } finally {
    if (context !== null) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  verdict.console = consoleLines;
  process.stdout.write(JSON.stringify(verdict) + '\n', () => process.exit(0));
}

main(process.argv.slice(2));
