package subreg.tools;

import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import org.h2.mvstore.MVMap;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.bson.Document;

/**
 * A non-unique index kept in its own MVMap (the map name upstream gives a unique
 * index, "db.coll._index_NAME", so upstream's dropIndex/drop remove it), committed
 * with the data it indexes. upstream keeps no non-unique index at all.
 *
 * Only the FIRST key of the index is indexed (a compound index (a, b) serves
 * queries on a; b is left to the matcher). One entry per distinct value reachable
 * at the key's path (arrays expanded at every level, like a MongoDB multikey index),
 * for values of the types this index can serve: strings, numbers (as doubles) and
 * booleans. Documents without such a value have no entry; queries on null, missing,
 * documents, arrays, ObjectIds, dates, regexes... are not served (the collection
 * falls back to upstream's scan).
 *
 * Map key: encoded value + encoded position, value: the position (the _id, as the
 * collection's data map keys it). The encoding keeps order: values of one type sort
 * like upstream's ValueComparator; within one value, string positions sort like
 * String.compareTo (which is both the data map's and ValueComparator's order for
 * strings) and before every non-string position.
 *
 * The index yields candidates only: the collection filters them with the full
 * query, so an entry too many costs time, never correctness; an entry too few would
 * be wrong, hence the generous expansion.
 *
 * canHandle() is false: upstream never uses this index by itself; IndexedCollection
 * plans the queries that use it.
 */
final class SecondaryIndex extends Index<Object> {

    static final char TERM = '\u0000';
    static final char TAG_BOOLEAN = 'b';
    static final char TAG_NUMBER = 'n';
    static final char TAG_STRING = 's';
    /** position tags: string positions before all others */
    static final char POS_STRING = 's';
    static final char POS_OTHER = 't';

    private final MVMap<String, Object> map;
    private final String[] path;
    private final String idField;

    SecondaryIndex(MVMap<String, Object> map, String name, List<IndexKey> keys, boolean sparse, String idField) {
        super(name, keys, sparse);
        this.map = map;
        this.path = keys.get(0).getKey().split("\\.", -1);
        this.idField = idField;
    }

    MVMap<String, Object> map() {
        return map;
    }

    String field() {
        return getKeys().get(0).getKey();
    }

    // ---- encoding

    static void escape(StringBuilder sb, String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\u0000') {
                sb.append('\u0001').append('\u0001');
            } else if (c == '\u0001') {
                sb.append('\u0001').append('\u0002');
            } else {
                sb.append(c);
            }
        }
    }

    static String numberBody(double d) {
        if (d == 0.0) {
            d = 0.0; // -0.0 == 0.0
        }
        long bits = Double.doubleToLongBits(d);
        bits = bits < 0 ? ~bits : bits ^ Long.MIN_VALUE;
        String hex = Long.toHexString(bits);
        return "0".repeat(16 - hex.length()) + hex;
    }

    /** The type tag of a value this index serves, or 0. */
    static char tagOf(Object v) {
        if (v instanceof String) {
            return TAG_STRING;
        }
        if (v instanceof Number) {
            return Double.isNaN(((Number) v).doubleValue()) ? 0 : TAG_NUMBER;
        }
        if (v instanceof Boolean) {
            return TAG_BOOLEAN;
        }
        return 0;
    }

    /** tag + body, without the terminator: the lower bound of every key >= v of its type */
    static String bound(Object v) {
        char tag = tagOf(v);
        StringBuilder sb = new StringBuilder().append(tag);
        if (tag == TAG_STRING) {
            escape(sb, (String) v);
        } else if (tag == TAG_NUMBER) {
            sb.append(numberBody(((Number) v).doubleValue()));
        } else {
            sb.append(((Boolean) v) ? '1' : '0');
        }
        return sb.toString();
    }

    /** The encoded value (the prefix of its entries), or null if not served. */
    static String encode(Object v) {
        if (tagOf(v) == 0) {
            return null;
        }
        return bound(v) + TERM;
    }

    static String positionKey(Object position) {
        StringBuilder sb = new StringBuilder();
        if (position instanceof String) {
            sb.append(POS_STRING);
            escape(sb, (String) position);
        } else {
            sb.append(POS_OTHER).append(position.getClass().getName()).append(':').append(position);
        }
        return sb.toString();
    }

    /** The encoded values of the document at the index's first key. */
    Set<String> valuesOf(Document document) {
        Set<String> out = new LinkedHashSet<>();
        collect(document, 0, out);
        return out;
    }

    private void collect(Object value, int i, Set<String> out) {
        if (value instanceof Collection) {
            Collection<?> list = (Collection<?>) value;
            for (Object element : list) {
                collect(element, i, out);
            }
            if (i < path.length && isIndex(path[i]) && value instanceof List) {
                int n = Integer.parseInt(path[i]);
                if (n < list.size()) {
                    collect(((List<?>) list).get(n), i + 1, out);
                }
            }
            return;
        }
        if (i == path.length) {
            String e = encode(value);
            if (e != null) {
                out.add(e);
            }
            return;
        }
        if (value instanceof Document) {
            Document d = (Document) value;
            if (d.containsKey(path[i])) {
                collect(d.get(path[i]), i + 1, out);
            }
        }
    }

    private static boolean isIndex(String s) {
        if (s.isEmpty() || s.length() > 9) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }

    private Object positionOf(Document document) {
        return Missing.ofNullable(document.get(idField));
    }

    // ---- Index

    @Override
    public Object getPosition(Document document) {
        return null; // the _id index answers this
    }

    @Override
    public void checkAdd(Document document, MongoCollection<Object> collection) {
        // not unique
    }

    @Override
    public void add(Document document, Object position, MongoCollection<Object> collection) {
        Object pos = Missing.ofNullable(position);
        String pk = positionKey(pos);
        for (String v : valuesOf(document)) {
            map.put(v + pk, pos);
        }
    }

    @Override
    public Object remove(Document document) {
        Object pos = positionOf(document);
        String pk = positionKey(pos);
        for (String v : valuesOf(document)) {
            map.remove(v + pk);
        }
        return pos;
    }

    @Override
    public boolean canHandle(Document query) {
        return false;
    }

    @Override
    public Iterable<Object> getPositions(Document query) {
        throw new UnsupportedOperationException();
    }

    @Override
    public long getCount() {
        return map.sizeAsLong();
    }

    @Override
    public boolean isEmpty() {
        return map.isEmpty();
    }

    @Override
    public long getDataSize() {
        return getCount();
    }

    @Override
    public void checkUpdate(Document oldDocument, Document newDocument, MongoCollection<Object> collection) {
        // not unique
    }

    @Override
    public void updateInPlace(Document oldDocument, Document newDocument, Object position,
                              MongoCollection<Object> collection) {
        Set<String> before = valuesOf(oldDocument);
        Set<String> after = valuesOf(newDocument);
        if (before.equals(after)) {
            return;
        }
        Object pos = Missing.ofNullable(position);
        String pk = positionKey(pos);
        for (String v : before) {
            if (!after.contains(v)) {
                map.remove(v + pk);
            }
        }
        for (String v : after) {
            if (!before.contains(v)) {
                map.put(v + pk, pos);
            }
        }
    }

    @Override
    public void drop() {
        // H2Database.dropIndex removes the map
    }
}
