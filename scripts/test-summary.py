"""The table that ends scripts/test.sh: one row per suite with the counts
its tools printed (cargo nextest, cargo test, node --test, the C tests'
"N passed, M failed"). A suite whose tool prints no counts shows "-".
Exits 1 when any suite failed.

Usage: test-summary.py RESULTS, where each line of RESULTS is
"name<TAB>exit code<TAB>seconds<TAB>log file".
"""

import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
NEXTEST = re.compile(r"\d+ tests? run: (\d+) passed(?:.*?(\d+) failed)?")
PAIR = re.compile(r"(\d+) passed[,;] (\d+) failed")
NODE = re.compile(r"^\s*(?:#|ℹ) (pass|fail) (\d+)\s*$")


def counts(path):
    passed = failed = 0
    found = False
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return None
    for line in ANSI.sub("", text).splitlines():
        m = NEXTEST.search(line)
        if m:
            passed += int(m.group(1))
            failed += int(m.group(2) or 0)
            found = True
            continue
        m = PAIR.search(line)
        if m:
            passed += int(m.group(1))
            failed += int(m.group(2))
            found = True
            continue
        m = NODE.match(line)
        if m:
            if m.group(1) == "pass":
                passed += int(m.group(2))
            else:
                failed += int(m.group(2))
            found = True
    return (passed, failed) if found else None


def main():
    rows = []
    bad = []
    for line in open(sys.argv[1], encoding="utf-8"):
        name, rc, secs, log = line.rstrip("\n").split("\t")
        c = counts(log)
        result = "ok" if rc == "0" else f"FAILED ({rc})"
        if rc != "0":
            bad.append((name, log))
        rows.append((name, result, *(map(str, c) if c else ("-", "-")), secs))
    head = ("suite", "result", "passed", "failed", "seconds")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: "  ".join(  # noqa: E731
        v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))
    )
    print()
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))
    total = sum(int(r[4]) for r in rows)
    print(f"\n{len(rows) - len(bad)} of {len(rows)} suites passed in {total} s")
    for name, log in bad:
        print(f"  {name} failed: see {log}")
    # The tests counted over every suite, last, in the plain form CI reads.
    passed = sum(int(r[2]) for r in rows if r[2] != "-")
    failed = sum(int(r[3]) for r in rows if r[3] != "-")
    # A failed suite whose tool printed no counts still counts once.
    failed += sum(1 for r in rows if r[1] != "ok" and (r[3] == "-" or r[3] == "0"))
    print(f"tests: {passed} passed, {failed} failed")
    sys.exit(1 if bad else 0)


main()
