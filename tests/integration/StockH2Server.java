// mongo-java-server's stock H2 backend, as the library ships it, on a chosen port and file: the
// test of deploy/local/MongoWireServer.java writes a file with it, then opens that file with the
// launcher. Started with Java's single-file source launcher:
// java -cp 'libs/*' StockH2Server.java HOST PORT FILE. SIGTERM closes the file cleanly.
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import java.util.List;

public class StockH2Server {
    public static void main(String[] args) throws Exception {
        H2Backend backend = new H2Backend(args[2]);
        backend.version(new MongoVersion() {  // PyMongo 4.14+ needs wire version 9 (MongoDB 4.4)
            public List<Integer> getVersionArray() { return List.of(4, 4, 0); }
            public int getWireVersion() { return 9; }
        });
        MongoServer server = new MongoServer(backend);
        server.bind(args[0], Integer.parseInt(args[1]));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdown();
            backend.close();
        }));
        Thread.currentThread().join();
    }
}
