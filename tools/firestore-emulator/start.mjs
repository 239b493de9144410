// Local Firestore emulator for development and tests (never production).
// Usage: node start.mjs [--port 8080]   (or FIRESTORE_EMULATOR_PORT)
// The package ignores cursors, __name__ ordering, offset and select(); query-fidelity.mjs
// closes those gaps, collection-scaling.mjs makes writes O(1) instead of O(n),
// field-transforms.mjs applies every field transform of a write (the package dropped all
// after a server timestamp), write-masks.mjs makes a set replace the document and a masked
// field the write leaves out go (the package merged both), and listen-changes.mjs sends a query listener only what
// changed (the package resent every matching document on every write), and
// transactions.mjs gives transactions their own ids, read sets and conflict detection, and
// commits that land whole (the package let conflicting transactions both commit). Still missing
// (real Firestore has them): ListDocuments, gRPC messages over 4 MiB, composite-index
// enforcement. Our code is written for real Firestore.
import { FirestoreServer } from '@firestore-emulator/server';
import './query-fidelity.mjs';
import './collection-scaling.mjs';
import './field-transforms.mjs';
import './write-masks.mjs';
import './listen-changes.mjs';
import { installTransactions } from './transactions.mjs';

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const port = Number(argValue('--port') ?? process.env.FIRESTORE_EMULATOR_PORT ?? 8080);
const server = new FirestoreServer();
installTransactions(server);
await server.start(port);
console.log(`[firestore-emulator] listening on 0.0.0.0:${port}`);

// Stop promptly on SIGTERM/SIGINT so a process manager or test fixture leaves nothing behind.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    console.log(`[firestore-emulator] ${signal}: stopping`);
    server.stop();
    process.exit(0);
  });
}
