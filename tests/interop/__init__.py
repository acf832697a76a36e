"""
Interoperability with real peers: a headless Chromium, the Node C{ws}
package, the C{websockets} package and C{autobahn}, each talking to our
server and to our client, with and without permessage-deflate.

L{tests.interop.tools} installs whatever the peers need on first use.
"""
