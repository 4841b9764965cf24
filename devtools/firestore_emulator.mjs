// Starts the open-source Firestore emulator (@firestore-emulator/server) for
// the Python test suite, because Google's own emulator downloads a jar at
// start-up and cannot run offline.
//
//   node devtools/firestore_emulator.mjs --host 127.0.0.1 --port 0
//
// --host/--port default to FIRESTORE_EMULATOR_BIND_HOST/_PORT, then
// 127.0.0.1:0 (0 = any free port). Once the gRPC server is bound it prints
// exactly one line, "firestore emulator listening on HOST:PORT", so the
// caller learns the real port. It exits on SIGTERM/SIGINT, and also when its
// stdin is a pipe that closes: the test process holds the other end, so the
// emulator can never outlive the test run, even if pytest is killed.
import { createRequire } from "node:module";
import { fstatSync } from "node:fs";
import { parseArgs } from "node:util";

const require = createRequire(import.meta.url);
const { FirestoreServer } = require("@firestore-emulator/server");
// The emulator's own copy of grpc-js: bindAsync only accepts credentials
// created by the same module instance.
const emulatorRequire = createRequire(
  require.resolve("@firestore-emulator/server"),
);
const { ServerCredentials } = emulatorRequire("@grpc/grpc-js");

const { values: args } = parseArgs({
  options: {
    host: {
      type: "string",
      default: process.env.FIRESTORE_EMULATOR_BIND_HOST || "127.0.0.1",
    },
    port: {
      type: "string",
      default: process.env.FIRESTORE_EMULATOR_BIND_PORT || "0",
    },
  },
});

const emulator = new FirestoreServer();
const host = args.host.includes(":") ? `[${args.host}]` : args.host;

// FirestoreServer.start() always binds 0.0.0.0 and does not report the port,
// so bind its gRPC server (the `server` field, private only in its TypeScript
// types) ourselves: on the requested host, with port 0 resolved to the real one.
let port;
try {
  port = await new Promise((resolve, reject) => {
    emulator.server.bindAsync(
      `${host}:${args.port}`,
      ServerCredentials.createInsecure(),
      (err, boundPort) => (err ? reject(err) : resolve(boundPort)),
    );
  });
} catch (err) {
  console.error(`firestore emulator: cannot listen on ${host}:${args.port}:`, err.message);
  process.exit(1);
}

// A bug in one request handler (some throw from event callbacks for
// unsupported features) must fail that request, not the whole test session.
process.on("uncaughtException", (err) => {
  console.error("firestore emulator: uncaught error:", err);
});

function stdinIsPipe() {
  try {
    return fstatSync(0).isFIFO();
  } catch {
    return false; // no stdin at all
  }
}

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  emulator.stop();
  process.exit(0);
}

process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
if (stdinIsPipe()) {
  process.stdin.on("end", shutdown);
  process.stdin.on("error", shutdown);
  process.stdin.resume();
}

console.log(`firestore emulator listening on ${host}:${port}`);
