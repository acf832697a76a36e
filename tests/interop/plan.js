// The exchange a JavaScript peer runs against a wsproto_tw echo server: the
// same code runs in Chromium (loaded by page.html) and in Node.js (required
// by ws_peer.js with the ws package's WebSocket, which has the browser API).
//
// Each message is sent, its echo awaited and compared; then the peer closes
// with 1000 and the verdict lists every mismatch found.
(function (exports) {
  'use strict';

  const MIB = 1 << 20;
  const STEP_TIMEOUT = 20000;

  // Text whose UTF-8 form is exactly `size` bytes, with characters of every
  // UTF-8 length (four bytes included).
  function textOfBytes(size) {
    const unit = 'wsproto_tw: \u00e9 \u20ac \u{1D11E} \u{1F600} ';
    const encoder = new TextEncoder();
    let text = unit.repeat(Math.floor(size / encoder.encode(unit).length));
    return text + 'x'.repeat(size - encoder.encode(text).length);
  }

  // Bytes, half of them repetitive (compressible) and half pseudo-random.
  function bytesOf(size) {
    const bytes = new Uint8Array(size);
    let x = 12345;
    for (let i = 0; i < size; i++) {
      if (i < size / 2) {
        bytes[i] = (i >> 4) & 0xff;
      } else {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        bytes[i] = x >>> 24;
      }
    }
    return bytes;
  }

  function messages() {
    const small = new Uint8Array(256);
    for (let i = 0; i < 256; i++) small[i] = i;
    return [
      ['text', 'h\u00e9llo, w\u00f6rld: \u20ac \u{1D11E} \u{1F600}'],
      ['text', ''],
      ['binary', small],
      ['binary', new Uint8Array(0)],
      ['binary', bytesOf(MIB)],
      ['text', textOfBytes(MIB)],
    ];
  }

  // Why `got` is not the echo of `sent`, or null when it is.
  function mismatch(kind, sent, got) {
    if (kind === 'text') {
      if (typeof got !== 'string') return 'text echoed as ' + typeof got;
      if (got === sent) return null;
      return 'text of ' + sent.length + ' UTF-16 units echoed as ' + got.length;
    }
    if (!(got instanceof ArrayBuffer)) return 'binary echoed as ' + typeof got;
    const bytes = new Uint8Array(got);
    if (bytes.length !== sent.length) {
      return 'binary of ' + sent.length + ' bytes echoed as ' + bytes.length;
    }
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== sent[i]) return 'binary differs at byte ' + i;
    }
    return null;
  }

  // Run the exchange on `ws` (connecting or open). `ping`, if given, is an
  // async function that pings the server and resolves with an error
  // message or null. Resolves with the verdict.
  async function run(ws, ping) {
    const errors = [];
    const inbox = [];
    let wake = null;
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('message', (event) => {
      inbox.push(event.data);
      if (wake) wake();
    });
    const closed = new Promise((resolve) => ws.addEventListener('close', resolve));
    const opened = new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve);
      ws.addEventListener('error', () => reject(new Error('error event before open')));
    });

    // `promise`, failing after STEP_TIMEOUT or (unless `closing`) once the
    // connection closes.
    function within(promise, what, closing) {
      let timer;
      const racers = [promise];
      racers.push(new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error('timed out waiting for ' + what)), STEP_TIMEOUT);
      }));
      if (!closing) {
        racers.push(closed.then((event) => {
          throw new Error('closed (' + event.code + ') while waiting for ' + what);
        }));
      }
      return Promise.race(racers).finally(() => clearTimeout(timer));
    }

    function next(what) {
      if (inbox.length) return Promise.resolve(inbox.shift());
      return within(new Promise((resolve) => {
        wake = () => {
          wake = null;
          resolve(inbox.shift());
        };
      }), what);
    }

    let echoed = 0;
    try {
      await within(opened, 'the opening handshake');
      for (const [kind, payload] of messages()) {
        const what = 'the echo of a ' + kind + ' message of ' + payload.length;
        ws.send(payload);
        const problem = mismatch(kind, payload, await next(what));
        if (problem) errors.push(problem);
        else echoed += 1;
      }
      if (ping) {
        const problem = await within(ping(), 'a pong');
        if (problem) errors.push(problem);
      }
      ws.close(1000, 'done');
    } catch (error) {
      errors.push(String(error && error.message ? error.message : error));
      try {
        ws.close(1000, 'done');
      } catch (ignored) {
        // Not open: the close event reports what happened.
      }
    }
    let event = { code: null, reason: null, wasClean: false };
    try {
      event = await within(closed, 'the closing handshake', true);
    } catch (error) {
      errors.push(String(error.message));
    }
    return {
      errors: errors,
      echoed: echoed,
      protocol: ws.protocol,
      extensions: ws.extensions,
      closeCode: event.code,
      closeReason: event.reason,
      wasClean: event.wasClean,
    };
  }

  exports.run = run;
  exports.messages = messages;
})(typeof module !== 'undefined' ? module.exports : (globalThis.InteropPlan = {}));
