package subreg.tools;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.DatabaseResolver;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.Oplog;
import io.netty.channel.Channel;

/**
 * The embedded MongoDB-wire database for subreg's tests and `make run`:
 * mongo-java-server with its H2 MVStore backend, made durable per write.
 *
 * <pre>
 * java -jar embedded-mongo.jar --listen-addr=127.0.0.1:PORT --data-file=PATH
 *     [--fsync] [--log-level=warn] [--report-version=4.4]
 * </pre>
 *
 * --report-version is the MongoDB version (and so the wire version) announced
 * in hello/isMaster/buildInfo; mongo-java-server itself announces at most wire
 * version 8, which current PyMongo (wanting 9, MongoDB 4.4) refuses to talk to.
 * It changes nothing else: the server implements what it implements.
 * The launcher also answers the `hello` command (as isMaster), which
 * mongo-java-server does not know.
 *
 * Durability: the MVStore is opened with auto-commit disabled (no background
 * writer, so every store runs synchronously in the calling thread), and after
 * every command that is not known to be read-only the store is committed before
 * the reply is returned. A committed chunk is in the file (the OS page cache),
 * so an acknowledged write survives kill -9 of this process; with --fsync the
 * file is also forced to disk after each commit (survives power loss too).
 *
 * Queries (IndexedCollection, SecondaryIndex): upstream keeps no non-unique
 * index and answers every query not exactly on _id by streaming the whole
 * collection, sorting all matches in memory and then limiting. Here non-unique
 * indexes are kept (persistent, one MVMap each, on the index's first key, array
 * elements indexed one by one), and queries are planned: {_id: X, more...} by the
 * _id index; equality/$in/range on an indexed field by that index (for a single
 * equality sorted by nothing/$natural/_id, read in _id order with an early stop);
 * otherwise sorts on nothing/$natural/_id by reading the data map (keyed by _id) in
 * order from the _id bound, stopping after skip+limit matches. count and the
 * count_documents aggregate ($match, $skip/$limit, $group {_id: c, n: {$sum: 1}})
 * count through the same plans (an empty filter: the map's size). Every candidate
 * is filtered by upstream's matcher, so the answers are upstream's.

 * Commits are grouped: a thread whose write is already covered by a commit that
 * another thread finished after it (tracked by MVStore versions) does not commit
 * again.
 */
public final class EmbeddedMongo {

    private EmbeddedMongo() {
    }

    /** Commands that never change the store; everything else is followed by a commit. */
    private static final Set<String> READ_ONLY = Set.of(
        "find", "getmore", "count", "distinct", "killcursors", "hello", "ismaster", "ping",
        "buildinfo", "whatsmyuri", "serverstatus", "listcollections", "listindexes",
        "listdatabases", "dbstats", "collstats", "getlasterror", "getlog", "connectionstatus",
        "getcmdlineopts", "getparameter", "hostinfo", "endsessions", "getfreemonitoringstatus",
        "currentop", "explain", "saslstart", "saslcontinue", "logout", "features");

    /** MongoDB version -> wire version, for --report-version. */
    private static final Map<String, Integer> WIRE_VERSIONS = Map.of(
        "3.6", 6, "4.0", 7, "4.2", 8, "4.4", 9, "5.0", 13, "6.0", 17, "7.0", 21);

    private static MongoVersion reportedVersion(String version) {
        Integer wire = WIRE_VERSIONS.get(version);
        if (wire == null) {
            usage("--report-version must be one of " + WIRE_VERSIONS.keySet());
        }
        String[] parts = version.split("\\.");
        List<Integer> array = List.of(Integer.parseInt(parts[0]), Integer.parseInt(parts[1]), 0);
        return new MongoVersion() {
            @Override
            public List<Integer> getVersionArray() {
                return array;
            }

            @Override
            public int getWireVersion() {
                return wire;
            }
        };
    }

    /** The one store of this process (H2Database's constructor opens collections
     *  before a subclass could keep a reference of its own). */
    private static volatile MVStore theStore;

