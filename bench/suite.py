"""
Time the Autobahn TestSuite cases (the kosoku fuzzing client) against a
running server, server mode; print one JSON object: wall time, cases run,
cases OK (or INFORMATIONAL where the suite defines them so), and the time
of each group of cases.

Usage: python suite.py ws://127.0.0.1:PORT
"""

import asyncio
import json
import sys
import time

from kosoku import FailureError, run_fuzzingclient

#: permessage-deflate cases are left out, as in wsproto-tw-conformance's
#: default selection.
EXCLUDE = ["12.*", "13.*"]


async def main(url):
    started = time.monotonic()
    try:
        results = await run_fuzzingclient(url, None, EXCLUDE)
    except FailureError as failure:
        results = failure.results
    seconds = time.monotonic() - started
    accepted = {"OK", "INFORMATIONAL"}
    ok = sum(1 for r in results if r.behavior.value in accepted and r.behavior_close.value in accepted)
    # Where the time goes, by group of cases (1.* to 10.*): some cases pace
    # themselves (5.19, 5.20 and 6.4.* pause for a second, whatever the
    # server).
    groups: dict[str, float] = {}
    for r in results:
        group = r.case_id.split(".")[0]
        groups[group] = groups.get(group, 0.0) + (r.duration or 0) / 1000
    print(json.dumps({"seconds": seconds, "cases": len(results), "ok": ok, "seconds_by_group": groups}))


asyncio.run(main(sys.argv[1]))
