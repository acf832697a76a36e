// @stomp/stompjs over sockjs-client forced to one transport:
//   node stomp_client.js URL TRANSPORT
// connects as ann, subscribes to a topic and its user queue, sends to the
// topic and to /app/shout, receives both, disconnects. Prints one JSON
// line: {version, user, transport, received, closed} or {error}.
"use strict";
const SockJS = require("sockjs-client");
const { Client } = require("@stomp/stompjs");

const [url, transport] = process.argv.slice(2);
const result = { received: [] };
let sock = null;

setTimeout(() => {
  console.log(JSON.stringify({ error: "timed out", ...result }));
  process.exit(2);
}, 30000).unref();

const client = new Client({
  webSocketFactory: () => {
    sock = new SockJS(url, null, { transports: [transport] });
    return sock;
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
  result.version = frame.headers.version;
  result.user = frame.headers["user-name"];
  result.transport = sock.transport;
  client.subscribe("/topic/greetings", received);
  client.subscribe("/user/queue/replies", received);
  client.publish({ destination: "/topic/greetings", body: "hello over sockjs" });
  client.publish({ destination: "/app/shout", body: "hey" });
};

client.onStompError = (frame) => {
  console.log(JSON.stringify({ error: frame.headers.message, ...result }));
  process.exit(1);
};

client.activate();
