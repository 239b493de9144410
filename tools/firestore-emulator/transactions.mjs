// Transactions for @firestore-emulator/server 0.3.15 with the guarantees of real Firestore.
// The package hands every transaction the same dummy id, remembers nothing it read and
// applies a commit write by write: two transactions that read a document and both write
// it both commit (a lost update: 10 concurrent creates at a cap of 5 all passed), a commit
// whose third write fails leaves its first two applied, and a last-update-time
// precondition is ignored. Real Firestore serialises transactions (a conflicting one is
// aborted and the client retries it), commits atomically and checks every precondition.
//
// Here: each transaction gets its own id and a read set (the version of every document it
// read, by BatchGetDocuments or RunQuery); its commit is refused with ABORTED when any of
// those documents was written since (optimistic validation, which gives the same
// serialisable outcome as Firestore's locks); and every commit checks all preconditions
// (exists, update_time) before it applies anything. Queries inside a transaction record
// the documents they returned, not the query (a document inserted into a queried range is
// not a conflict here): our code reads single documents in transactions.
import { FirestoreStateDocument } from '@firestore-emulator/server';
import {
  BatchGetDocumentsResponse,
  BeginTransactionResponse,
  CommitResponse,
} from '@firestore-emulator/proto/dist/google/firestore/v1/firestore.js';
import { Empty } from '@firestore-emulator/proto/dist/google/protobuf/empty.js';
import { randomBytes } from 'node:crypto';

const SERVICE = '/google.firestore.v1.Firestore/';
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;
const ABORTED = 10;
// A transaction nobody commits or rolls back (its client died) is forgotten after this.
const TRANSACTION_LIFETIME_MS = 270_000;

// Every change of a document moves its version: the package's update times have only
// millisecond resolution, so two writes in one millisecond would look like none.
for (const method of ['create', 'update', 'set', 'delete']) {
  const original = FirestoreStateDocument.prototype[method];
  FirestoreStateDocument.prototype[method] = function versioned(...args) {
    const result = original.apply(this, args);
    this.version = (this.version ?? 0) + 1;
    return result;
  };
}

class GrpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function fail(callback, err) {
  if (typeof err?.code === 'number') {
    callback({ code: err.code, message: err.message, name: 'Error' }, null);
    return;
  }
  console.error(err);
  callback({ message: 'Something went wrong', name: 'Error' }, null);
}

const keyOf = (id) => Buffer.from(id).toString('hex');
const hasBytes = (value) => value instanceof Uint8Array && value.length > 0;

function millis(timestamp) {
  return Number(timestamp.seconds) * 1000 + Math.floor(Number(timestamp.nanos) / 1e6);
}

// What Firestore would bill, counted as the server sees it (documents read: one per
// document a get returns or misses, at least one per query; documents written: one per
// write of a commit). `kill -USR2 <pid>` prints them as one JSON line:
// {"firestore_stats": {"reads": n, "writes": n, "commits": n, "aborted": n}}.
export const stats = { reads: 0, writes: 0, commits: 0, aborted: 0 };
process.on('SIGUSR2', () => console.log(JSON.stringify({ firestore_stats: stats })));

