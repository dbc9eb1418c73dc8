"""MongoDB conventions shared by the services."""

# Documents per reply for scans over whole collections. Real MongoDB caps a reply at 16 MB by
# itself; the local mongo-java-server answers a find without a batch size in one reply, which
# PyMongo refuses past 48 MB (about 20,000 tagged orders).
SCAN_BATCH = 1000
