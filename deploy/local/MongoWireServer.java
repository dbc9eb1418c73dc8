// Runs mongo-java-server with its on-disk H2 backend on a chosen host and port, and makes every
// acknowledged write durable. The library's own main classes bind only localhost:27017 and
// acknowledge writes that H2 keeps in memory for up to a second, hence this launcher.
// Started with Java's single-file source launcher: java -cp 'libs/*' MongoWireServer.java HOST PORT FILE
// ORDERTAG_MONGO_FSYNC=false skips the fsync: writes then survive kill -9, not a power cut.
// ORDERTAG_MONGO_LOG_SCANS=1 prints, every 10 s, the queries that read a whole collection.
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.AbstractUniqueIndex;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.ValueComparator;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.bson.BsonDecoder;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import de.bwaldvogel.mongo.bson.ObjectId;
import java.time.Instant;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.h2.mvstore.DataUtils;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;
import org.h2.mvstore.WriteBuffer;
import org.h2.mvstore.type.BasicDataType;
import org.h2.mvstore.type.ObjectDataType;
import sun.misc.Unsafe;

public class MongoWireServer {
    /**
     * Reported as MongoDB 4.4 (wire version 9): PyMongo 4.14+ refuses older servers, and the
     * library's newest built-in version still reports wire version 8. ordertag uses only
     * operations that MongoDB 4.4 and this server both support (see docs/local-stack.md).
     */
    static final MongoVersion REPORTED_VERSION = new MongoVersion() {
        public List<Integer> getVersionArray() { return List.of(4, 4, 0); }
        public int getWireVersion() { return 9; }
    };

    /**
     * An H2 backend whose replies to writes go out only once the write is in the file and the
     * file is synced (fsync), like mongod's journaled write concern, and whose file only ever
     * holds whole commands.
     *
     * The stock backend opens H2's MVStore with a background thread that commits whatever is
     * in memory about once a second, so it acknowledges writes a SIGKILL loses, and it may
     * commit an insert halfway: the document stored, its unique index entry not yet (the
     * collection adds the document first). After a restart the retried insert is then let in
     * twice. Here the store never commits by itself: every command but a plain read commits
     * once it is done, while no other command is halfway through a change (commands change
     * the store concurrently under a shared lock; the commit takes it exclusively), then syncs
     * the file before its reply is sent. One sync covers every commit before it: concurrent
     * writers share it (group commit).
     */
    static final class DurableH2Backend extends H2Backend {
        /** Commands that never change data: no lock, no commit, no sync. */
        static final Set<String> READS = Set.of(
            "find", "getmore", "count", "distinct", "listcollections", "listindexes",
            "listdatabases", "ismaster", "hello", "ping", "buildinfo", "whatsmyuri",
            "serverstatus", "killcursors", "endsessions", "dbstats", "collstats", "getlog",
            "getparameter", "getcmdlineopts", "hostinfo", "connectionstatus", "saslstart");

        /**
         * Without the background writer the file is compacted here, between commands, under
         * the exclusive lock: every command waits meanwhile. Rewriting 16 MB of half-empty
         * chunks took seconds (every page read back through Java serialisation), a stall of
         * every write each 30 s under load; so a busy store compacts in small steps, and the
         * large ones wait for a quiet moment.
         */
        static final long COMPACT_EVERY_MS = 30_000;
        static final long COMPACT_STEP_EVERY_MS = 10_000;  // under constant load
        static final int COMPACT_BYTES = 16 * 1024 * 1024;  // when the store is quiet
        static final int COMPACT_STEP_BYTES = 1024 * 1024;  // a step: tens of milliseconds
        static final long QUIET_MS = 1_000;  // no change for this long: the store is quiet


        /** Shared by commands while they change the store; exclusive for a commit. */
        private final ReentrantReadWriteLock changes = new ReentrantReadWriteLock();
        private final Object syncLock = new Object();
        private final boolean fsync;
        private long syncedVersion;
        private volatile long lastCompactMs = System.currentTimeMillis();
        private volatile long lastChangeMs = System.currentTimeMillis();

        /** With fsync false the reply waits for the write to the file, not for the disk:
         * enough to survive a crash of this process, not one of the machine. */
        DurableH2Backend(String fileName, boolean fsync) {
            super(new MVStore.Builder()
                .fileName(fileName)
                .autoCommitDisabled()      // no background commits of half-done commands
                .autoCommitBufferSize(0)   // nor commits forced by unsaved memory mid-command
                .open());
            this.fsync = fsync;
            syncedVersion = getMvStore().getCurrentVersion();
            Thread quiet = new Thread(this::compactWhenQuiet, "compact-when-quiet");
            quiet.setDaemon(true);
            quiet.start();
        }

