// @firestore-emulator/server 0.3.15 applies a write's field transforms in one loop that
// `return`s after a server-timestamp or array transform, so every transform after it is
// dropped: {version: Increment(1), changed_at: SERVER_TIMESTAMP} (sent sorted by field
// path, changed_at first) lost its increment. Real Firestore applies them all, in order.
// Here each transform goes through the package's own code on its own.
import { FirestoreStateDocument } from '@firestore-emulator/server';

const applyTransforms = FirestoreStateDocument.prototype.v1Transform;

FirestoreStateDocument.prototype.v1Transform = function v1TransformEach(date, transforms) {
  for (const transform of transforms ?? []) {
    applyTransforms.call(this, date, [transform]);
  }
};
