"""Drives a running keel-testkit with PyMongo: the same operations the Rust suite covers.

Usage: python3 scripts/pymongo_smoke.py mongodb://127.0.0.1:PORT/
"""
import sys

import pymongo
from pymongo import MongoClient, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, WriteConcernError

uri = sys.argv[1]
client = MongoClient(uri, serverSelectionTimeoutMS=2000, appName="pymongo-smoke")
print("pymongo", pymongo.version)
info = client.server_info()
print("server version", info["version"], "| maxWireVersion", client.admin.command("hello")["maxWireVersion"])

users = client.app.users
users.drop()
users.create_index("email", unique=True)
print("insert_one ->", users.insert_one({"_id": 1, "email": "ada@example.com", "age": 36}).inserted_id)
print("insert_many ->", users.insert_many([
    {"_id": 2, "email": "alan@example.com", "age": 41},
    {"_id": 3, "email": "grace@example.com", "age": 85, "tags": ["navy", "cobol"]},
]).inserted_ids)
try:
    users.insert_one({"email": "ada@example.com"})
except DuplicateKeyError as e:
    print("duplicate ->", e.code, e.details["keyPattern"], e.details["keyValue"])

print("find ->", list(users.find({"age": {"$gte": 40}}, {"_id": 0, "email": 1}).sort("age", -1)))
print("find dotted/array ->", [d["_id"] for d in users.find({"tags": "cobol"})])
r = users.update_one({"_id": 2}, {"$inc": {"age": 1}, "$push": {"tags": "turing"}})
print("update_one -> matched", r.matched_count, "modified", r.modified_count)
r = users.update_one({"_id": 4}, {"$set": {"email": "new@example.com"}, "$setOnInsert": {"age": 0}}, upsert=True)
print("upsert -> upserted_id", r.upserted_id)
print("find_one_and_update ->", users.find_one_and_update(
    {"_id": 1}, {"$set": {"age": 37}}, return_document=ReturnDocument.AFTER))
print("count_documents ->", users.count_documents({"age": {"$lt": 50}}))
print("aggregate ->", list(users.aggregate([
    {"$group": {"_id": None, "n": {"$sum": 1}, "total_age": {"$sum": "$age"}}}])))
print("delete_many ->", users.delete_many({"age": {"$gt": 80}}).deleted_count)
print("indexes ->", sorted(users.index_information()))

# Fail points: the same configureFailPoint command a real mongod accepts with test commands on.
client.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                     data={"failCommands": ["find"], "errorCode": 2, "errmsg": "injected"})
try:
    users.find_one({})
except OperationFailure as e:
    print("failCommand ->", e.code, e.details["codeName"], e.details["errmsg"])
print("after times:1 ->", users.find_one({"_id": 1})["email"])
client.admin.command("configureFailPoint", "failCommand", mode={"times": 1},
                     data={"failCommands": ["insert"], "writeConcernError": {"code": 91, "errmsg": "shutting down"}})
try:
    users.insert_one({"_id": 10, "email": "w@example.com"})
except WriteConcernError as e:
    print("writeConcernError ->", e.code, e.details["codeName"], e.details["errmsg"])
try:
    client.app.command("frobnicate")
except OperationFailure as e:
    print("unknown command ->", e.code, e.details["codeName"])
print("ok")
