// Node's own http2 client as a WebSocket-over-HTTP/2 peer (RFC 8441): opens
// COUNT WebSockets as extended CONNECT streams of one HTTP/2 connection,
// sends a text, a binary and a 70000-byte message on each (frames masked by
// hand), reads the echoes, closes with 1000, and prints one JSON verdict.
//
//   node http2_peer.js ORIGIN PATH COUNT
'use strict';

const http2 = require('http2');
const crypto = require('crypto');

const TIMEOUT = 30000;

function frame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  let head;
  if (payload.length < 126) {
    head = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
  } else if (payload.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(payload.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([head, mask, masked]);
}

// Complete server frames at the start of BUFFER, and what is left.
function parse(buffer) {
  const frames = [];
  for (;;) {
    if (buffer.length < 2) break;
    let length = buffer[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (buffer.length < 4) break;
      length = buffer.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (buffer.length < 10) break;
      length = Number(buffer.readBigUInt64BE(2));
      offset = 10;
    }
    if (buffer.length < offset + length) break;
    frames.push({ opcode: buffer[0] & 0x0f, payload: buffer.subarray(offset, offset + length) });
    buffer = buffer.subarray(offset + length);
  }
  return [frames, buffer];
}

function webSocket(session, path) {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': path,
      ':authority': new URL(session.originSet[0]).host,
      'sec-websocket-version': '13',
    });
    const big = crypto.randomBytes(70000);
    const expected = [
      [1, Buffer.from('héllo over node http2')],
      [2, Buffer.from([0, 255, 1])],
      [2, big],
    ];
    let buffer = Buffer.alloc(0);
    const got = [];
    let status = null;
    stream.on('response', (headers) => {
      status = headers[':status'];
      if (status !== 200) return reject(new Error('status ' + status));
      for (const [opcode, payload] of expected) stream.write(frame(opcode, payload));
    });
    stream.on('data', (chunk) => {
      let frames;
      [frames, buffer] = parse(Buffer.concat([buffer, chunk]));
      for (const f of frames) {
        got.push(f);
        if (got.length === expected.length) {
          stream.write(frame(8, Buffer.from([0x03, 0xe8])));
        }
      }
    });
    stream.on('end', () => {
      const echoed = expected.every(([op, p], i) => got[i] && got[i].opcode === op && got[i].payload.equals(p));
      const close = got[expected.length];
      resolve({
        status: status,
        echoed: echoed,
        closeCode: close && close.opcode === 8 ? close.payload.readUInt16BE(0) : null,
      });
      stream.end();
    });
    stream.on('error', reject);
  });
}

async function main([origin, path, count]) {
  const verdict = { errors: [] };
  const timer = setTimeout(() => {
    verdict.errors.push('timed out');
    finish();
  }, TIMEOUT);
  let session;
  function finish() {
    clearTimeout(timer);
    if (session) session.destroy();
    process.stdout.write(JSON.stringify(verdict) + '\n', () => process.exit(0));
  }
  try {
    session = http2.connect(origin, { rejectUnauthorized: false });
    session.on('error', (error) => verdict.errors.push(String(error)));
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    verdict.alpn = session.alpnProtocol;
    verdict.enableConnectProtocol = session.remoteSettings.enableConnectProtocol;
    const results = await Promise.all(
      Array.from({ length: Number(count) }, (_, i) => webSocket(session, `${path}/${i}`)),
    );
    verdict.results = results;
  } catch (error) {
    verdict.errors.push(String(error.stack || error));
  }
  finish();
}

main(process.argv.slice(2));
