// @firestore-emulator/server 0.3.15 answers every write anywhere in the database, for every
// query listener, with a RESET and then all documents the query matches, so a listener
// on n documents receives n documents per write: the client re-processes them all (the
// Python client spends ~0.1 ms per document) and falls minutes behind at 10 writes a
// second over ~500 documents. Real Firestore sends only what changed. Here a query
// listener sends the documents written since its last snapshot that match, removes the
// ones that stopped matching, and then marks a snapshot (NO_CHANGE with a read time),
// as Firestore's Listen protocol does. Document listeners keep the package's code.
import { createRequire } from 'node:module';
import { FirestoreState } from '@firestore-emulator/server';

const require = createRequire(import.meta.url);
// The package's own (CommonJS) message classes, the very instances it serialises with.
const { ListenResponse, TargetChangeTargetChangeType: TargetChange } = require(
  '@firestore-emulator/proto/dist/google/firestore/v1/firestore',
);

const WRITE_EVENTS = ['create-document', 'update-document', 'delete-document'];
const listenWithResets = FirestoreState.prototype.v1Listen;

function now() {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

FirestoreState.prototype.v1Listen = function v1ListenChangesOnly(listen, callback, onEnd) {
  if (!(listen.has_add_target && listen.add_target.has_query)) {
    return listenWithResets.call(this, listen, callback, onEnd);
  }
  const targetId = listen.add_target.target_id;
  const { parent, structured_query: query } = listen.add_target.query;
  const send = (object) => callback(ListenResponse.fromObject(object));
  const sendDocument = (doc) =>
    send({ document_change: { document: doc.toV1DocumentObject(), target_ids: [targetId] } });
  const markSnapshot = () =>
    send({
      target_change: { read_time: now(), target_change_type: TargetChange.NO_CHANGE, target_ids: [] },
    });

  send({ target_change: { target_change_type: TargetChange.ADD, target_ids: [targetId] } });
  const initial = this.v1Query(parent, query);
  initial.forEach(sendDocument);
  let matching = new Set(initial.map((doc) => doc.getPath()));
  send({
    target_change: { read_time: now(), target_change_type: TargetChange.CURRENT, target_ids: [targetId] },
  });
  markSnapshot();

  let written = new Set();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const changed = written;
    written = new Set();
    // Re-evaluated, so documents entering or leaving the result (a limit, a filter on a
    // changed field) are right too; only what differs is sent.
    const next = this.v1Query(parent, query);
    const nextPaths = new Set(next.map((doc) => doc.getPath()));
    let sent = false;
    for (const doc of next) {
      const path = doc.getPath();
      if (changed.has(path) || !matching.has(path)) {
        sendDocument(doc);
        sent = true;
      }
    }
    for (const path of matching) {
      if (!nextPaths.has(path)) {
        send({ document_remove: { document: path, removed_target_ids: [targetId] } });
        sent = true;
      }
    }
    matching = nextPaths;
    if (sent) markSnapshot();
  };
  const onWrite = ({ document }) => {
    written.add(document.getPath());
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush); // writes of one commit land in one snapshot
    }
  };
  for (const name of WRITE_EVENTS) {
    this.emitter.on(name, onWrite);
    onEnd(() => this.emitter.off(name, onWrite));
  }
};