    static final class IndexedDatabase extends H2Database {
        IndexedDatabase(String name, MVStore store, CursorRegistry cursors) {
            super(name, store, cursors);
        }

        @Override
        protected MongoCollection<Object> openOrCreateCollection(String collectionName, CollectionOptions options) {
            // the map names H2Database uses ("databases." and "meta." + namespace)
            String namespace = getFullCollectionNamespace(collectionName);
            MVMap<Object, Document> dataMap = theStore.openMap("databases." + namespace);
            MVMap<String, Object> metaMap = theStore.openMap("meta." + namespace);
            return new IndexedCollection(this, collectionName, options, dataMap, metaMap, cursorRegistry);
        }

        /** A persistent non-unique index, in the map upstream's unique index of that name
         *  would use (so upstream's dropIndex / drop remove it). Built from the data when
         *  its map is empty (new index, or a data file written before this launcher
         *  kept such indexes). Called from H2Database's constructor: no fields here. */
        @Override
        protected Index<Object> openOrCreateSecondaryIndex(String collectionName, String indexName,
                                                           List<IndexKey> keys, boolean sparse) {
            String mapName = getFullCollectionNamespace(collectionName) + "._index_" + indexName;
            MVMap<String, Object> map = theStore.openMap(mapName);
            return new SecondaryIndex(map, indexName, keys, sparse, "_id");
        }

        @Override
        public Document handleCommand(Channel channel, String command, Document query,
                                      DatabaseResolver databaseResolver, Oplog oplog) {
            if (command.equalsIgnoreCase("aggregate")) {
                Document reply = countAggregate(query);
                if (reply != null) {
                    return reply;
                }
            }
            return super.handleCommand(channel, command, query, databaseResolver, oplog);
        }

        /**
         * count_documents (PyMongo, mongoc): [{$match: F}, {$skip}/{$limit}..., {$group:
         * {_id: constant, n: {$sum: 1}}}]. Upstream runs every aggregate on a list of the
         * whole collection; here the count streams through the collection's plan (an
         * index, or the data map) and an empty filter is the map's size. Same reply as
         * upstream's: no document when nothing matched.
         */
        private Document countAggregate(Document query) {
            Object collectionName = query.get("aggregate");
            Object pipeline = query.get("pipeline");
            if (!(collectionName instanceof String) || !(pipeline instanceof List)
                || !(query.get("cursor") instanceof Document)
                || query.containsKey("collation") || query.containsKey("let") || query.containsKey("explain")) {
                return null;
            }
            List<?> stages = (List<?>) pipeline;
            if (stages.size() < 2 || !(stages.get(0) instanceof Document)) {
                return null;
            }
            Document match = (Document) stages.get(0);
            if (match.size() != 1 || !(match.get("$match") instanceof Document)) {
                return null;
            }
            Document filter = (Document) match.get("$match");
            List<Object[]> skipLimit = new ArrayList<>();
            for (Object stage : stages.subList(1, stages.size() - 1)) {
                if (!(stage instanceof Document) || ((Document) stage).size() != 1) {
                    return null;
                }
                Document d = (Document) stage;
                String op = d.keySet().iterator().next();
                Object v = d.get(op);
                if (!(op.equals("$skip") || op.equals("$limit")) || !(v instanceof Integer || v instanceof Long)
                    || ((Number) v).longValue() < 0 || (op.equals("$limit") && ((Number) v).longValue() == 0)) {
                    return null;
                }
                skipLimit.add(new Object[] {op, ((Number) v).longValue()});
            }
            Object last = stages.get(stages.size() - 1);
            if (!(last instanceof Document) || ((Document) last).size() != 1
                || !(((Document) last).get("$group") instanceof Document)) {
                return null;
            }
            Document group = (Document) ((Document) last).get("$group");
            if (group.size() != 2 || !group.containsKey("_id")) {
                return null;
            }
            Object groupId = group.get("_id");
            if (!(groupId == null || groupId instanceof Integer || groupId instanceof Long || groupId instanceof Double)) {
                return null;
            }
            String field = null;
            for (String k : group.keySet()) {
                if (!k.equals("_id")) {
                    field = k;
                }
            }
            Object sum = group.get(field);
            if (field.startsWith("$") || field.contains(".") || !(sum instanceof Document)
                || !new Document("$sum", 1).equals(sum)) {
                return null;
            }
            String ns = getFullCollectionNamespace((String) collectionName);
            MongoCollection<?> collection = resolveCollection((String) collectionName, false);
            long n = 0;
            if (collection != null) {
                n = filter.isEmpty() ? collection.count() : collection.count(filter, 0, 0);
            }
            for (Object[] sl : skipLimit) {
                long v = (Long) sl[1];
                n = sl[0].equals("$skip") ? Math.max(0, n - v) : Math.min(n, v);
            }
            List<Document> batch = new ArrayList<>();
            if (n > 0) {
                Document result = new Document("_id", groupId);
                result.put(field, n <= Integer.MAX_VALUE ? (Object) Integer.valueOf((int) n) : (Object) Long.valueOf(n));
                batch.add(result);
            }
            Document cursor = new Document();
            cursor.put("id", Long.valueOf(0));
            cursor.put("ns", ns);
            cursor.put("firstBatch", batch);
            Document reply = new Document("cursor", cursor);
            reply.put("ok", 1.0);
            return reply;
        }
    }

