// @firestore-emulator/server 0.3.15 merges every write into the stored document: a set
// without a mask (in real Firestore: replace the whole document) kept the fields it did not
// name, and a field in a write's update mask that the write does not carry (DELETE_FIELD in
// an update or a merge set) stayed. Real Firestore replaces on a set and removes such masked
// fields. Here both hold for top-level fields (nested paths still merge as before); the
// fields are removed before the package's own write, so listeners see the real result.
import { FirestoreState } from '@firestore-emulator/server';

const writeV1Document = FirestoreState.prototype.writeV1Document;

FirestoreState.prototype.writeV1Document = function writeV1DocumentReal(date, write) {
  const creates = write.has_current_document && write.current_document.has_exists
    && !write.current_document.exists;
  if (write.has_update && !creates) {
    const document = this.getDocument(write.update.name);
    if (document.metadata.hasExist) {
      const kept = new Set([
        ...write.update.fields.keys(),
        ...(write.update_transforms ?? []).map((transform) => transform.field_path),
      ]);
      const removable = write.has_update_mask
        ? new Set(write.update_mask.field_paths.filter((path) => !/[.`]/.test(path)))
        : null;
      const drop = (key) => !kept.has(key) && (removable === null || removable.has(key));
      if (Object.keys(document.fields).some(drop)) {
        document.fields = Object.fromEntries(
          Object.entries(document.fields).filter(([key]) => !drop(key)),
        );
      }
    }
  }
  return writeV1Document.call(this, date, write);
};
