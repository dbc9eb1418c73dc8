// Run once by the mongo image's entrypoint, on an empty data directory, as the root user:
// the services' user, readWrite on the ordertag database and nothing else.
db.getSiblingDB("ordertag").createUser({
  user: "ordertag",
  pwd: process.env.ORDERTAG_MONGO_APP_PASSWORD,
  roles: [{ role: "readWrite", db: "ordertag" }],
});
