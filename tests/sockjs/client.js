// sockjs-client, forced to one transport, against an echo server:
//   node client.js URL TRANSPORT
// sends each message of the plan, checks its echo, closes, and prints one
// JSON line: {transport, echoed, errors, closeCode}.
"use strict";
const SockJS = require("sockjs-client");

const [url, transport] = process.argv.slice(2);
const plan = [
  "hello",
  "",
  "caf\u00e9 \u4e16\u754c \ud83d\ude00",
  "\u2028\u2029\u200c\ufeff\ufff0 \u0000\n\"\\",
  '["not","a","frame"]',
  "x".repeat(150000),
];
for (let i = 0; i < 50; i++) plan.push("burst " + i);

const verdict = { transport: null, echoed: 0, errors: [], closeCode: null };
const done = (code) => {
  verdict.closeCode = code;
  process.stdout.write(JSON.stringify(verdict) + "\n");
  process.exit(0);
};
setTimeout(() => {
  verdict.errors.push("timed out after " + verdict.echoed + " echoes");
  done(null);
}, 60000).unref();

const sock = new SockJS(url, null, { transports: [transport] });
let expected = 0;
sock.onopen = () => {
  verdict.transport = sock.transport;
  // The first message alone, then the rest at once.
  sock.send(plan[0]);
};
sock.onmessage = (event) => {
  if (event.data !== plan[expected]) {
    verdict.errors.push(`message ${expected}: got ${JSON.stringify(String(event.data).slice(0, 80))}`);
  }
  expected += 1;
  verdict.echoed = expected;
  if (expected === 1) {
    for (const message of plan.slice(1)) sock.send(message);
  } else if (expected === plan.length) {
    sock.close(1000, "done");
  }
};
sock.onclose = (event) => {
  if (expected !== plan.length) verdict.errors.push(`closed early: ${event.code} ${event.reason}`);
  done(event.code);
};
