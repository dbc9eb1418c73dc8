// Runs mongo-java-server with its on-disk H2 backend on a chosen host and port, and makes every
// acknowledged write durable. The library's own main classes bind only localhost:27017 and
// acknowledge writes that H2 keeps in memory for up to a second, hence this launcher.
// Started with Java's single-file source launcher: java -cp 'libs/*' MongoWireServer.java HOST PORT FILE
// ORDERTAG_MONGO_FSYNC=false skips the fsync: writes then survive kill -9, not a power cut.
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.AbstractUniqueIndex;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.KeyValue;
import de.bwaldvogel.mongo.backend.Missing;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.bson.BsonDecoder;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import java.nio.ByteBuffer;
import java.util.AbstractMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.h2.mvstore.DataUtils;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;
import org.h2.mvstore.WriteBuffer;
import org.h2.mvstore.type.BasicDataType;
import org.h2.mvstore.type.ObjectDataType;

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

        /** Without the background writer the file is compacted here, between commands. */
        static final long COMPACT_EVERY_MS = 30_000;

        /** Shared by commands while they change the store; exclusive for a commit. */
        private final ReentrantReadWriteLock changes = new ReentrantReadWriteLock();
        private final Object syncLock = new Object();
        private final boolean fsync;
        private long syncedVersion;
        private volatile long lastCompactMs = System.currentTimeMillis();

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

            /** The library's collection over a documents map opened first with DocumentType
             * (the library's own openMap then finds it open). */
            @Override
            protected MongoCollection<Object> openOrCreateCollection(
                    String collectionName, CollectionOptions options) {
                getMvStore().openMap("databases." + getFullCollectionNamespace(collectionName),
                    new MVMap.Builder<Object, Object>().valueType(new DocumentType()));
                return super.openOrCreateCollection(collectionName, options);
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

        /** Rewrite sparse chunks so the file does not only grow (the background writer's job
         * in the stock store). Runs under the exclusive lock: nothing is halfway. */
        private void compactNowAndThen(MVStore store) {
            long now = System.currentTimeMillis();
            if (now - lastCompactMs < COMPACT_EVERY_MS) {
                return;
            }
            lastCompactMs = now;
            if (store.compact(50, 16 * 1024 * 1024)) {
                store.commit();
            }
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

        /** The document's BSON, or null if it would not read back as the same document. */
        private static byte[] bson(Document document) {
            ByteBuf out = Unpooled.buffer(1024);
            try {
                BsonEncoder.encodeDocument(document, out);
                byte[] bytes = new byte[out.readableBytes()];
                out.readBytes(bytes);
                return document.equals(decode(bytes)) ? bytes : null;
            } catch (RuntimeException unencodable) {
                return null;
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

    /** The library's H2UniqueIndex over SerialisedKey: each lookup serialises its key once. */
    static final class FastUniqueIndex extends AbstractUniqueIndex<Object> {
        private final MVMap<SerialisedKey, Object> map;

        FastUniqueIndex(MVMap<SerialisedKey, Object> map, String name, List<IndexKey> keys, boolean sparse) {
            super(name, keys, sparse);
            this.map = map;
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

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: MongoWireServer HOST PORT DATA_FILE");
            System.exit(2);
        }
        boolean fsync = !"false".equals(System.getenv("ORDERTAG_MONGO_FSYNC"));
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
