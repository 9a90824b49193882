#!/usr/bin/env python3
"""Flattens tests/vectors/envelope-v1.json into lines the C and C++ tests
read without a JSON parser. Byte fields become hex; nothing is computed.

  V <name> <master_key b64> <key_id> <epoch> <room hex> <context hex> <plaintext hex> <room_key hex> <envelope>
  I <name> <keyring json hex> <epoch> <room hex> <context hex> <envelope hex> <error code>

<epoch> is the room's key epoch (decimal u32) the case is sealed or opened at.
"""
import base64, json, sys

doc = json.load(open(sys.argv[1], encoding="utf-8"))
hx = lambda b: b.hex() or "-"
b64hex = lambda s: hx(base64.b64decode(s))
utf8hex = lambda s: hx(s.encode("utf-8"))
name = lambda s: s.replace(" ", "_")
for c in doc["cases"]:
    print("V", name(c["name"]), c["master_key"], c["key_id"], c["epoch"], utf8hex(c["room"]), b64hex(c["context"]),
          b64hex(c["plaintext"]), b64hex(c["room_key"]), c["envelope"])
for c in doc["invalid"]:
    print("I", name(c["name"]), utf8hex(json.dumps(c["keyring"])), c["epoch"], utf8hex(c["room"]), b64hex(c["context"]),
          utf8hex(c["envelope"]), c["error"])
