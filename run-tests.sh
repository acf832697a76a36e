#!/usr/bin/env bash
# Set up a virtualenv and run the whole wsproto_tw test suite (trial), which
# includes the Autobahn conformance runs and the interoperability tests;
# then, for the whole suite, the core and protocol tests once more with
# WSPROTO_TW_NO_SPEEDUPS=1, on the pure-Python code instead of the C
# accelerator. Prints one last line, over both runs:
# "N passed, N failed[, N skipped]".
set -u
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV" || exit 1
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1
"$VENV/bin/python" -m pip install -q -e '.[test]' --config-settings editable_mode=compat || exit 1
log=$(mktemp)
"$VENV/bin/python" -m twisted.trial --temp-directory="$(mktemp -d)/_trial_temp" "${@:-tests}" 2>&1 | tee "$log"
logs=("$log")
if [ $# -eq 0 ]; then
    pureLog=$(mktemp)
    WSPROTO_TW_NO_SPEEDUPS=1 "$VENV/bin/python" -m twisted.trial --temp-directory="$(mktemp -d)/_trial_temp" \
        tests.core tests.test_protocol 2>&1 | tee "$pureLog"
    logs+=("$pureLog")
fi
"$VENV/bin/python" - "${logs[@]}" <<'PY'
import re, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    text = open(path, errors="replace").read()
    m = re.findall(r"^(PASSED|FAILED) \((.*)\)\s*$", text, re.M)
    counts = dict(re.findall(r"(\w+)=(\d+)", m[-1][1])) if m else {}
    passed += int(counts.get("successes", 0)) + int(counts.get("expectedFailures", 0))
    runFailed = int(counts.get("failures", 0)) + int(counts.get("errors", 0)) + int(counts.get("unexpectedSuccesses", 0))
    failed += runFailed if m else max(runFailed, 1)
    skipped += int(counts.get("skips", 0))
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
PY
