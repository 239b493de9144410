// Closes the gaps of @firestore-emulator/server 0.3.15 that matter to a paginated,
// projected list query, so local tests exercise the same semantics as real Firestore:
//   - start_at / end_at cursors (ignored by the package),
//   - ordering by __name__ and the implicit __name__ tie-breaker,
//   - documents missing an order_by field are left out (as Firestore does),
//   - offset, and select() projections (only the selected fields leave the server).
// The package's own filtering is kept; only ordering, cursors and paging are redone here.
import { FirestoreState } from '@firestore-emulator/server';

const TYPE_RANK = {
  null_value: 0, boolean_value: 1, integer_value: 2, double_value: 2, timestamp_value: 3,
  string_value: 4, bytes_value: 5, reference_value: 6, geo_point_value: 7, array_value: 8,
  map_value: 9,
};
const ASCENDING = 1;
const DESCENDING = 2;

// Values come either as protobuf messages (cursors: every oneof member is present in
// toObject(), so the has_* getters say which one is set) or as the package's plain objects.
function normalize(value) {
  if (typeof value?.toObject === 'function') {
    const type = Object.keys(TYPE_RANK).find((key) => value[`has_${key}`]);
    return { type, value: value.toObject()[type] };
  }
  const type = Object.keys(value).find((key) => key in TYPE_RANK && value[key] !== undefined);
  return { type, value: value[type] };
}

function compareValues(left, right) {
  const { type: ta, value: va } = normalize(left);
  const { type: tb, value: vb } = normalize(right);
  if (TYPE_RANK[ta] !== TYPE_RANK[tb]) return TYPE_RANK[ta] - TYPE_RANK[tb];
  switch (ta) {
    case 'null_value': return 0;
    case 'timestamp_value': {
      const ds = Number(va.seconds ?? 0) - Number(vb.seconds ?? 0);
      return ds !== 0 ? ds : Number(va.nanos ?? 0) - Number(vb.nanos ?? 0);
    }
    case 'boolean_value': case 'integer_value': case 'double_value':
      return Number(va) - Number(vb);
    case 'reference_value': return compareReferences(va, vb);
    case 'array_value': {
      const xs = va.values ?? [];
      const ys = vb.values ?? [];
      for (let i = 0; i < Math.min(xs.length, ys.length); i += 1) {
        const c = compareValues(xs[i], ys[i]);
        if (c !== 0) return c;
      }
      return xs.length - ys.length;
    }
    default: {
      const sa = typeof va === 'string' ? va : JSON.stringify(va);
      const sb = typeof vb === 'string' ? vb : JSON.stringify(vb);
      return sa < sb ? -1 : sa > sb ? 1 : 0;
    }
  }
}

// Firestore orders references segment by segment, not as flat strings.
function compareReferences(a, b) {
  const xs = a.split('/');
  const ys = b.split('/');
  for (let i = 0; i < Math.min(xs.length, ys.length); i += 1) {
    if (xs[i] !== ys[i]) return xs[i] < ys[i] ? -1 : 1;
  }
  return xs.length - ys.length;
}

function fieldValue(document, path) {
  if (path === '__name__') return { reference_value: document.getPath() };
  const field = document.getField(path);
  return field ? field.toV1ValueObject() : undefined;
}

function effectiveOrders(query) {
  const orders = (query.order_by ?? []).map((o) => ({ path: o.field.field_path, direction: o.direction }));
  if (!orders.some((o) => o.path === '__name__')) {
    const last = orders.length ? orders[orders.length - 1].direction : ASCENDING;
    orders.push({ path: '__name__', direction: last === DESCENDING ? DESCENDING : ASCENDING });
  }
  return orders;
}

function compareByOrders(orders, a, b) {
  for (const { path, direction } of orders) {
    const c = compareValues(fieldValue(a, path), fieldValue(b, path));
    if (c !== 0) return direction === DESCENDING ? -c : c;
  }
  return 0;
}

// Position of a document relative to a cursor, in query order: <0 before, 0 at, >0 after.
function compareToCursor(orders, document, cursor) {
  const values = cursor.values ?? [];
  for (let i = 0; i < values.length && i < orders.length; i += 1) {
    const { path, direction } = orders[i];
    const c = compareValues(fieldValue(document, path), values[i]);
    if (c !== 0) return direction === DESCENDING ? -c : c;
  }
  return 0;
}

function projected(document, paths) {
  return new Proxy(document, {
    get(target, property) {
      if (property === 'toV1DocumentObject') {
        return () => {
          const object = target.toV1DocumentObject();
          object.fields = Object.fromEntries(
            Object.entries(object.fields).filter(([key]) => paths.has(key)),
          );
          return object;
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const originalQuery = FirestoreState.prototype.v1Query;

FirestoreState.prototype.v1Query = function v1QueryWithCursors(parent, query) {
  // Let the package filter, but take ordering, cursors, offset and limit from us.
  const unlimited = query.constructor.deserialize(query.serialize());
  unlimited.order_by = [];
  unlimited.limit = undefined;
  unlimited.start_at = undefined;
  unlimited.end_at = undefined;
  unlimited.offset = 0;
  let docs = originalQuery.call(this, parent, unlimited);

  const orders = effectiveOrders(query);
  docs = docs.filter((d) => orders.every((o) => fieldValue(d, o.path) !== undefined));
  docs.sort((a, b) => compareByOrders(orders, a, b));
  if (query.has_start_at) {
    const { before } = query.start_at;
    docs = docs.filter((d) => {
      const c = compareToCursor(orders, d, query.start_at);
      return before ? c >= 0 : c > 0;
    });
  }
  if (query.has_end_at) {
    const { before } = query.end_at;
    docs = docs.filter((d) => {
      const c = compareToCursor(orders, d, query.end_at);
      return before ? c < 0 : c <= 0;
    });
  }
  if (query.offset) docs = docs.slice(query.offset);
  if (query.has_limit) docs = docs.slice(0, query.limit.value);
  if (query.has_select && (query.select.fields ?? []).length > 0) {
    const paths = new Set(query.select.fields.map((f) => f.field_path));
    docs = docs.map((d) => projected(d, paths));
  }
  return docs;
};
