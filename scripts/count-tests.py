#!/usr/bin/env python3
"""count-tests.py LOG NAME: prints "NAME passed failed" for a meson
testlog.json, counting cmocka test cases where the output names them and
whole executables otherwise (a crash counts as one failure)."""
import json
import re
import sys

passed = failed = 0
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        ok = t.get("result") == "OK"
        p = re.findall(r"\[  PASSED  \] (\d+) test", out)
        fl = re.findall(r"\[  FAILED  \] (\d+) test", out)
        tp = sum(int(x) for x in p)
        tf = sum(int(x) for x in fl)
        if tp == 0 and tf == 0:
            tp, tf = (1, 0) if ok else (0, 1)
        elif not ok and tf == 0:
            tf = 1  # it passed its cases, then crashed or leaked
        passed += tp
        failed += tf
print(sys.argv[2], passed, failed)
