// The seed scenario with @stomp/stompjs under Node (the ws package as its
// WebSocket): offer v10.stomp and v11.stomp, connect, subscribe to a topic
// and a user queue, send to the topic and to an /app destination, receive
// both, disconnect. Prints one JSON line; exits 0, or 1 on a STOMP error,
// 2 on a timeout. Usage: node stompjs_client.cjs URL
"use strict";
const { Client } = require("@stomp/stompjs");
const WebSocket = require("ws");
const { runSeedScenario } = require("./seed_scenario.cjs");

const url = process.argv[2];
const result = { received: [] };
let socket = null;

setTimeout(() => {
  console.log(JSON.stringify({ timeout: true, ...result }));
  process.exit(2);
}, 20000);

runSeedScenario({
  Client,
  webSocketFactory: () => {
    socket = new WebSocket(url, ["v10.stomp", "v11.stomp"]);
    return socket;
  },
  result,
  greeting: "hello from stompjs",
  onConnect: (frame) => {
    result.subprotocol = socket.protocol;
    result.version = frame.headers.version;
    result.user = frame.headers["user-name"];
  },
});
