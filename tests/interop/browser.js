// Loads the interoperability page in Debian's Chromium, headless, through
// playwright-core (which downloads no browser), and prints the page's
// verdict as one JSON line.
//
//   node browser.js CHROMIUM PAGE_URL [FLAG...]
'use strict';

const { chromium } = require('playwright-core');
const { printAndExit, readPage, readVerdict } = require('./chromium.js');

async function main([executablePath, url, ...flags]) {
  printAndExit(await readPage(chromium, { executablePath, args: flags }, (page) => readVerdict(page, url)));
}

main(process.argv.slice(2));
