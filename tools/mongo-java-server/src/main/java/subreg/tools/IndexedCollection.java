package subreg.tools;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

import org.h2.mvstore.Cursor;
import org.h2.mvstore.MVMap;

import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.ValueComparator;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.bson.Document;

/**
 * An H2 collection that plans its queries instead of scanning and sorting the whole
 * collection in memory (upstream: stream all -> filter -> sort -> limit):
 *
 * 1. {_id: X, more...} / {_id: {$in}, more...}: the _id index, the rest matched.
 * 2. A filter with equality, $in or a range on the first key of a SecondaryIndex:
 *    the index's candidates, filtered by the whole query. With a single equality,
 *    string _ids and a sort on nothing, $natural or _id (either direction) the
 *    index is read in that order (its entries for one value are in _id order) and
 *    stops after skip+limit matches, starting at an _id $gt/$lt cursor; otherwise
 *    the candidate positions (the _ids) are sorted like upstream would order the
 *    documents and documents are loaded only as far as needed (sorts on other
 *    fields: the matching documents are loaded and sorted, O(matches)).
 * 3. Otherwise with a sort on nothing/$natural/_id: the data map (keyed by _id) is
 *    read in key order, from the _id bound, stopping after skip+limit matches.
 *    For _id sorts and $natural: -1 only when every _id is a string (the map orders
 *    strings like upstream's ValueComparator; other types it orders differently).
 * 4. Anything else: upstream.
 */
final class IndexedCollection extends H2Collection {

    enum Sort { NATURAL_ASC, NATURAL_DESC, ID_ASC, ID_DESC, OTHER }

    private final MVMap<Object, Document> dataMap;

    IndexedCollection(MongoDatabase database, String name, CollectionOptions options,
                      MVMap<Object, Document> dataMap, MVMap<String, Object> metaMap, CursorRegistry cursors) {
        super(database, name, options, dataMap, metaMap, cursors);
        this.dataMap = dataMap;
    }

    /** A plan: either matching documents in result order, or (upstream's tail) unfiltered
     *  candidates in natural order. */
    private static final class Plan {
        final Iterator<Document> matched;
        final Stream<Document> candidates;

        Plan(Iterator<Document> matched, Stream<Document> candidates) {
            this.matched = matched;
            this.candidates = candidates;
        }
    }

    @Override
    protected QueryResult queryDocuments(Document query, Document orderBy, int skip, int limit, int batchSize,
                                         Document fieldSelector) {
        if (query == null) {
            return super.queryDocuments(query, orderBy, skip, limit, batchSize, fieldSelector);
        }
        Index<Object> idIndex = idIndexFor(query);
        if (idIndex != null) {
            if (query.size() == 1) {
                return super.queryDocuments(query, orderBy, skip, limit, batchSize, fieldSelector);
            }
            // the documents with that _id, filtered by the whole query
            Document idOnly = new Document(getIdField(), query.get(getIdField()));
            return matchDocuments(query, idIndex.getPositions(idOnly), orderBy, skip, limit, batchSize, fieldSelector);
        }
        Plan plan = plan(query, orderBy);
        if (plan == null) {
            return super.queryDocuments(query, orderBy, skip, limit, batchSize, fieldSelector);
        }
        if (plan.candidates != null) {
            return matchDocumentsFromStream(plan.candidates, query, orderBy, skip, limit, batchSize, fieldSelector);
        }
        Stream<Document> stream = StreamSupport.stream(
            Spliterators.spliteratorUnknownSize(plan.matched, Spliterator.ORDERED), false);
        // upstream's tail (skip, limit, projection, batches) on already matched documents
        return matchDocumentsFromStream(new Document(), stream, skip, limit, batchSize, null, fieldSelector);
    }

    @Override
    public synchronized int count(Document query, int skip, int limit) {
        if (query == null || query.isEmpty() || idIndexFor(query) != null) {
            return super.count(query, skip, limit);
        }
        Plan plan = plan(query, null);
        if (plan == null) {
            return super.count(query, skip, limit);
        }
        Iterator<Document> it = plan.matched != null ? plan.matched
            : plan.candidates.filter(d -> documentMatchesQuery(d, query)).iterator();
        long stopAt = limit > 0 ? (long) Math.max(skip, 0) + limit : Long.MAX_VALUE;
        long n = 0;
        while (n < stopAt && it.hasNext()) {
            it.next();
            n++;
        }
        long counted = Math.max(0, n - Math.max(skip, 0));
        return (int) Math.min(counted, Integer.MAX_VALUE);
    }