        /** Databases whose unique indexes keep each key's serialised form (see IndexKeyType).
         * Called from H2Backend's constructor too, before this class's fields are set: the
         * database reads the store through the outer instance, set before any constructor runs. */
        @Override
        protected MongoDatabase openOrCreateDatabase(String databaseName) {
            return new FastIndexDatabase(databaseName);
        }

        final class FastIndexDatabase extends H2Database {
            FastIndexDatabase(String databaseName) {
                super(databaseName, getMvStore(), getCursorRegistry());
            }

            /** The library's own map name and on-disk format: only the comparison is cheaper. */
            @Override
            protected Index<Object> openOrCreateUniqueIndex(
                    String collectionName, String indexName, List<IndexKey> keys, boolean sparse) {
                String mapName = getFullCollectionNamespace(collectionName) + "._index_" + indexName;
                MVMap<SerialisedKey, Object> map = getMvStore().openMap(
                    mapName, new MVMap.Builder<SerialisedKey, Object>().keyType(IndexKeyType.INSTANCE));
                return new FastUniqueIndex(map, indexName, keys, sparse);
            }

            /** Plain (non-unique) indexes, which the library ignores: see EqualityIndex. */
            @Override
            protected Index<Object> openOrCreateSecondaryIndex(
                    String collectionName, String indexName, List<IndexKey> keys, boolean sparse) {
                return new EqualityIndex(indexName, keys);
            }

            /** The library's collection (its map names) over a documents map opened first
             * with DocumentType, sizing its documents only when asked (SizedWhenAsked). */
            @Override
            protected MongoCollection<Object> openOrCreateCollection(
                    String collectionName, CollectionOptions options) {
                String name = getFullCollectionNamespace(collectionName);
                getMvStore().openMap("databases." + name,
                    new MVMap.Builder<Object, Object>().valueType(new DocumentType()));
                MVMap<Object, Document> documents = getMvStore().openMap("databases." + name);
                MVMap<String, Object> meta = getMvStore().openMap("meta." + name);
                return new SizedWhenAsked(
                    this, collectionName, options, documents, meta, getCursorRegistry());
            }
        }

        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            if (READS.contains(command.toLowerCase(Locale.ROOT))) {
                return super.handleCommand(channel, database, command, query);
            }
            changes.readLock().lock();
            try {
                return super.handleCommand(channel, database, command, query);
            } finally {
                changes.readLock().unlock();
                // also after a failed command: an ordered bulk write may have stored a part;
                // a command run inside another commits with the outer one
                if (changes.getReadHoldCount() == 0) {
                    persist();
                }
            }
        }

        /** Commit what is in memory, then sync the file unless a later sync already covered it. */
        private void persist() {
            MVStore store = getMvStore();
            long committed;
            changes.writeLock().lock();
            try {
                store.commit();  // writes every finished command's changes (waits for the write)
                committed = store.getCurrentVersion();
                compactNowAndThen(store);
            } finally {
                changes.writeLock().unlock();
            }
            synchronized (syncLock) {
                if (committed > syncedVersion) {
                    if (fsync) {
                        store.sync();
                    }
                    syncedVersion = committed;
                }
            }
        }

        /** A small compaction step now and then while commands keep coming (under the lock). */
        private void compactNowAndThen(MVStore store) {
            long now = System.currentTimeMillis();
            lastChangeMs = now;
            if (now - lastCompactMs < COMPACT_STEP_EVERY_MS) {
                return;
            }
            lastCompactMs = now;
            if (store.compact(50, COMPACT_STEP_BYTES)) {
                store.commit();
            }
        }

