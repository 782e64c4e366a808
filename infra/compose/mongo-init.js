// MongoDB users for docker compose, created on the first start (docker-entrypoint-initdb.d, as root).
// Each service gets a user in its own database with readWrite on that database only; the operator's CLI
// gets read on the inventory database (clinic stock) and find/update/remove on each outbox (clinic outbox
// list/redrive). Passwords come from /run/secrets; the services read their whole URL from a secret too.
const fs = require("fs");
const secret = (name) => fs.readFileSync(`/run/secrets/${name}`, "utf8").trim();
const services = ["consultation", "scheduling", "inventory", "aftercare"];

for (const service of services) {
  const name = `clinic_${service}`;
  const database = db.getSiblingDB(name);
  database.createUser({ user: `clinic-${service}`, pwd: secret(`mongo_${service}_password`), roles: [{ role: "readWrite", db: name }] });
  database.createRole({
    role: "outboxOperator",
    privileges: [{ resource: { db: name, collection: "outbox" }, actions: ["find", "update", "remove"] }],
    roles: [],
  });
}

db.getSiblingDB("admin").createUser({
  user: "clinic-operator",
  pwd: secret("mongo_operator_password"),
  roles: [{ role: "read", db: "clinic_inventory" }, ...services.map((service) => ({ role: "outboxOperator", db: `clinic_${service}` }))],
});