    /** The _id index if it answers the query's _id condition by itself ({_id: X}, {_id: {$in}}). */
    private Index<Object> idIndexFor(Document query) {
        String idField = getIdField();
        if (idField == null || !query.containsKey(idField)) {
            return null;
        }
        Document idOnly = new Document(idField, query.get(idField));
        for (Index<Object> index : getIndexes()) {
            if (index.isUnique() && index.canHandle(idOnly)) {
                return index;
            }
        }
        return null;
    }

    // ---- planning

    private static Sort sortOf(Document orderBy, String idField) {
        if (orderBy == null || orderBy.isEmpty()) {
            return Sort.NATURAL_ASC;
        }
        if (orderBy.size() != 1) {
            return Sort.OTHER;
        }
        String key = orderBy.keySet().iterator().next();
        Object value = orderBy.get(key);
        if (!(value instanceof Number)) {
            return null; // upstream reports the error
        }
        int v = ((Number) value).intValue();
        if (key.equals("$natural")) {
            return v == 1 ? Sort.NATURAL_ASC : v == -1 ? Sort.NATURAL_DESC : null;
        }
        if (key.equals(idField)) {
            return v > 0 ? Sort.ID_ASC : Sort.ID_DESC; // DocumentComparator: > 0 is ascending
        }
        return Sort.OTHER;
    }

    private Plan plan(Document query, Document orderBy) {
        String idField = getIdField();
        if (idField == null || !idField.equals("_id")) {
            return null;
        }
        Sort sort = sortOf(orderBy, idField);
        if (sort == null) {
            return null;
        }
        IndexScan scan = chooseIndex(query);
        if (scan != null && scan.equalityPrefix == null && (sort == Sort.ID_ASC || sort == Sort.ID_DESC)
            && idBounds(query)[0] != null && allKeysAreStrings()) {
            // A range of another field, a lower bound on _id and a page in _id order (the
            // audit trail by time: its ids are time-ordered, and the service bounds them):
            // walking _id from the bound stops at the page; the range would collect every
            // match first, however many.
            return scanPlan(query, sort);
        }
        if (scan != null) {
            return indexPlan(scan, query, orderBy, sort);
        }
        if (sort == Sort.OTHER) {
            return null;
        }
        return scanPlan(query, sort);
    }

    /** Key ranges [from, toExclusive) of a SecondaryIndex that hold every candidate. */
    private static final class IndexScan {
        final SecondaryIndex index;
        final List<String[]> ranges = new ArrayList<>();
        /** the entries' prefix when the scan is one equality */
        String equalityPrefix;
        long estimate;

        IndexScan(SecondaryIndex index) {
            this.index = index;
        }
    }

    private IndexScan chooseIndex(Document query) {
        IndexScan best = null;
        for (Index<Object> index : getIndexes()) {
            if (!(index instanceof SecondaryIndex)) {
                continue;
            }
            SecondaryIndex si = (SecondaryIndex) index;
            if (!query.containsKey(si.field())) {
                continue;
            }
            IndexScan scan = scanFor(si, query.get(si.field()));
            if (scan == null) {
                continue;
            }
            MVMap<String, Object> map = si.map();
            long estimate = 0;
            for (String[] r : scan.ranges) {
                estimate += rank(map, r[1]) - rank(map, r[0]);
            }
            scan.estimate = estimate;
            if (best == null || estimate < best.estimate) {
                best = scan;
            }
        }
        return best;
    }

    /** The number of keys below key. */
    private static long rank(MVMap<String, Object> map, String key) {
        long i = map.getKeyIndex(key);
        return i >= 0 ? i : -(i + 1);
    }

    private static String upper(String prefix) {
        // every key starting with prefix (which ends with TERM) is below this
        return prefix.substring(0, prefix.length() - 1) + '\u0001';
    }

