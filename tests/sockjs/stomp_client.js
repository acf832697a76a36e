// @stomp/stompjs over sockjs-client forced to one transport:
//   node stomp_client.js URL TRANSPORT
// connects as ann, subscribes to a topic and its user queue, sends to the
// topic and to /app/shout, receives both, disconnects. Prints one JSON
// line: {version, user, transport, received, closed} or {error}.
"use strict";
const SockJS = require("sockjs-client");
const { Client } = require("@stomp/stompjs");
const { runSeedScenario } = require("../stomp/node/seed_scenario.cjs");

const [url, transport] = process.argv.slice(2);
const result = { received: [] };
let sock = null;

setTimeout(() => {
  console.log(JSON.stringify({ error: "timed out", ...result }));
  process.exit(2);
}, 30000).unref();

runSeedScenario({
  Client,
  webSocketFactory: () => {
    sock = new SockJS(url, null, { transports: [transport] });
    return sock;
  },
  result,
  greeting: "hello over sockjs",
  onConnect: (frame) => {
    result.version = frame.headers.version;
    result.user = frame.headers["user-name"];
    result.transport = sock.transport;
  },
});
