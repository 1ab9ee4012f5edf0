"""Drives a keel-testkit replica set with PyMongo: discovery, SCRAM, a failover with a retried
write, change streams with resume tokens, a history-lost resume, and transactions (commit,
abort, with_transaction retrying after a write conflict).

Start the binary first:
  keel-testkit --bind 127.0.0.1:0 --replica-set rs0 --members 3 --oplog-size 8 \
               --user app --password secret
Usage: python3 scripts/pymongo_replica_set.py 'mongodb://h1,h2,h3/?replicaSet=rs0'
"""
import sys

import pymongo
from pymongo import MongoClient
from pymongo.errors import OperationFailure

uri = sys.argv[1]
opts = dict(serverSelectionTimeoutMS=5000, username="app", password="secret")
client = MongoClient(uri, **opts)
print("pymongo", pymongo.version)
client.admin.command("ping")
td = client.topology_description
print("topology ->", td.topology_type_name, "| primary", client.primary,
      "| secondaries", len(client.secondaries))

try:
    MongoClient(uri, serverSelectionTimeoutMS=5000, username="app", password="nope").admin.command("ping")
except OperationFailure as e:
    print("wrong password ->", e.code, e.details.get("codeName"))
try:
    MongoClient(uri, serverSelectionTimeoutMS=5000).app.c.find_one()
except OperationFailure as e:
    print("no credentials ->", e.code, e.details.get("codeName"))

orders = client.app.orders
orders.drop()
stream = orders.watch(max_await_time_ms=200)
orders.insert_one({"_id": 1, "item": "tea"})
event = next(stream)
print("change event ->", event["operationType"], event["documentKey"], event["ns"])
token = stream.resume_token

old_primary = client.primary
client.admin.command("replSetStepDown", 60)
orders.insert_one({"_id": 2, "item": "milk"})  # the driver follows the new primary
print("failover ->", old_primary, "->", client.primary, "| documents", orders.count_documents({}))
orders.update_one({"_id": 2}, {"$set": {"qty": 3}})
for _ in range(2):
    e = next(stream)
    print("after failover ->", e["operationType"], e["documentKey"], e.get("updateDescription"))

with orders.watch(resume_after=token, max_await_time_ms=200) as resumed:
    print("resumeAfter ->", [next(resumed)["documentKey"]["_id"] for _ in range(2)])

for i in range(10, 20):
    orders.insert_one({"_id": i})
try:
    with orders.watch(resume_after=token) as lost:
        next(lost)
except OperationFailure as e:
    print("history lost ->", e.code, e.details.get("codeName"))

accounts = client.bank.accounts
accounts.drop()
with client.start_session() as s:
    with s.start_transaction():
        accounts.insert_one({"_id": "a", "n": 0}, session=s)
        accounts.update_one({"_id": "a"}, {"$set": {"paid": True}}, session=s)
        print("in transaction ->", accounts.find_one({"_id": "a"}, session=s),
              "| outside", accounts.find_one({"_id": "a"}))
    print("committed ->", accounts.find_one({"_id": "a"}))
    s.start_transaction()
    accounts.insert_one({"_id": "b"}, session=s)
    s.abort_transaction()
    print("aborted ->", accounts.count_documents({}), "document(s)")
    attempts = []

    def transfer(session):
        attempts.append(1)
        accounts.find_one({"_id": "a"}, session=session)
        if len(attempts) == 1:  # someone else writes after this attempt's snapshot
            accounts.update_one({"_id": "a"}, {"$inc": {"n": 1}})
        accounts.update_one({"_id": "a"}, {"$inc": {"n": 10}}, session=session)

    s.with_transaction(transfer)
    print("with_transaction ->", len(attempts), "attempts | n =", accounts.find_one({"_id": "a"})["n"])
print("ok")
