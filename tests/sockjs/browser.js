// Loads the SockJS test page in Debian's Chromium, headless, through
// playwright-core (installed by tests/interop), optionally through an HTTP
// proxy, and prints the page's verdict as one JSON line.
//
//   node browser.js CHROMIUM PAGE_URL PROXY_URL|- [FLAG...]
"use strict";

const path = require("path");
const interop = path.join(__dirname, "..", "interop");
const { chromium } = require(path.join(interop, "node_modules", "playwright-core"));
const { printAndExit, readPage, readVerdict } = require(path.join(interop, "chromium.js"));

async function main([executablePath, url, proxy, ...flags]) {
  const options = { executablePath, args: flags };
  if (proxy !== "-") {
    // Playwright proxies loopback too (it adds <-loopback> to the bypass
    // rules), so the page and SockJS both go through the proxy.
    options.proxy = { server: proxy };
  }
  const verdict = await readPage(chromium, options, (page) => readVerdict(page, url), "wsproto_tw-sockjs-chromium-");
  verdict.console = verdict.console.slice(-30);
  printAndExit(verdict);
}

main(process.argv.slice(2));
