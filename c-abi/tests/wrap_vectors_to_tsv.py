#!/usr/bin/env python3
"""Flattens tests/vectors/keyring-wrap-v1.json into lines the C tests read
without a JSON parser. Byte fields become hex ("-" for none); nothing is
computed.

  W <name> <kek hex> <passphrase hex|-> <m_cost|0> <file json hex> <keyring json hex>
  X <name> <kek hex|-> <passphrase hex|-> <file json hex> <error code>
"""
import base64, json, sys

doc = json.load(open(sys.argv[1], encoding="utf-8"))
hx = lambda b: b.hex() or "-"
utf8hex = lambda s: hx(s.encode("utf-8"))
name = lambda s: s.replace(" ", "_")
for c in doc["cases"]:
    kdf = c["file"].get("kdf")
    print("W", name(c["name"]), hx(base64.b64decode(c["kek"])), utf8hex(c["passphrase"]) if "passphrase" in c else "-",
          kdf["m_cost"] if kdf else 0, utf8hex(json.dumps(c["file"])),
          hx(base64.b64decode(c["plaintext"])))
for c in doc["invalid"]:
    print("X", name(c["name"]), hx(base64.b64decode(c["kek"])) if "kek" in c else "-", utf8hex(c["passphrase"]) if "passphrase" in c else "-",
          utf8hex(json.dumps(c["file"])), c["error"])
