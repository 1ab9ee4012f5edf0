"""Drives a keel-testkit replica set with PyMongo: discovery, SCRAM, a failover with a retried
write, change streams with resume tokens, and a history-lost resume.

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
print("ok")