        /** Rewrite sparse chunks so the file does not only grow (the background writer's job
         * in the stock store), in a quiet moment: nothing waits for it then. */
        private void compactWhenQuiet() {
            while (true) {
                try {
                    Thread.sleep(QUIET_MS);
                } catch (InterruptedException e) {
                    return;
                }
                long now = System.currentTimeMillis();
                if (now - lastChangeMs < QUIET_MS || now - lastCompactMs < COMPACT_EVERY_MS) {
                    continue;
                }
                MVStore store = getMvStore();
                changes.writeLock().lock();
                try {
                    if (store.isClosed()) {
                        return;
                    }
                    lastCompactMs = now;
                    if (store.compact(50, COMPACT_BYTES)) {
                        store.commit();
                    }
                } catch (IllegalStateException closing) {  // closed meanwhile (shutting down)
                    return;
                } finally {
                    changes.writeLock().unlock();
                }
            }
        }
    }

    /**
     * The library's H2 collection, but the size of its documents (collStats' and dbStats'
     * "size") is added up when asked, not kept up to date on every write. Keeping it encoded
     * each document written to BSON once more just to measure it, and an update both its old
     * and its new version: a fifth of the server's CPU for the customers' versioned updates
     * (JFR, docs/local-stack.md). Nothing in ordertag asks for the size.
     */
    static final class SizedWhenAsked extends H2Collection {
        SizedWhenAsked(MongoDatabase database, String collectionName, CollectionOptions options,
                       MVMap<Object, Document> documents, MVMap<String, Object> meta,
                       CursorRegistry cursors) {
            super(database, collectionName, options, documents, meta, cursors);
            opened = true;
        }

        /** False while the library's constructor runs: it logs the size it kept (a debug line
         * whose argument is worked out whatever the log level), which here would read every
         * document at each start. */
        private boolean opened;

        @Override
        protected boolean tracksDataSize() {
            return false;
        }

        /** The library takes the first index that can answer a query. Here a unique one
         * still does; otherwise the plain index with the fewest candidates answers (for
         * {deliveries: {$elemMatch: {follow_up: {$gt: 0}, status: {$in: [...settled]}}}}
         * the follow-up index's few, not the status index's every settled alert); and with
         * none, the whole collection is read (matchDocuments below). */
        @Override
        protected QueryResult queryDocuments(Document query, Document orderBy, int numberToSkip,
                                             int limit, int batchSize, Document fieldSelector) {
            EqualityIndex best = null;
            long fewestFound = Long.MAX_VALUE;
            for (Index<Object> index : getIndexes()) {
                if (!(index instanceof EqualityIndex plain)) {
                    if (index.canHandle(query)) {
                        return matchDocuments(query, index.getPositions(query), orderBy,
                            numberToSkip, limit, batchSize, fieldSelector);
                    }
                    continue;
                }
                long found = plain.estimate(query);
                if (found >= 0 && found < fewestFound) {
                    best = plain;
                    fewestFound = found;
                }
            }
            Set<Object> fewest = best == null ? null : best.candidates(query);
            if (fewest == null) {
                return matchDocuments(
                    query, orderBy, numberToSkip, limit, batchSize, fieldSelector);
            }
            if (ScanLog.ON && fewest.size() >= ScanLog.WIDE) {
                ScanLog.scanned(getFullName() + " (index, " + ScanLog.WIDE + "+ found)", query,
                    fewest.size());
            }
            return matchDocuments(
                query, fewest, orderBy, numberToSkip, limit, batchSize, fieldSelector);
        }

        /** A query no index answers: every document is read and matched (ScanLog). */
        @Override
        protected QueryResult matchDocuments(Document query, Document orderBy, int numberToSkip,
                                             int numberToReturn, int batchSize,
                                             Document fieldSelector) {
            if (ScanLog.ON) {
                ScanLog.scanned(getFullName(), query, count());
            }
            return super.matchDocuments(
                query, orderBy, numberToSkip, numberToReturn, batchSize, fieldSelector);
        }

        @Override
        protected int getDataSize() {
            if (!opened) {
                return 0;
            }
            long size = streamAllDocumentsWithPosition()
                .mapToLong(stored -> DocumentType.sizeOf(stored.getDocument()))
                .sum();
            return (int) Math.min(size, Integer.MAX_VALUE);
        }
    }

    /**
     * With ORDERTAG_MONGO_LOG_SCANS set, the queries that read a whole collection (no index
     * answered them) or a thousand documents or more an index found, by collection and shape
     * (values left out), with how often they ran and how many documents they read, printed
     * every 10 s: what mongod's slow-query log shows
     * as COLLSCAN. A query that scans here may well use an index on a MongoDB (this server
     * answers fewer queries from indexes, see docs/local-stack.md), but one that scans a
     * growing collection every few seconds is worth a look either way.
     */
    static final class ScanLog {
        static final boolean ON = System.getenv("ORDERTAG_MONGO_LOG_SCANS") != null;
        /** An index's answer this wide is listed too (each candidate is read and matched). */
        static final int WIDE = 1_000;
        private static final Map<String, long[]> SCANS = new HashMap<>();  // shape -> runs, read

        static void scanned(String collection, Document query, int documents) {
            String key = collection + " " + shape(query);
            synchronized (SCANS) {
                long[] seen = SCANS.computeIfAbsent(key, k -> new long[2]);
                seen[0]++;
                seen[1] += documents;
            }
        }

        static String shape(Object value) {
            if (value instanceof Document document) {
                StringBuilder out = new StringBuilder("{");
                for (Map.Entry<String, Object> field : document.entrySet()) {
                    if (out.length() > 1) {
                        out.append(", ");
                    }
                    out.append(field.getKey()).append(": ").append(shape(field.getValue()));
                }
                return out.append("}").toString();
            }
            if (value instanceof List<?> list) {
                return list.isEmpty() ? "[]" : "[" + shape(list.get(0)) + ", ...]";
            }
            return "?";
        }

        static void start() {
            if (!ON) {
                return;
            }
            Thread printer = new Thread(() -> {
                while (true) {
                    try {
                        Thread.sleep(10_000);
                    } catch (InterruptedException e) {
                        return;
                    }
                    Map<String, long[]> scans;
                    synchronized (SCANS) {
                        scans = new HashMap<>(SCANS);
                        SCANS.clear();
                    }
                    scans.entrySet().stream()
                        .sorted((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1]))
                        .forEach(scan -> System.out.println("scan: " + scan.getValue()[0]
                            + " runs, " + scan.getValue()[1] + " documents read: "
                            + scan.getKey()));
                }
            }, "scan-log");
            printer.setDaemon(true);
            printer.start();
        }
    }

    /**
     * ObjectIds the server makes (for documents upserts insert: the tagger's history, the
     * customers) ordered by time like a MongoDB's (seconds, a per-process random part, a
     * counter). The library makes them from 12 random bytes, so each upserted document landed
     * at a random place in its collection's map and `_id` index, and every commit rewrote pages
     * all over both (16 KB pages for ~700 B history entries): at 20,000 tagged orders the file
     * had grown 350 MB, 171 MB with these, and the server spent ~17% less CPU per order. The
     * gap widens as a collection grows; time-ordered ids append.
     *
     * The library takes its random bytes from a static SecureRandom, swapped here for one
     * that gives 12-byte requests time-ordered bytes. A JVM that refuses the swap keeps random
     * ids: slower, never wrong.
     */
    static final class TimeOrderedIds extends SecureRandom {
        private static final byte[] PROCESS = new byte[5];
        private static final AtomicInteger COUNTER;

        static {
            ThreadLocalRandom random = ThreadLocalRandom.current();
            random.nextBytes(PROCESS);
            COUNTER = new AtomicInteger(random.nextInt());
        }

        static void install() {
            try {
                new ObjectId();  // initialise the class first: its initialiser sets the field
                Field field = ObjectId.class.getDeclaredField("random");
                Field theUnsafe = Unsafe.class.getDeclaredField("theUnsafe");
                theUnsafe.setAccessible(true);
                Unsafe unsafe = (Unsafe) theUnsafe.get(null);
                unsafe.putObject(unsafe.staticFieldBase(field), unsafe.staticFieldOffset(field),
                    new TimeOrderedIds());
            } catch (ReflectiveOperationException | RuntimeException refused) {
                System.err.println("ObjectIds stay random (" + refused + ")");
            }
        }

        @Override
        public void nextBytes(byte[] bytes) {
            if (bytes.length != 12) {
                super.nextBytes(bytes);
                return;
            }
            int seconds = (int) (System.currentTimeMillis() / 1000);
            int count = COUNTER.getAndIncrement();
            bytes[0] = (byte) (seconds >>> 24);
            bytes[1] = (byte) (seconds >>> 16);
            bytes[2] = (byte) (seconds >>> 8);
            bytes[3] = (byte) seconds;
            System.arraycopy(PROCESS, 0, bytes, 4, 5);
            bytes[9] = (byte) (count >>> 16);
            bytes[10] = (byte) (count >>> 8);
            bytes[11] = (byte) count;
        }
    }

    /**
     * A unique index's key with its Java-serialised form, computed once. H2 orders the library's
     * keys (KeyValue, not Comparable) by that form and, stock, serialises BOTH keys again on
     * every comparison of a B-tree walk: most of the server's CPU per indexed write. The order
     * and the bytes on disk stay exactly the stock ones, so files written before read the same.
     */
    static final class SerialisedKey {
        final byte[] bytes;
        private KeyValue keyValue;

        SerialisedKey(KeyValue keyValue) {
            this.keyValue = keyValue;
            this.bytes = ObjectDataType.serialize(keyValue);
        }

        SerialisedKey(byte[] bytes) {
            this.bytes = bytes;
        }

        /** Read back only when an index is walked whole (regular expressions, listings). */
        synchronized KeyValue keyValue() {
            if (keyValue == null) {
                keyValue = (KeyValue) ObjectDataType.deserialize(bytes);
            }
            return keyValue;
        }
    }

    /** Writes and reads a key as H2's ObjectDataType does for a serialised object (type byte,
     * length, bytes) and compares the kept bytes as it does (ObjectDataType.compareNotNull). */
    static final class IndexKeyType extends BasicDataType<SerialisedKey> {
        static final IndexKeyType INSTANCE = new IndexKeyType();
        /** ObjectDataType.TYPE_SERIALIZED_OBJECT: package-private in H2, fixed by its file format. */
        static final byte SERIALIZED_OBJECT = 19;

        @Override
        public int compare(SerialisedKey a, SerialisedKey b) {
            return a == b ? 0 : ObjectDataType.compareNotNull(a.bytes, b.bytes);
        }

        @Override
        public int getMemory(SerialisedKey key) {
            return 48 + key.bytes.length;
        }

        @Override
        public void write(WriteBuffer buffer, SerialisedKey key) {
            buffer.put(SERIALIZED_OBJECT).putVarInt(key.bytes.length).put(key.bytes);
        }

        @Override
        public SerialisedKey read(ByteBuffer buffer) {
            byte type = buffer.get();
            if (type != SERIALIZED_OBJECT) {
                throw new IllegalStateException("unique index key of H2 type " + type + ", expected "
                    + SERIALIZED_OBJECT + " (a serialised KeyValue)");
            }
            byte[] bytes = new byte[DataUtils.readVarInt(buffer)];
            buffer.get(bytes);
            return new SerialisedKey(bytes);
        }

        @Override
        public SerialisedKey[] createStorage(int size) {
            return new SerialisedKey[size];
        }
    }

    /**
     * A collection's documents stored as BSON, where the stock backend has H2 store them by Java
     * serialisation: H2 writes a changed page whole, so every write re-encodes each document
     * sharing its page, and Java serialisation of a nested map costs several times BSON's. A
     * document is stored as BSON only if it reads back equal (same fields in the same order,
     * same Java types); any other value, and any document that would not, is stored as H2
     * always did, and pages written before read as they were. Files written since need this
     * launcher (the stock backend does not know the BSON tag).
     */
    static final class DocumentType extends BasicDataType<Object> {
        /** A tag H2's ObjectDataType never writes (its tags end at 119). */
        static final byte BSON_DOCUMENT = 127;
        private final ObjectDataType others = new ObjectDataType();
        /** Twice a document's BSON size, averaged as H2 does for the values it serialises:
         * what a page holds in memory decides when it splits. */
        private volatile int averageSize = 2048;

        @Override
        public int compare(Object a, Object b) {
            return others.compare(a, b);
        }

        @Override
        public int getMemory(Object value) {
            return value instanceof Document ? averageSize : others.getMemory(value);
        }

        private void sized(int bytes) {
            averageSize = (int) ((bytes * 2L + 15L * averageSize) / 16);
        }

        @Override
        public void write(WriteBuffer buffer, Object value) {
            byte[] bson = value instanceof Document document ? bson(document) : null;
            if (bson == null) {
                others.write(buffer, value);
            } else {
                buffer.put(BSON_DOCUMENT).putVarInt(bson.length).put(bson);
                sized(bson.length);
            }
        }

        /** The document's BSON, or null if it would not read back as the same document. A
         * document of only the types BSON keeps exactly (keptExactly: all that ordertag and
         * PyMongo send) is not decoded again to check: that check was an eighth of the CPU
         * of an update. */
        private static byte[] bson(Document document) {
            ByteBuf out = Unpooled.buffer(1024);
            try {
                BsonEncoder.encodeDocument(document, out);
                byte[] bytes = new byte[out.readableBytes()];
                out.readBytes(bytes);
                return keptExactly(document) || document.equals(decode(bytes)) ? bytes : null;
            } catch (RuntimeException unencodable) {
                return null;
            }
        }

        /** Whether BSON gives back this value as it is: the same class and the same value.
         * Other types (binary, regex, timestamps, ...) are checked by reading them back; a
         * time with a part below the millisecond (the server's own clock) is not kept. */
        static boolean keptExactly(Object value) {
            if (value == null || value instanceof String || value instanceof Integer
                    || value instanceof Long || value instanceof Double
                    || value instanceof Boolean || value instanceof ObjectId) {
                return true;
            }
            if (value instanceof Instant instant) {
                return instant.getNano() % 1_000_000 == 0;
            }
            if (value instanceof Document document) {
                for (Object field : document.values()) {
                    if (!keptExactly(field)) {
                        return false;
                    }
                }
                return true;
            }
            if (value instanceof List<?> list) {
                for (Object element : list) {
                    if (!keptExactly(element)) {
                        return false;
                    }
                }
                return true;
            }
            return false;
        }

        /** A document's size as BSON (what collStats reports); 0 for one BSON cannot hold
         * (stored by Java serialisation). */
        static long sizeOf(Document document) {
            ByteBuf out = Unpooled.buffer(1024);
            try {
                BsonEncoder.encodeDocument(document, out);
                return out.readableBytes();
            } catch (RuntimeException unencodable) {
                return 0;
            } finally {
                out.release();
            }
        }

        private static Document decode(byte[] bytes) {
            return BsonDecoder.decodeBson(Unpooled.wrappedBuffer(bytes));
        }

        @Override
        public Object read(ByteBuffer buffer) {
            if (buffer.get(buffer.position()) != BSON_DOCUMENT) {
                return others.read(buffer);
            }
            buffer.get();
            byte[] bytes = new byte[DataUtils.readVarInt(buffer)];
            buffer.get(bytes);
            sized(bytes.length);
            return decode(bytes);
        }

        @Override
        public Object[] createStorage(int size) {
            return new Object[size];
        }
    }

    /**
     * The library's H2UniqueIndex over SerialisedKey (each lookup serialises its key once),
     * which also answers a query naming its fields and others, such as {alert_id: X,
     * version: 3} or {alert_id: {$in: [...]}, deliveries: {$elemMatch: ...}}.
     *
     * The stock index serves only a query whose fields are exactly its own; anything more is a
     * scan of the whole collection, so every conditional update by id cost a pass over every
     * document (the notifier's delivery claims and settlements, the versioned writes). A
     * query's top-level fields all must hold, so the documents its own fields find are a
     * superset of the answer; the collection then matches each against the whole query (it
     * does so for every index), which keeps the answer exact.
     */
    static final class FastUniqueIndex extends AbstractUniqueIndex<Object> {
        private final MVMap<SerialisedKey, Object> map;

        FastUniqueIndex(MVMap<SerialisedKey, Object> map, String name, List<IndexKey> keys, boolean sparse) {
            super(name, keys, sparse);
            this.map = map;
        }

        /** The part of the query on this index's fields; null when it does not name them all. */
        private Document ownPart(Document query) {
            if (!query.keySet().containsAll(keySet())) {
                return null;
            }
            if (query.size() == keySet().size()) {
                return query;
            }
            Document own = new Document();
            for (String key : keys()) {
                own.put(key, query.get(key));
            }
            return own;
        }

        @Override
        public synchronized boolean canHandle(Document query) {
            Document own = ownPart(query);
            return own != null && super.canHandle(own);
        }

        @Override
        public synchronized Iterable<Object> getPositions(Document query) {
            return super.getPositions(ownPart(query));
        }

        @Override
        protected Object removeDocument(KeyValue keyValue) {
            return map.remove(new SerialisedKey(keyValue));
        }

        @Override
        protected boolean putKeyPosition(KeyValue keyValue, Object position) {
            return map.putIfAbsent(new SerialisedKey(keyValue), Missing.ofNullable(position)) == null;
        }

        @Override
        protected Iterable<Map.Entry<KeyValue, Object>> getIterable() {
            return () -> map.entrySet().stream()
                .map(entry -> (Map.Entry<KeyValue, Object>)
                    new AbstractMap.SimpleImmutableEntry<>(entry.getKey().keyValue(), entry.getValue()))
                .iterator();
        }

        @Override
        protected Object getPosition(KeyValue keyValue) {
            return map.get(new SerialisedKey(keyValue));
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
    }

    /**
     * A non-unique index (MongoDB's plain {field: 1}) that answers equality on its first field:
     * {order_no: X}, {order_no: {$in: [...]}}, {tag_names: "urgent", ...}, with more fields in
     * the query or not. The library keeps no such index (it ignores them: every query on a
     * non-unique field was a scan of the whole collection, so the notifier's read of a batch's
     * alerts by order cost 5 s at 20,000 alerts).
     *
     * Kept in memory, not in the file: built from the collection when the server opens it (the
     * library reads every document for each index then anyway) and kept current by every
     * change under the collection's lock, so it can never disagree with the file, whatever
     * wrote the file before. Candidates only: the collection matches each document it finds
     * against the whole query. Documents whose field is missing, null or not a plain value
     * (a sub-document, an array of arrays) are not held, and a query for such a value is left
     * to the scan.
     */
    static final class EqualityIndex extends Index<Object> {
        private final Map<Object, Set<Object>> positionsByValue = new HashMap<>();
        private long entries;
        /** The top-level field the indexed values come from ("history" for "history.tag"). */
        private final String source;
        /** A compound index's second field when it is a top-level one ("created_at" of
         * (status, created_at)), whose value each document holds there is kept by position:
         * a bound on it narrows what the first field finds without reading the documents. */
        private final String second;
        private final Map<Object, Object> secondByPosition = new HashMap<>();

        EqualityIndex(String name, List<IndexKey> keys) {
            super(name, keys, true);  // sparse: a document it does not hold is no error
            source = keys.get(0).getKey().split("\\.", 2)[0];
            String next = keys.size() > 1 ? keys.get(1).getKey() : null;
            second = next == null || next.contains(".") || next.equals("_id") ? null : next;
        }

        /** The second field's value as kept: a number or a time, what a bound can leave out
         * (null for anything else: such a document is never left out by a bound). */
        private Object secondOf(Document document) {
            Object value = second == null ? null : held(document.get(second));
            return value instanceof Double || value instanceof Instant ? value : null;
        }

        private void keepSecond(Document document, Object position) {
            Object value = secondOf(document);
            if (value == null) {
                secondByPosition.remove(position);
            } else {
                secondByPosition.put(position, value);
            }
        }

        /** Leaves out the found documents whose second field's kept value fails a bound the
         * query sets on it (numbers against numbers, times against times); any other is kept
         * for the collection to match. */
        private Set<Object> narrowedBySecond(Set<Object> found, Document query) {
            if (second == null || !(query.get(second) instanceof Document bounds)
                    || bounds.isEmpty() || !RANGE.containsAll(bounds.keySet())) {
                return found;
            }
            Set<Object> kept = new LinkedHashSet<>();
            for (Object position : found) {
                Object value = secondByPosition.get(position);
                if (value == null || within(value, bounds)) {
                    kept.add(position);
                }
            }
            return kept;
        }

        /** What a value is compared as (as the library's Utils.normalizeValue: numbers as
         * doubles); null when this index does not hold such values. */
        private static Object held(Object value) {
            if (value == null || value instanceof Missing) {
                return null;
            }
            if (value instanceof Long number && number != (long) (double) number) {
                return number;
            }
            if (value instanceof Number number) {
                double d = number.doubleValue();
                return d == -0.0 ? 0.0 : d;
            }
            if (value instanceof String || value instanceof Boolean || value instanceof ObjectId
                    || value instanceof Instant || value instanceof Date || value instanceof UUID) {
                return value;
            }
            return null;
        }

        /** The held values of the index's first field in a document (each element of an array). */
        private Set<Object> valuesOf(Document document) {
            Set<Object> values = new HashSet<>();
            for (KeyValue key : getKeyValues(document)) {
                Object value = held(key.get(0));
                if (value != null) {
                    values.add(value);
                }
            }
            return values;
        }

        private static Object positionOf(Document document) {
            return Missing.ofNullable(document.get("_id"));
        }

        private void hold(Object value, Object position) {
            // in the order documents came (as a scan would list them), not a hash's order
            if (positionsByValue.computeIfAbsent(value, v -> new LinkedHashSet<>()).add(position)) {
                entries++;
            }
        }

        private void drop(Object value, Object position) {
            Set<Object> positions = positionsByValue.get(value);
            if (positions != null && positions.remove(position)) {
                entries--;
                if (positions.isEmpty()) {
                    positionsByValue.remove(value);
                }
            }
        }

        /** The positions of the documents a query may match by its condition on this index's
         * field, a superset of the answer (the collection matches each against the whole
         * query); null when this index cannot say. The condition is on the field itself, or
         * inside an $elemMatch on the array holding it ({deliveries: {$elemMatch: {status:
         * X, ...}}} for deliveries.status): equality, $in, or bounds ($gt, $gte, $lt, $lte)
         * that are all numbers or all times (only values of that kind match them, and a
         * document without the field never does). */
        synchronized Set<Object> candidates(Document query) {
            String field = keys().get(0);
            if (query.containsKey(field)) {
                Object condition = query.get(field);
                Set<Object> found = candidatesFor(condition);
                if (found == null) {
                    return null;
                }
                found = narrowedBySecond(found, query);
                return isRange(condition) ? inStoredOrder(found) : found;
            }
            int dot = field.indexOf('.');
            if (dot > 0 && query.get(field.substring(0, dot)) instanceof Document outer
                    && outer.size() == 1 && outer.get("$elemMatch") instanceof Document inner
                    && inner.containsKey(field.substring(dot + 1))) {
                Set<Object> found = candidatesFor(inner.get(field.substring(dot + 1)));
                return found == null ? null : inStoredOrder(found);
            }
            return null;
        }

        /** How many documents this index would find for the query, without listing them
         * where it can say (equality, $in: the sizes it keeps; more than the answer when the
         * second field narrows it); -1 when it cannot answer the query. */
        synchronized long estimate(Document query) {
            Object condition = query.get(keys().get(0));
            if (query.containsKey(keys().get(0)) && !(condition instanceof Document)) {
                Object normal = held(condition);
                return normal == null ? -1 : positionsByValue.getOrDefault(normal, Set.of()).size();
            }
            Set<Object> found = candidates(query);
            return found == null ? -1 : found.size();
        }

        private static boolean isRange(Object condition) {
            return condition instanceof Document expression && !expression.containsKey("$in");
        }

        /** Candidates in the collection's own order (its documents' keys), the order a scan
         * gives: the queries answered here since ranges and $elemMatch were (the notifier's
         * sweeps) scanned before, and a caller may have come to rely on that order (an
         * interrupted claim is sent again with its alerts in the order they are read). */
        private static Set<Object> inStoredOrder(Set<Object> positions) {
            List<Object> ordered = new ArrayList<>(positions);
            ObjectDataType keys = new ObjectDataType();  // the documents map's key order
            ordered.sort(keys::compare);
            return new LinkedHashSet<>(ordered);
        }

        private Set<Object> candidatesFor(Object condition) {
            if (!(condition instanceof Document expression)) {
                Object normal = held(condition);
                return normal == null ? null : positionsOf(List.of(normal));
            }
            if (expression.size() == 1 && expression.get("$in") instanceof Collection<?> in) {
                List<Object> values = new ArrayList<>();
                for (Object value : in) {
                    Object normal = held(value);
                    if (normal == null) {
                        return null;
                    }
                    values.add(normal);
                }
                return positionsOf(values);
            }
            return inRange(expression);
        }

        private Set<Object> positionsOf(Collection<Object> values) {
            Set<Object> found = new LinkedHashSet<>();
            for (Object value : values) {
                found.addAll(positionsByValue.getOrDefault(value, Set.of()));
            }
            return found;
        }

        /** The documents holding a value within bounds that are all numbers or all times
         * (only those match such bounds); null for anything else. */
        private Set<Object> inRange(Document bounds) {
            if (bounds.isEmpty() || !RANGE.containsAll(bounds.keySet())) {
                return null;
            }
            boolean numbers = bounds.values().stream().allMatch(Number.class::isInstance);
            boolean times = bounds.values().stream().allMatch(Instant.class::isInstance);
            if (!numbers && !times) {
                return null;
            }
            Set<Object> found = new LinkedHashSet<>();
            for (Map.Entry<Object, Set<Object>> held : positionsByValue.entrySet()) {
                Object value = held.getKey();
                boolean candidate = (numbers ? value instanceof Number : value instanceof Instant)
                    && within(value, bounds);
                if (candidate) {
                    found.addAll(held.getValue());
                }
            }
            return found;
        }

        private static final Set<String> RANGE = Set.of("$gt", "$gte", "$lt", "$lte");

        /** Whether a kept value meets every bound; true when it cannot tell (a bound or the
         * value of another type): kept. */
        private static boolean within(Object value, Document bounds) {
            for (Map.Entry<String, Object> bound : bounds.entrySet()) {
                Object limit = bound.getValue();
                if (!(value instanceof Number && limit instanceof Number)
                        && !(value instanceof Instant && limit instanceof Instant)) {
                    continue;
                }
                // the library's matcher compares so (-0.0 equal to 0, large whole numbers as
                // longs): the same comparison leaves out exactly what it would not match
                int order = ValueComparator.asc().compare(value, limit);
                boolean holds = switch (bound.getKey()) {
                    case "$gt" -> order > 0;
                    case "$gte" -> order >= 0;
                    case "$lt" -> order < 0;
                    default -> order <= 0;
                };
                if (!holds) {
                    return false;
                }
            }
            return true;
        }

        @Override
        public synchronized boolean canHandle(Document query) {
            return candidates(query) != null;
        }

        @Override
        public synchronized Iterable<Object> getPositions(Document query) {
            return candidates(query);
        }

        @Override
        public synchronized void add(Document document, Object position, MongoCollection<Object> collection) {
            for (Object value : valuesOf(document)) {
                hold(value, position);
            }
            keepSecond(document, position);
        }

        @Override
        public synchronized Object remove(Document document) {
            Object position = positionOf(document);
            for (Object value : valuesOf(document)) {
                drop(value, position);
            }
            secondByPosition.remove(position);
            return null;  // a non-unique index does not locate documents
        }

        @Override
        public synchronized void updateInPlace(Document oldDocument, Document newDocument, Object position,
                                               MongoCollection<Object> collection) {
            if (second != null && !Objects.equals(oldDocument.get(second), newDocument.get(second))) {
                keepSecond(newDocument, position);
            }
            if (Objects.equals(oldDocument.get(source), newDocument.get(source))) {
                return;  // the update left the indexed field alone (most updates, most indexes)
            }
            Set<Object> before = valuesOf(oldDocument);
            Set<Object> after = valuesOf(newDocument);
            for (Object value : before) {
                if (!after.contains(value)) {
                    drop(value, position);
                }
            }
            for (Object value : after) {
                if (!before.contains(value)) {
                    hold(value, position);
                }
            }
        }

        @Override
        public Object getPosition(Document document) {
            return null;
        }

        @Override
        public void checkAdd(Document document, MongoCollection<Object> collection) {
        }

        @Override
        public void checkUpdate(Document oldDocument, Document newDocument, MongoCollection<Object> collection) {
        }

        @Override
        public synchronized long getCount() {
            return entries;
        }

        @Override
        public synchronized boolean isEmpty() {
            return entries == 0;
        }

        @Override
        public long getDataSize() {
            return 0;
        }

        @Override
        public synchronized void drop() {
            positionsByValue.clear();
            secondByPosition.clear();
            entries = 0;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: MongoWireServer HOST PORT DATA_FILE");
            System.exit(2);
        }
        boolean fsync = !"false".equals(System.getenv("ORDERTAG_MONGO_FSYNC"));
        TimeOrderedIds.install();
        ScanLog.start();
        DurableH2Backend backend = new DurableH2Backend(args[2], fsync);
        backend.version(REPORTED_VERSION);
        MongoServer server = new MongoServer(backend);
        server.bind(args[0], Integer.parseInt(args[1]));
        System.out.println("mongo-wire server listening on " + args[0] + ":" + args[1]
            + (fsync ? ", every write synced to disk" : ", every write in the file (no fsync)"));
        // Release the port and close H2 cleanly on SIGTERM (nothing acknowledged is pending).
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdown();
            backend.close();
        }));
        Thread.currentThread().join();
    }
}