    static final class DurableH2Backend extends H2Backend {

        private final MVStore store;
        private final boolean fsync;
        private final boolean perWrite;
        private final Object commitLock = new Object();
        /** Every write that finished while the store's version was below this is in the file. */
        private volatile long durableBelow = Long.MIN_VALUE;

        DurableH2Backend(MVStore store, boolean fsync, boolean perWrite) {
            super(initStore(store));
            this.store = store;
            this.fsync = fsync;
            this.perWrite = perWrite;
        }

        private static MVStore initStore(MVStore store) {
            theStore = store;
            return store;
        }

        @Override
        protected MongoDatabase openOrCreateDatabase(String databaseName) {
            return new IndexedDatabase(databaseName, store(), getCursorRegistry());
        }

        private MVStore store() {
            return theStore;
        }

        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            if (command.equalsIgnoreCase("hello")) {
                // mongo-java-server 1.47 knows only the legacy isMaster; hello (MongoDB 4.4.2+)
                // answers the same with isWritablePrimary in place of ismaster
                Document reply = super.handleCommand(channel, database, "ismaster", query);
                Object primary = reply.remove("ismaster");
                reply.put("isWritablePrimary", primary);
                reply.put("helloOk", Boolean.TRUE);
                return reply;
            }
            try {
                return super.handleCommand(channel, database, command, query);
            } finally {
                // also after a failed command: a partly applied batch (ordered=false with
                // duplicates) must be as durable as its acknowledged part
                if (perWrite && !isReadOnly(command, query)) {
                    makeDurable();
                }
            }
        }

        private static boolean isReadOnly(String command, Document query) {
            String c = command.toLowerCase(Locale.ROOT);
            if (c.equals("aggregate")) {
                Object pipeline = query.get("pipeline");
                String text = String.valueOf(pipeline);
                return !(text.contains("$out") || text.contains("$merge"));
            }
            return READ_ONLY.contains(c);
        }

        /** Returns once every change made by this thread so far is in the file. */
        void makeDurable() {
            long seen = store.getCurrentVersion();
            synchronized (commitLock) {
                if (seen < durableBelow || store.isClosed()) {
                    return; // a commit that began after our write has finished
                }
                long version = store.commit(); // synchronous: no background writer
                if (version >= 0) {
                    durableBelow = version;
                }
                // version < 0: nothing unsaved once the store lock was held, so our
                // write was stored by an earlier (synchronous) store
                if (fsync) {
                    store.sync();
                }
            }
        }

