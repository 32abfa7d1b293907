#!/usr/bin/env node
// Node (@grpc/grpc-js) reference client for a subset of the gRPC interop cases
// (interop-test-descriptions.md), a second independent implementation beside
// interop_client.py.
//
// Usage: node interop_client.js --server_host H --server_port P --test_case NAME
//          [--use_tls=false] [--proto_root DIR]
// Exit status 0 iff the case passed; on failure the reason is printed (2: bad usage).
// The .proto files are loaded at run time from --proto_root, else
// $RAWGRPC_INTEROP_PROTO_ROOT, else <repo>/proto. Every call has a 30 s deadline (but
// timeout_on_sleeping_server's 1 ms) so a stuck server fails the case, not hangs it.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEADLINE_MS = 30000;
const ECHO_INITIAL = ['x-grpc-test-echo-initial', 'test_initial_metadata_value'];
const ECHO_TRAILING = ['x-grpc-test-echo-trailing-bin', Buffer.from([0xab, 0xab, 0xab])];

class Failure extends Error {}
function expect(cond, what) {
  if (!cond) throw new Failure(what);
}
const deadline = (ms = DEADLINE_MS) => ({ deadline: Date.now() + ms });
const zeros = (n) => ({ type: 'COMPRESSABLE', body: Buffer.alloc(n) });
const streamingRequest = (sizes, body = 0) => ({
  response_parameters: sizes.map((size) => ({ size })),
  payload: body ? zeros(body) : null,
});

function expectPayload(payload, size, what = 'response') {
  expect(payload, `${what}: no payload`);
  expect(payload.type === 'COMPRESSABLE', `${what}: payload type ${payload.type}, want COMPRESSABLE`);
  expect(payload.body.length === size, `${what}: payload body is ${payload.body.length} bytes, want ${size}`);
  expect(payload.body.every((b) => b === 0), `${what}: payload body is not all zeros`);
}

function expectStatus(status, code, details) {
  const name = (c) => Object.keys(grpc.status).find((k) => grpc.status[k] === c) || c;
  expect(status.code === code, `status ${name(status.code)} (${JSON.stringify(status.details)}), want ${name(code)}`);
  if (details !== undefined) {
    expect(status.details === details, `status message ${JSON.stringify(status.details)}, want ${JSON.stringify(details)}`);
  }
}

// A unary or client-streaming call as a promise of {err, resp, initial, status}.
// `start(callback)` starts it and returns the call; `write(call)` may write to it.
function unary(start) {
  return new Promise((resolve) => {
    const out = { initial: null };
    let pending = 2; // the callback and the 'status' event, in either order
    const done = () => --pending || resolve(out);
    const call = start((err, resp) => {
      Object.assign(out, { err, resp });
      done();
    });
    call.on('metadata', (md) => (out.initial = md));
    call.on('status', (status) => {
      out.status = status;
      done();
    });
    out.call = call;
  });
}

// Server- or bidi-streaming call: collects messages; `next()` awaits one;
// `finished` resolves with the final status (grpc-js always emits 'status').
function streaming(call) {
  const s = { call, msgs: [], initial: null, waiters: [], ended: false };
  call.on('metadata', (md) => (s.initial = md));
  call.on('data', (msg) => {
    const w = s.waiters.shift();
    if (w) w(msg);
    else s.msgs.push(msg);
  });
  call.on('error', () => {}); // reported through 'status' instead
  s.finished = new Promise((resolve) =>
    call.on('status', (status) => {
      s.ended = true;
      s.waiters.splice(0).forEach((w) => w(null));
      resolve(status);
    }),
  );
  s.next = () => (s.msgs.length ? Promise.resolve(s.msgs.shift()) : s.ended ? Promise.resolve(null) : new Promise((r) => s.waiters.push(r)));
  return s;
}

function echoMetadata() {
  const md = new grpc.Metadata();
  md.add(...ECHO_INITIAL);
  md.add(...ECHO_TRAILING);
  return md;
}