    private static IndexScan scanFor(SecondaryIndex index, Object condition) {
        IndexScan scan = new IndexScan(index);
        String eq = SecondaryIndex.encode(condition);
        if (eq != null) {
            scan.ranges.add(new String[] {eq, upper(eq)});
            scan.equalityPrefix = eq;
            return scan;
        }
        if (!(condition instanceof Document)) {
            return null;
        }
        Document ops = (Document) condition;
        if (ops.isEmpty()) {
            return null;
        }
        for (String op : ops.keySet()) {
            if (!op.startsWith("$")) {
                return null; // a document to compare with
            }
        }
        if (ops.containsKey("$eq")) {
            eq = SecondaryIndex.encode(ops.get("$eq"));
            if (eq != null) {
                scan.ranges.add(new String[] {eq, upper(eq)});
                scan.equalityPrefix = eq;
                return scan;
            }
        }
        if (ops.get("$in") instanceof Collection) {
            Collection<?> values = (Collection<?>) ops.get("$in");
            Set<String> prefixes = new java.util.TreeSet<>();
            for (Object v : values) {
                String e = SecondaryIndex.encode(v);
                if (e == null) {
                    prefixes = null; // null, regex, array...: not served
                    break;
                }
                prefixes.add(e);
            }
            if (prefixes != null && !prefixes.isEmpty()) {
                for (String e : prefixes) {
                    scan.ranges.add(new String[] {e, upper(e)});
                }
                if (prefixes.size() == 1) {
                    scan.equalityPrefix = prefixes.iterator().next();
                }
                return scan;
            }
        }
        // a range: every bound of one type (string or number); inclusive (the matcher decides)
        Object lo = null;
        Object hi = null;
        char tag = 0;
        for (String op : List.of("$gt", "$gte", "$lt", "$lte")) {
            if (!ops.containsKey(op)) {
                continue;
            }
            Object v = ops.get(op);
            char t = SecondaryIndex.tagOf(v);
            if (t != SecondaryIndex.TAG_STRING && t != SecondaryIndex.TAG_NUMBER) {
                return null;
            }
            if (tag != 0 && t != tag) {
                return null;
            }
            tag = t;
            if (op.startsWith("$g")) {
                if (lo == null || SecondaryIndex.bound(v).compareTo(SecondaryIndex.bound(lo)) > 0) {
                    lo = v;
                }
            } else {
                if (hi == null || SecondaryIndex.bound(v).compareTo(SecondaryIndex.bound(hi)) < 0) {
                    hi = v;
                }
            }
        }
        if (tag == 0) {
            return null;
        }
        String from = lo != null ? SecondaryIndex.bound(lo) : String.valueOf(tag);
        String to = hi != null ? SecondaryIndex.bound(hi) + '\u0001' : String.valueOf((char) (tag + 1));
        scan.ranges.add(new String[] {from, to});
        return scan;
    }

    /** String bounds of the query's _id condition (inclusive; null: none). */
    private static String[] idBounds(Document query) {
        String[] bounds = new String[2];
        Object condition = query.get("_id");
        if (!(condition instanceof Document)) {
            return bounds;
        }
        Document ops = (Document) condition;
        for (String op : ops.keySet()) {
            Object v = ops.get(op);
            if (!(v instanceof String)) {
                continue;
            }
            String s = (String) v;
            if (op.equals("$gt") || op.equals("$gte")) {
                if (bounds[0] == null || s.compareTo(bounds[0]) > 0) {
                    bounds[0] = s;
                }
            } else if (op.equals("$lt") || op.equals("$lte")) {
                if (bounds[1] == null || s.compareTo(bounds[1]) < 0) {
                    bounds[1] = s;
                }
            }
        }
        return bounds;
    }

    private boolean allKeysAreStrings() {
        Object first = dataMap.firstKey();
        return first == null || (first instanceof String && dataMap.lastKey() instanceof String);
    }