        /** Rewrites sparse chunks so the file does not only grow (the background
         *  writer that would do this is disabled). */
        void housekeeping() {
            synchronized (commitLock) {
                if (store.isClosed()) {
                    return;
                }
                if (store.getFillRate() < 60) {
                    store.compact(60, 4 << 20);
                    long version = store.commit();
                    if (version >= 0) {
                        durableBelow = version;
                    }
                    if (fsync) {
                        store.sync();
                    }
                }
            }
        }

        @Override
        public void close() {
            synchronized (commitLock) {
                super.close(); // MVStore.close(): stores what is left and closes the file
            }
        }
    }

    private static String option(String arg, String name) {
        String prefix = "--" + name + "=";
        return arg.startsWith(prefix) ? arg.substring(prefix.length()) : null;
    }

    private static void usage(String message) {
        System.err.println("embedded-mongo: " + message);
        System.err.println("usage: embedded-mongo --listen-addr=HOST:PORT --data-file=PATH [--fsync] [--commit=per-write|auto] [--log-level=warn|error|info|debug] [--report-version=4.4]");
        System.exit(2);
    }

    public static void main(String[] args) throws Exception {
        String listen = null;
        String dataFile = null;
        String logLevel = "warn";
        boolean fsync = false;
        boolean perWrite = true;
        String reportVersion = "4.4";
        for (String arg : args) {
            String v;
            if ((v = option(arg, "listen-addr")) != null) {
                listen = v;
            } else if ((v = option(arg, "data-file")) != null) {
                dataFile = v;
            } else if ((v = option(arg, "log-level")) != null) {
                logLevel = v;
            } else if ((v = option(arg, "report-version")) != null) {
                reportVersion = v;
            } else if ((v = option(arg, "commit")) != null) {
                // per-write (default) or auto: upstream's 1 s background auto-commit, not
                // durable against kill -9; only for measuring what durability costs
                if (!v.equals("per-write") && !v.equals("auto")) {
                    usage("--commit must be per-write or auto");
                }
                perWrite = v.equals("per-write");
            } else if (arg.equals("--fsync")) {
                fsync = true;
            } else {
                usage("unknown argument " + arg);
            }
        }
        if (listen == null || dataFile == null) {
            usage("--listen-addr and --data-file are required");
        }
        int colon = listen.lastIndexOf(':');
        if (colon <= 0) {
            usage("--listen-addr must be HOST:PORT");
        }
        String host = listen.substring(0, colon);
        int port = Integer.parseInt(listen.substring(colon + 1));

        // before the first logger is created
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", logLevel);
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");

        MVStore.Builder builder = new MVStore.Builder().fileName(dataFile);
        MVStore store = (perWrite ? builder.autoCommitDisabled() : builder).open();
        // A commit per write writes a chunk per write; with the default 45 s retention
        // the file grows by every chunk written in the last 45 s (100 MB in seconds under
        // load). Dead chunks may be reused at once: the live ones (and the header that
        // points at them) are never overwritten, and kill -9 loses nothing the page cache
        // holds. Power loss is what the retention guards against: use --fsync for that.
        if (perWrite) {
            store.setRetentionTime(0);
        }
        DurableH2Backend backend = new DurableH2Backend(store, fsync, perWrite);
        backend.version(reportedVersion(reportVersion));
        MongoServer server = new MongoServer(backend);
        server.bind(new InetSocketAddress(host, port));

        ScheduledExecutorService maintenance = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "mvstore-housekeeping");
            t.setDaemon(true);
            return t;
        });
        if (perWrite) {
            maintenance.scheduleWithFixedDelay(() -> {
                try {
                    backend.housekeeping();
                } catch (RuntimeException e) {
                    System.err.println("embedded-mongo: housekeeping failed: " + e);
                }
            }, 5, 5, TimeUnit.SECONDS);
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            maintenance.shutdownNow();
            server.shutdownNow(); // closes the connections, then the backend (and the MVStore)
            stopped.countDown();
        }, "shutdown"));
        stopped.await();
    }
}