function expectEchoedMetadata(initial, trailing, what) {
  const got = initial ? initial.get(ECHO_INITIAL[0]) : [];
  expect(got.length === 1 && got[0] === ECHO_INITIAL[1], `${what}: initial metadata ${ECHO_INITIAL[0]}=${JSON.stringify(got)}, want ${ECHO_INITIAL[1]}`);
  const bin = trailing ? trailing.get(ECHO_TRAILING[0]) : [];
  expect(
    bin.length === 1 && Buffer.isBuffer(bin[0]) && bin[0].equals(ECHO_TRAILING[1]),
    `${what}: trailing metadata ${ECHO_TRAILING[0]}=${JSON.stringify(bin)}, want 0xababab`,
  );
}

async function expectEchoedStatus(c, message, duplex) {
  const response_status = { code: 2, message };
  const r = await unary((cb) => c.test.UnaryCall({ response_status }, deadline(), cb));
  expect(r.err, 'UnaryCall succeeded, want status UNKNOWN');
  expectStatus(r.err, grpc.status.UNKNOWN, message);
  if (duplex) {
    const s = streaming(c.test.FullDuplexCall(deadline()));
    s.call.write({ response_status });
    s.call.end();
    expectStatus(await s.finished, grpc.status.UNKNOWN, message);
  }
}

const CASES = {
  async empty_unary(c) {
    const r = await unary((cb) => c.test.EmptyCall({}, deadline(), cb));
    expectStatus(r.status, grpc.status.OK);
    expect(r.resp !== null && typeof r.resp === 'object', 'no response');
  },

  async large_unary(c) {
    const req = { response_size: 314159, payload: zeros(271828) };
    const r = await unary((cb) => c.test.UnaryCall(req, deadline(), cb));
    expectStatus(r.status, grpc.status.OK);
    expectPayload(r.resp.payload, 314159);
  },

  async client_streaming(c) {
    const r = await unary((cb) => {
      const call = c.test.StreamingInputCall(deadline(), cb);
      for (const n of [27182, 8, 1828, 45904]) call.write({ payload: zeros(n) });
      call.end();
      return call;
    });
    expectStatus(r.status, grpc.status.OK);
    expect(r.resp.aggregated_payload_size === 74922, `aggregated_payload_size ${r.resp.aggregated_payload_size}, want 74922`);
  },

  async server_streaming(c) {
    const sizes = [31415, 9, 2653, 58979];
    const s = streaming(c.test.StreamingOutputCall(streamingRequest(sizes), deadline()));
    expectStatus(await s.finished, grpc.status.OK);
    expect(s.msgs.length === 4, `${s.msgs.length} responses, want 4`);
    s.msgs.forEach((msg, i) => expectPayload(msg.payload, sizes[i], `response ${i}`));
  },

  async ping_pong(c) {
    const s = streaming(c.test.FullDuplexCall(deadline()));
    const steps = [[31415, 27182], [9, 8], [2653, 1828], [58979, 45904]];
    for (const [i, [size, body]] of steps.entries()) {
      s.call.write(streamingRequest([size], body));
      const msg = await s.next();
      expect(msg, `stream ended before response ${i}`);
      expectPayload(msg.payload, size, `response ${i}`);
    }
    s.call.end();
    expectStatus(await s.finished, grpc.status.OK);
    expect(s.msgs.length === 0, `${s.msgs.length} extra responses after the fourth`);
  },

  async empty_stream(c) {
    const s = streaming(c.test.FullDuplexCall(deadline()));
    s.call.end();
    expectStatus(await s.finished, grpc.status.OK);
    expect(s.msgs.length === 0, `${s.msgs.length} responses, want 0`);
  },

  async timeout_on_sleeping_server(c) {
    const s = streaming(c.test.FullDuplexCall(deadline(1)));
    s.call.write({ payload: zeros(27182) }); // and no half-close
    expectStatus(await s.finished, grpc.status.DEADLINE_EXCEEDED);
  },

  async cancel_after_begin(c) {
    const r = await unary((cb) => {
      const call = c.test.StreamingInputCall(deadline(), cb);
      call.cancel();
      return call;
    });
    expectStatus(r.status, grpc.status.CANCELLED);
  },

  async cancel_after_first_response(c) {
    const s = streaming(c.test.FullDuplexCall(deadline()));
    s.call.write(streamingRequest([31415], 27182));
    const msg = await s.next();
    expect(msg, 'stream ended before the first response');
    expectPayload(msg.payload, 31415);
    s.call.cancel();
    expectStatus(await s.finished, grpc.status.CANCELLED);
  },

  async custom_metadata(c) {
    const req = { response_size: 314159, payload: zeros(271828) };
    const r = await unary((cb) => c.test.UnaryCall(req, echoMetadata(), deadline(), cb));
    expectStatus(r.status, grpc.status.OK);
    expectPayload(r.resp.payload, 314159, 'UnaryCall');
    expectEchoedMetadata(r.initial, r.status.metadata, 'UnaryCall');

    const s = streaming(c.test.FullDuplexCall(echoMetadata(), deadline()));
    s.call.write(streamingRequest([314159], 271828));
    s.call.end();
    const status = await s.finished;
    expectStatus(status, grpc.status.OK);
    expect(s.msgs.length === 1, `FullDuplexCall: ${s.msgs.length} responses, want 1`);
    expectPayload(s.msgs[0].payload, 314159, 'FullDuplexCall');
    expectEchoedMetadata(s.initial, status.metadata, 'FullDuplexCall');
  },

  async status_code_and_message(c) {
    await expectEchoedStatus(c, 'test status message', true);
  },

  async special_status_message(c) {
    await expectEchoedStatus(c, '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n', false);
  },

  async unimplemented_method(c) {
    const r = await unary((cb) => c.test.UnimplementedCall({}, deadline(), cb));
    expectStatus(r.status, grpc.status.UNIMPLEMENTED);
  },

  async unimplemented_service(c) {
    const r = await unary((cb) => c.unimplemented.UnimplementedCall({}, deadline(), cb));
    expectStatus(r.status, grpc.status.UNIMPLEMENTED);
  },
};

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z_]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) usage(`unexpected argument ${argv[i]}`);
    args[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  return args;
}

