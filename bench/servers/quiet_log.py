"""
twistd's log for the benchmark, at warn level and above: given to twistd as
--logger=quiet_log.observer (with this directory on PYTHONPATH).

The servers under test log what their authors' defaults log when nothing
configures logging: autobahn, twisted.web and websockets write nothing per
connection. twistd, by default, writes every info event to its log file,
which for wsproto_tw means two lines per connection (opened, closed). This
observer drops those, so that wsproto_tw is measured like its peers; the
runner's "wsproto_tw+log" server keeps twistd's default, to show the cost.
"""

import sys

from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate, textFileLogObserver


def observer():
    return FilteringLogObserver(
        textFileLogObserver(sys.stdout), [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)]
    )
