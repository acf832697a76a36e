// Benchmark peer: Node's ws, the echo server of its README (and its
// "broadcast to all connected clients" example with --broadcast).
//
// Usage: node ws_echo.js PORT [--compression] [--broadcast]
//
//   --compression  perMessageDeflate on (ws's default is off): a client
//                  offering permessage-deflate gets it.
//   --broadcast    every message from one client goes to every open
//                  client, the sender included.
//
// ws is found through NODE_PATH (bench/run.py installs it, with its
// optional bufferutil, under bench/out/node).

"use strict";

const { WebSocketServer, WebSocket } = require("ws");

const port = parseInt(process.argv[2], 10);
const compression = process.argv.includes("--compression");
const broadcast = process.argv.includes("--broadcast");

// No size limit (maxPayload 0): the benchmark sends messages of up to 16 MiB.
const wss = new WebSocketServer({ host: "127.0.0.1", port, maxPayload: 0, perMessageDeflate: compression });

if (broadcast) {
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => {
      wss.clients.forEach((client) => {
        if (client.readyState === WebSocket.OPEN) {
          client.send(data, { binary: isBinary });
        }
      });
    });
  });
} else {
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => {
      ws.send(data, { binary: isBinary });
    });
  });
}

wss.on("listening", () => {
  console.log(`listening on ${wss.address().port}`);
});