function usage(msg) {
  console.error(`interop_client.js: ${msg}\ncases: ${Object.keys(CASES).join(' ')}`);
  process.exit(2);
}

function protoRoot(args) {
  if (args.proto_root) return args.proto_root;
  if (process.env.RAWGRPC_INTEROP_PROTO_ROOT) return process.env.RAWGRPC_INTEROP_PROTO_ROOT;
  return path.join(__dirname, '..', '..', 'proto');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const name = args.test_case;
  if (!CASES[name]) usage(`unknown or missing --test_case ${name}`);
  if (!args.server_port) usage('missing --server_port');
  if ((args.use_tls || 'false') !== 'false') usage('--use_tls=true is not supported (plaintext only)');

  const def = protoLoader.loadSync('grpc/testing/test.proto', {
    includeDirs: [protoRoot(args)],
    keepCase: true, // field names as in the .proto (response_size, not responseSize)
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def).grpc.testing;
  const target = `${args.server_host || '127.0.0.1'}:${args.server_port}`;
  const options = { 'grpc.enable_http_proxy': 0 }; // the server is on this machine
  if (args.server_host_override) options['grpc.default_authority'] = args.server_host_override;
  const creds = grpc.credentials.createInsecure();
  const c = { test: new pkg.TestService(target, creds, options), unimplemented: new pkg.UnimplementedService(target, creds, options) };
  try {
    await CASES[name](c);
    console.log(`PASS ${name}`);
    process.exitCode = 0;
  } catch (e) {
    console.error(`FAIL ${name}: ${e instanceof Failure ? e.message : e.stack}`);
    process.exitCode = 1;
  } finally {
    c.test.close();
    c.unimplemented.close();
  }
}

main();
