// A peer built on the Node.js ws package, for the interoperability tests.
//
//   node ws_peer.js client URL SUBPROTOCOL DEFLATE
//       connects to a wsproto_tw echo server, offering SUBPROTOCOL (after
//       one the server does not speak) and, when DEFLATE is 1,
//       permessage-deflate; runs plan.js, pings, closes with 1000.
//   node ws_peer.js server SUBPROTOCOL DEFLATE
//       listens on a free loopback port (printed first, as
//       {"listening": PORT}), accepts one connection choosing SUBPROTOCOL,
//       echoes every message, pings once, and reports after the close.
//
// Both print their verdict as one JSON line and exit; the verdict's
// "errors" list is empty when everything went as planned.
'use strict';

const WebSocket = require('ws');
const plan = require('./plan.js');

const LIFETIME = 60000;
const MAX_PAYLOAD = 64 << 20;
const PING = Buffer.from('ping from ws');

function report(verdict) {
  verdict.peer = 'ws ' + require('ws/package.json').version + ', node ' + process.versions.node;
  process.stdout.write(JSON.stringify(verdict) + '\n', () => process.exit(0));
}

function deflateOptions(on) {
  // threshold 0: compress every message, however small.
  return on ? { threshold: 0 } : false;
}

function pinger(ws) {
  return () => new Promise((resolve) => {
    ws.once('pong', (data) => {
      resolve(data.equals(PING) ? null : 'pong payload ' + JSON.stringify(data.toString()));
    });
    ws.ping(PING);
  });
}

async function client(url, subprotocol, deflate) {
  const ws = new WebSocket(url, ['x-not-spoken', subprotocol], {
    perMessageDeflate: deflateOptions(deflate),
    maxPayload: MAX_PAYLOAD,
  });
  let extensionHeader = null;
  const pings = [];
  ws.on('upgrade', (response) => {
    extensionHeader = response.headers['sec-websocket-extensions'] || null;
  });
  ws.on('ping', (data) => pings.push(data.toString()));
  const verdict = await plan.run(ws, pinger(ws));
  verdict.extensionHeader = extensionHeader;
  verdict.pingsReceived = pings;
  report(verdict);
}

function server(subprotocol, deflate) {
  const errors = [];
  const verdict = { errors: errors, echoed: 0, pongs: [] };
  const wss = new WebSocket.WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: deflateOptions(deflate),
    maxPayload: MAX_PAYLOAD,
    handleProtocols: (offered) => (offered.has(subprotocol) ? subprotocol : false),
  });
  wss.on('listening', () => {
    process.stdout.write(JSON.stringify({ listening: wss.address().port }) + '\n');
  });
  wss.on('headers', (headers) => {
    const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
    verdict.extensionHeader = line ? line.slice(line.indexOf(':') + 1).trim() : null;
  });
  wss.on('connection', (ws, request) => {
    verdict.offeredExtensions = request.headers['sec-websocket-extensions'] || null;
    verdict.offeredProtocols = request.headers['sec-websocket-protocol'] || null;
    verdict.protocol = ws.protocol;
    verdict.extensions = ws.extensions;
    ws.on('message', (data, isBinary) => {
      verdict.echoed += 1;
      ws.send(data, { binary: isBinary });
    });
    ws.on('pong', (data) => verdict.pongs.push(data.toString()));
    ws.on('error', (error) => errors.push(String(error.message)));
    ws.on('close', (code, reason) => {
      verdict.closeCode = code;
      verdict.closeReason = reason.toString();
      wss.close();
      report(verdict);
    });
    ws.ping(PING);
  });
}

function main(argv) {
  setTimeout(() => report({ errors: ['no verdict within ' + LIFETIME + ' ms'] }), LIFETIME).unref();
  const [role, ...rest] = argv;
  if (role === 'client') {
    const [url, subprotocol, deflate] = rest;
    client(url, subprotocol, deflate === '1').catch((error) => report({ errors: [String(error.stack)] }));
  } else if (role === 'server') {
    const [subprotocol, deflate] = rest;
    server(subprotocol, deflate === '1');
  } else {
    process.stderr.write('usage: node ws_peer.js client URL SUBPROTOCOL DEFLATE | server SUBPROTOCOL DEFLATE\n');
    process.exit(2);
  }
}

main(process.argv.slice(2));
