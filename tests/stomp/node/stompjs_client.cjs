// The seed scenario with @stomp/stompjs under Node (the ws package as its
// WebSocket): offer v10.stomp and v11.stomp, connect, subscribe to a topic
// and a user queue, send to the topic and to an /app destination, receive
// both, disconnect. Prints one JSON line; exits 0, or 1 on a STOMP error,
// 2 on a timeout. Usage: node stompjs_client.cjs URL
"use strict";
const { Client } = require("@stomp/stompjs");
const WebSocket = require("ws");

const url = process.argv[2];
const result = { received: [] };
let socket = null;

setTimeout(() => {
  console.log(JSON.stringify({ timeout: true, ...result }));
  process.exit(2);
}, 20000);

const client = new Client({
  webSocketFactory: () => {
    socket = new WebSocket(url, ["v10.stomp", "v11.stomp"]);
    return socket;
  },
  connectHeaders: { login: "ann", passcode: "secret" },
  reconnectDelay: 0,
  heartbeatIncoming: 0,
  heartbeatOutgoing: 0,
  debug: () => {},
});

function received(message) {
  result.received.push([message.headers.destination, message.body]);
  if (result.received.length === 2) {
    client.deactivate().then(() => {
      result.closed = true;
      console.log(JSON.stringify(result));
      process.exit(0);
    });
  }
}

client.onConnect = (frame) => {
  result.subprotocol = socket.protocol;
  result.version = frame.headers.version;
  result.user = frame.headers["user-name"];
  client.subscribe("/topic/greetings", received);
  client.subscribe("/user/queue/replies", received);
  client.publish({ destination: "/topic/greetings", body: "hello from stompjs" });
  client.publish({ destination: "/app/shout", body: "hey" });
};

client.onStompError = (frame) => {
  console.log(JSON.stringify({ error: frame.headers.message, ...result }));
  process.exit(1);
};

client.activate();
