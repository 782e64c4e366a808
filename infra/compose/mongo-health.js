// Healthcheck of the compose MongoDB: initiates the single-node replica set on the first start, then is
// healthy only while this node is its writable primary (what the services need to write). The root
// password is read from its secret, never put on a command line.
const fs = require("fs");
const password = encodeURIComponent(fs.readFileSync("/run/secrets/mongo_root_password", "utf8").trim());
const admin = connect(`mongodb://root:${password}@127.0.0.1:27017/admin?directConnection=true&authSource=admin`);
try {
  admin.runCommand({ replSetGetStatus: 1 });
} catch (error) {
  if (error.codeName !== "NotYetInitialized") throw error;
  admin.runCommand({ replSetInitiate: { _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] } });
}
const hello = admin.runCommand({ hello: 1 });
if (!hello.isWritablePrimary) {
  print(`not primary yet (${hello.setName || "no replica set"})`);
  quit(1);
}