export function installTransactions(firestoreServer) {
  const state = firestoreServer.state;
  const handlers = firestoreServer.server.handlers;
  const transactions = new Map();

  function begin() {
    const id = Uint8Array.from(randomBytes(16));
    const now = Date.now();
    for (const [key, tx] of transactions) {
      if (now - tx.began > TRANSACTION_LIFETIME_MS) transactions.delete(key);
    }
    transactions.set(keyOf(id), { reads: new Map(), began: now });
    return id;
  }

  function transactionOf(id) {
    const tx = transactions.get(keyOf(id));
    if (!tx) {
      throw new GrpcError(INVALID_ARGUMENT, 'The referenced transaction has expired or is no longer valid.');
    }
    return tx;
  }

  function remember(tx, path, document) {
    if (tx && !tx.reads.has(path)) tx.reads.set(path, document.version ?? 0);
  }

  function replace(method, handler) {
    const entry = handlers.get(SERVICE + method);
    if (!entry) throw new Error(`no handler for ${method}`);
    const original = entry.func;
    entry.func = (call, callback) => handler(call, callback, original);
  }

  replace('BeginTransaction', (_call, callback) => {
    callback(null, BeginTransactionResponse.fromObject({ transaction: begin() }));
  });

  replace('Rollback', (call, callback) => {
    transactions.delete(keyOf(call.request.transaction));
    callback(null, Empty.fromObject({}));
  });

  replace('BatchGetDocuments', (call) => {
    try {
      let tx = null;
      if (call.request.consistency_selector === 'new_transaction') {
        const id = begin();
        tx = transactionOf(id);
        call.write(BatchGetDocumentsResponse.fromObject({ transaction: id }));
      } else if (call.request.consistency_selector === 'transaction') {
        tx = transactionOf(call.request.transaction);
      }
      const readTime = new Date();
      for (const path of call.request.documents) {
        stats.reads += 1;
        const document = state.getDocument(path);
        remember(tx, path, document);
        call.write(
          BatchGetDocumentsResponse.fromObject({
            found: document.metadata.hasExist ? document.toV1DocumentObject() : undefined,
            missing: document.metadata.hasExist ? undefined : path,
            read_time: { seconds: Math.floor(readTime.getTime() / 1000), nanos: (readTime.getTime() % 1000) * 1e6 },
          }),
        );
      }
      call.end();
    } catch (err) {
      call.emit('error', { code: err.code ?? 13, details: err.message });
    }
  });

  replace('RunQuery', (call, callback, original) => {
    let tx = null;
    try {
      if (call.request.consistency_selector === 'transaction') {
        tx = transactionOf(call.request.transaction);
      }
    } catch (err) {
      call.emit('error', { code: err.code, details: err.message });
      return;
    }
    const write = call.write.bind(call);
    // The package makes up an id for `new_transaction`: register it, then record reads.
    const recording = new Proxy(call, {
      get(target, prop) {
        if (prop !== 'write') {
          const value = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        }
        return (response) => {
          if (!tx && call.request.consistency_selector === 'new_transaction' && hasBytes(response.transaction)) {
            transactions.set(keyOf(response.transaction), { reads: new Map(), began: Date.now() });
            tx = transactions.get(keyOf(response.transaction));
          }
          if (tx && response.document?.name) {
            remember(tx, response.document.name, state.getDocument(response.document.name));
          }
          return write(response);
        };
      },
    });
    stats.reads += 1; // a query bills at least one read, and one per further document
    let returned = 0;
    const counting = new Proxy(recording, {
      get(target, prop) {
        if (prop !== 'write') return Reflect.get(target, prop, target);
        return (response) => {
          if (response.document?.name && (returned += 1) > 1) stats.reads += 1;
          return target.write(response);
        };
      },
    });
    return original(counting, callback);
  });

  replace('RunAggregationQuery', (call, callback, original) => {
    stats.reads += 1; // a count bills one read per 1,000 index entries, at least one
    return original(call, callback);
  });

  replace('Commit', (call, callback) => {
    try {
      if (hasBytes(call.request.transaction)) {
        const key = keyOf(call.request.transaction);
        const tx = transactionOf(call.request.transaction);
        transactions.delete(key);
        for (const [path, version] of tx.reads) {
          if ((state.getDocument(path).version ?? 0) !== version) {
            stats.aborted += 1;
            throw new GrpcError(ABORTED, `Transaction aborted: ${path} changed since it was read (contention); retry the transaction.`);
          }
        }
      }
      checkPreconditions(state, call.request.writes);
      const date = new Date();
      const results = call.request.writes.map((write) => state.writeV1Document(date, write));
      stats.commits += 1;
      stats.writes += call.request.writes.length;
      callback(
        null,
        CommitResponse.fromObject({
          commit_time: { seconds: Math.floor(date.getTime() / 1000), nanos: (date.getTime() % 1000) * 1e6 },
          write_results: results.map((result) => result.toObject()),
        }),
      );
    } catch (err) {
      fail(callback, err);
    }
  });
}

// All of a commit's preconditions, against the state as its earlier writes leave it,
// before any write is applied: a commit lands whole or not at all.
function checkPreconditions(state, writes) {
  const exists = new Map();
  for (const write of writes) {
    const path = write.has_delete ? write.delete : write.update.name;
    const document = state.getDocument(path);
    const present = exists.has(path) ? exists.get(path) : document.metadata.hasExist;
    if (write.has_current_document) {
      const condition = write.current_document;
      if (condition.has_exists) {
        if (condition.exists && !present) {
          throw new GrpcError(NOT_FOUND, `No document to update: ${path}`);
        }
        if (!condition.exists && present) {
          throw new GrpcError(ALREADY_EXISTS, `Document already exists: ${path}`);
        }
      } else if (condition.has_update_time) {
        const expected = millis(condition.update_time);
        if (!present || exists.has(path) || document.metadata.updatedAt.getTime() !== expected) {
          throw new GrpcError(FAILED_PRECONDITION, `the stored version does not match the required base version: ${path}`);
        }
      }
    }
    exists.set(path, !write.has_delete);
  }
}
