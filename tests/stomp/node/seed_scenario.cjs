// The seed scenario, shared by the STOMP clients under Node
// (tests/stomp/node/stompjs_client.cjs over ws, tests/sockjs/stomp_client.js
// over sockjs-client): connect as ann, subscribe to a topic and the user
// queue, send to the topic and to /app/shout, receive both, disconnect,
// print `result` as one JSON line and exit 0; on a STOMP error print
// {error, ...result} and exit 1.
//
// It requires nothing itself: the caller passes its own @stomp/stompjs
// Client class, so each one resolves from the caller's node_modules.
"use strict";

// Client: the @stomp/stompjs Client class.
// webSocketFactory: () => a new WebSocket-like object.
// result: the object to fill and print; its `received` list holds
//   [destination, body] pairs.
// greeting: the body sent to /topic/greetings.
// onConnect(frame): called on CONNECTED before subscribing, to add what
//   the caller reports about its connection to `result`.
function runSeedScenario({ Client, webSocketFactory, result, greeting, onConnect }) {
  const client = new Client({
    webSocketFactory,
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
    onConnect(frame);
    client.subscribe("/topic/greetings", received);
    client.subscribe("/user/queue/replies", received);
    client.publish({ destination: "/topic/greetings", body: greeting });
    client.publish({ destination: "/app/shout", body: "hey" });
  };

  client.onStompError = (frame) => {
    console.log(JSON.stringify({ error: frame.headers.message, ...result }));
    process.exit(1);
  };

  client.activate();
}

module.exports = { runSeedScenario };
