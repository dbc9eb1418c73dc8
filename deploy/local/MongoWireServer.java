// Runs mongo-java-server with its on-disk H2 backend on a chosen host and port, and makes every
// acknowledged write durable. The library's own main classes bind only localhost:27017 and
// acknowledge writes that H2 keeps in memory for up to a second, hence this launcher.
// Started with Java's single-file source launcher: java -cp 'libs/*' MongoWireServer.java HOST PORT FILE
// ORDERTAG_MONGO_FSYNC=false skips the fsync: writes then survive kill -9, not a power cut.
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.h2.mvstore.MVStore;

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
     * file is synced (fsync), like mongod's journaled write concern.
     *
     * H2's MVStore keeps changes in memory and writes them from a background thread about once
     * a second, so the stock backend acknowledges writes a SIGKILL loses. Here every command
     * but a plain read commits the store and syncs the file before its reply is sent (the
     * reply is written after handleCommand returns). One sync covers every write committed
     * before it: concurrent writers share it (group commit).
     */
    static final class DurableH2Backend extends H2Backend {
        /** Commands that never change data: no commit, no sync. Anything else commits. */
        static final Set<String> READS = Set.of(
            "find", "getmore", "count", "distinct", "listcollections", "listindexes",
            "listdatabases", "ismaster", "hello", "ping", "buildinfo", "whatsmyuri",
            "serverstatus", "killcursors", "endsessions", "dbstats", "collstats", "getlog",
            "getparameter", "getcmdlineopts", "hostinfo", "connectionstatus", "saslstart");

        private final Object syncLock = new Object();
        private final boolean fsync;
        private long syncedVersion;

        /** With fsync false the reply waits for the write to the file, not for the disk:
         * enough to survive a crash of this process, not one of the machine. */
        DurableH2Backend(String fileName, boolean fsync) {
            super(fileName);
            this.fsync = fsync;
            syncedVersion = getMvStore().getCurrentVersion();
        }

        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            try {
                return super.handleCommand(channel, database, command, query);
            } finally {
                // also after a failed command: an ordered bulk write may have stored a part
                if (!READS.contains(command.toLowerCase(Locale.ROOT))) {
                    persist();
                }
            }
        }

        /** Commit what is in memory, then sync the file unless a later sync already covered it. */
        private void persist() {
            MVStore store = getMvStore();
            store.commit();  // writes this thread's changes (waits for the write)
            long committed = store.getCurrentVersion();
            synchronized (syncLock) {
                if (committed > syncedVersion) {
                    // waits for any store the background writer has in flight, then fsyncs
                    store.executeFilestoreOperation(() -> {
                        if (fsync) {
                            store.getFileStore().sync();
                        }
                    });
                    syncedVersion = committed;
                }
            }
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
