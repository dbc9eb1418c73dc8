// Runs mongo-java-server with its on-disk H2 backend on a chosen host and port.
// The library's own main classes bind only localhost:27017, hence this launcher.
// Started with Java's single-file source launcher: java -cp 'libs/*' MongoWireServer.java HOST PORT FILE
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import java.util.List;

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

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: MongoWireServer HOST PORT DATA_FILE");
            System.exit(2);
        }
        H2Backend backend = new H2Backend(args[2]);
        backend.version(REPORTED_VERSION);
        MongoServer server = new MongoServer(backend);
        server.bind(args[0], Integer.parseInt(args[1]));
        System.out.println("mongo-wire server listening on " + args[0] + ":" + args[1]);
        // Flush H2 and release the port on SIGTERM so a restart finds consistent data.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdown();
            backend.close();
        }));
        Thread.currentThread().join();
    }
}
