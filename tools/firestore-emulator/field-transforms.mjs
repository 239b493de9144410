// @firestore-emulator/server 0.3.15 applies a write's field transforms in one loop that
// `return`s after a server-timestamp or array transform, so every transform after it is
// dropped: {version: Increment(1), changed_at: SERVER_TIMESTAMP} (sent sorted by field
// path, changed_at first) lost its increment. Real Firestore applies them all, in order.
// Here each transform goes through the package's own code on its own.
//
// Its array transforms also only work on a field that already holds an array: ArrayUnion
// or ArrayRemove on a missing field failed the whole write ("Invalid transform"). Real
// Firestore treats a missing (or non-array) field as an empty array: a union sets the
// elements, a removal sets []. The per-user active set (flokraft_core.store.change_markers)
// starts that way.
import { FirestoreState, FirestoreStateDocument } from '@firestore-emulator/server';
import { Write } from '@firestore-emulator/proto/dist/google/firestore/v1/write.js';

const applyTransforms = FirestoreStateDocument.prototype.v1Transform;

// The package's array field class is not exported: take it from a scratch document.
const scratchPath = 'projects/p/databases/(default)/documents/scratch/array';
const scratch = new FirestoreState();
scratch.writeV1Document(
  new Date(),
  Write.fromObject({ update: { name: scratchPath, fields: { a: { array_value: { values: [] } } } } }),
);
const ArrayField = scratch.getDocument(scratchPath).getField('a').constructor;

FirestoreStateDocument.prototype.v1Transform = function v1TransformEach(date, transforms) {
  for (const transform of transforms ?? []) {
    const onArray = transform.has_append_missing_elements || transform.has_remove_all_from_array;
    if (onArray && !(this.getField(transform.field_path) instanceof ArrayField)) {
      this.set(date, { [transform.field_path]: new ArrayField([]) });
    }
    applyTransforms.call(this, date, [transform]);
  }
};
