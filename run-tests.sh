#!/usr/bin/env bash
# Set up a virtualenv, build the C accelerator, and run the whole wsproto_tw
# test suite (trial), which includes the Autobahn conformance runs and the
# interoperability tests; then the core, protocol, loopback (our client
# and server with each other and with real peers) and stress tests once more
# with WSPROTO_TW_NO_SPEEDUPS=1, on the pure-Python code instead of the C
# accelerator (tests.test_conformance runs its own pure-Python cases); and
# the drop-in's tests (Twisted's own websocket tests among them) on each
# older Twisted release that has twisted.web.websocket. With arguments,
# only the named tests run, once.
#
# The C accelerator is built afresh (old builds removed first), and the
# command fails if it can't be built; WSPROTO_TW_NO_SPEEDUPS=1 opts out:
# nothing is built and everything runs on the pure-Python code, once.
#
# Each run counts by trial's own exit status and final summary line; a run
# that printed no summary (a crash) counts as failed, and so does every
# skipped test (WSPROTO_TW_NO_SKIPS=1): none may skip here. The last line
# printed, over all runs, is "N passed, N failed[, N skipped]"; the exit
# status is 0 only if nothing failed.
set -u -o pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV" || exit 1
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1
# An earlier build must never stand in for this one.
rm -rf build wsproto_tw/core/_speedups*.so wsproto_tw/core/_speedups*.pyd
if [ -n "${WSPROTO_TW_NO_SPEEDUPS:-}" ]; then
    echo "WSPROTO_TW_NO_SPEEDUPS is set: the C accelerator is neither built nor tested" >&2
    export WSPROTO_TW_NO_SPEEDUPS
    "$VENV/bin/python" -m pip install -q -e '.[test]' --config-settings editable_mode=compat || exit 1
else
    if ! WSPROTO_TW_REQUIRE_SPEEDUPS=1 "$VENV/bin/python" -m pip install -q -e '.[test]' \
        --config-settings editable_mode=compat; then
        echo "FAILED: could not build the C accelerator (wsproto_tw/core/_speedups.c); it needs a C" \
            "compiler and Python's headers. To test without it: WSPROTO_TW_NO_SPEEDUPS=1 bash run-tests.sh" >&2
        exit 1
    fi
    # The extension imported must be the one just built, and in use.
    if ! "$VENV/bin/python" - <<'PY'
import os, sys
from wsproto_tw.core import _speedups, frames
built = os.path.realpath(_speedups.__file__)
if not built.startswith(os.path.realpath("wsproto_tw") + os.sep) or frames.apply_mask is not _speedups.apply_mask:
    sys.exit(f"the C accelerator in use is not the one just built: {built}")
PY
    then
        echo "FAILED: the C accelerator was not installed" >&2
        exit 1
    fi
fi
export WSPROTO_TW_NO_SKIPS=1
runs=()
# trial RUN-LABEL TRIAL-ARGUMENTS...: one trial run, its output shown and kept.
trial() {
    local label=$1 log status
    shift
    log=$(mktemp)
    "$VENV/bin/python" -m twisted.trial --temp-directory="$(mktemp -d)/_trial_temp" "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    runs+=(--run "$label" "$status" "$log")
}
if [ $# -gt 0 ]; then
    trial "trial $*" "$@"
else
    trial "trial tests" tests
    if [ -z "${WSPROTO_TW_NO_SPEEDUPS:-}" ]; then
        WSPROTO_TW_NO_SPEEDUPS=1 trial "trial (pure Python)" tests.core tests.test_protocol \
            tests.test_e2e tests.test_client tests.test_wrap tests.test_websocket_compat tests.interop \
            tests.test_stress
    fi
    # The drop-in (wsproto_tw.websocket) against Twisted's own websocket
    # tests and ours, on every other Twisted release that ships them (the
    # main run above covers the Twisted pip installs), each in a venv of
    # its own next to $VENV.
    for twisted in 25.5.0 26.4.0; do
        other="$VENV-twisted-$twisted"
        if [ ! -x "$other/bin/python" ]; then
            "$PY" -m venv "$other" || exit 1
        fi
        if ! "$other/bin/python" -m pip install -q -e '.[test]' "Twisted==$twisted" \
            --config-settings editable_mode=compat; then
            echo "FAILED: could not install Twisted $twisted for the drop-in's tests" >&2
            exit 1
        fi
        VENV=$other trial "trial (drop-in, Twisted $twisted)" tests.test_twisted_suite tests.test_websocket_compat
    done
fi
"$VENV/bin/python" -m tests.trialsummary "${runs[@]}"
