// @firestore-emulator/server 0.3.15 keeps each collection's documents in an immer-frozen
// object and runs `produce` on every document lookup, so each new document copies the
// whole collection: seeding n documents costs O(n^2) (measured: 582 docs/s at 5,000 but
// 166 docs/s at 20,000). Here a collection thaws its map once and then adds documents in
// place, which is what a store keyed by name needs. Nothing else reads the map's identity.
import { FirestoreStateCollection, FirestoreStateDocument } from '@firestore-emulator/server';

FirestoreStateCollection.prototype.getDocument = function getDocumentInPlace(documentName) {
  if (Object.isFrozen(this.documents)) {
    this.documents = { ...this.documents };
  }
  let document = this.documents[documentName];
  if (document === undefined) {
    document = new FirestoreStateDocument(this.emitter, this.database, this, documentName, {}, {});
    this.documents[documentName] = document;
  }
  return document;
};