    private Plan indexPlan(IndexScan scan, Document query, Document orderBy, Sort sort) {
        MVMap<String, Object> map = scan.index.map();
        String prefix = scan.equalityPrefix;
        if (prefix != null && sort != Sort.OTHER) {
            String last = map.lowerKey(prefix + '\uFFFF');
            boolean stringPositions = last == null || !last.startsWith(prefix)
                || last.charAt(prefix.length()) == SecondaryIndex.POS_STRING;
            if (stringPositions) {
                // the entries of one value are in _id order: read them in the wanted order
                boolean desc = sort == Sort.NATURAL_DESC || sort == Sort.ID_DESC;
                String[] b = idBounds(query);
                StringBuilder lower = new StringBuilder(prefix);
                if (b[0] != null) {
                    lower.append(SecondaryIndex.POS_STRING);
                    SecondaryIndex.escape(lower, b[0]);
                }
                StringBuilder upper = new StringBuilder(prefix);
                if (b[1] != null) {
                    upper.append(SecondaryIndex.POS_STRING);
                    SecondaryIndex.escape(upper, b[1]);
                } else {
                    upper.append('\uFFFF');
                }
                Cursor<String, Object> c = desc
                    ? map.cursor(upper.toString(), lower.toString(), true)
                    : map.cursor(lower.toString(), upper.toString(), false);
                return new Plan(matching(values(c), query), null);
            }
        }
        // the candidates' positions, deduplicated
        Collection<Object> found = scan.ranges.size() == 1 && prefix != null ? new ArrayList<>() : new LinkedHashSet<>();
        for (String[] r : scan.ranges) {
            Cursor<String, Object> c = map.cursor(r[0]);
            while (c.hasNext()) {
                String key = c.next();
                if (key.compareTo(r[1]) >= 0) {
                    break;
                }
                found.add(c.getValue());
            }
        }
        List<Object> positions = new ArrayList<>(found);
        boolean missingId = positions.stream().anyMatch(p -> p instanceof Missing);
        Comparator<Object> natural = dataMap.getKeyType()::compare;
        switch (sort) {
            case NATURAL_ASC:
                positions.sort(natural);
                return new Plan(matching(positions.iterator(), query), null);
            case NATURAL_DESC:
                positions.sort(ValueComparator.desc()); // as upstream orders $natural: -1
                return new Plan(matching(positions.iterator(), query), null);
            case ID_ASC:
            case ID_DESC:
                if (!missingId) {
                    positions.sort(sort == Sort.ID_ASC ? ValueComparator.asc() : ValueComparator.desc());
                    return new Plan(matching(positions.iterator(), query), null);
                }
                // fall through
            default:
                // upstream's order: natural, then its (stable) sort of the matches
                positions.sort(isNaturalDescending(orderBy) ? ValueComparator.desc() : natural);
                Stream<Document> docs = positions.stream().map(dataMap::get).filter(d -> d != null);
                return new Plan(null, docs);
        }
    }

    private Plan scanPlan(Document query, Sort sort) {
        if (dataMap.isEmpty()) {
            return new Plan(Collections.emptyIterator(), null);
        }
        boolean strings = allKeysAreStrings();
        if (sort != Sort.NATURAL_ASC && !strings) {
            return null;
        }
        String[] b = strings ? idBounds(query) : new String[2];
        boolean desc = sort == Sort.NATURAL_DESC || sort == Sort.ID_DESC;
        Cursor<Object, Document> c = desc ? dataMap.cursor(b[1], b[0], true) : dataMap.cursor(b[0], b[1], false);
        return new Plan(filter(values(c), query), null);
    }

    /** A cursor's values, in its order. */
    private static <K, V> Iterator<V> values(Cursor<K, V> c) {
        return new Iterator<V>() {
            @Override
            public boolean hasNext() {
                return c.hasNext();
            }

            @Override
            public V next() {
                c.next();
                return c.getValue();
            }
        };
    }

    private Iterator<Document> matching(Iterator<Object> positions, Document query) {
        Iterator<Document> docs = new Iterator<Document>() {
            @Override
            public boolean hasNext() {
                return positions.hasNext();
            }

            @Override
            public Document next() {
                return dataMap.get(positions.next());
            }
        };
        return filter(docs, query);
    }

    /** The documents (nulls skipped) that match the query, lazily. */
    private Iterator<Document> filter(Iterator<Document> docs, Document query) {
        return new Iterator<Document>() {
            private Document next;

            @Override
            public boolean hasNext() {
                while (next == null && docs.hasNext()) {
                    Document d = docs.next();
                    if (d != null && documentMatchesQuery(d, query)) {
                        next = d;
                    }
                }
                return next != null;
            }

            @Override
            public Document next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                Document d = next;
                next = null;
                return d;
            }
        };
    }
}
