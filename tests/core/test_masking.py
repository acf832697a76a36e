"""
Tests for the masking keys of L{wsproto_tw.core.ClientConnection} with its
real key source (RFC 6455 §5.3): the other tests inject a fixed mask, under
which a constant or all-zero key would pass unseen.
"""

from __future__ import annotations

import inspect
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import responseBytes
from wsproto_tw.core import ClientConnection, Config
from wsproto_tw.core.events import Opened
from wsproto_tw.core.frames import FrameReader

#: Frames sent, and so keys compared.
FRAMES = 12

#: Each frame's payload: zeros, so that the masked payload is the key
#: repeated (RFC 6455 §5.3: octet i of the masked data is octet i XOR
#: key octet i MOD 4).
ZEROS = bytes(16)


def openedDefaultClient() -> ClientConnection:
    """
    @return: an open client connection made without a C{mask_source}, as
        the Twisted layer makes them.
    """
    client = ClientConnection(Config(), host="server.example.com", target="/chat", now=0.0)
    client.data_to_send()
    client.receive_data(responseBytes(client.key), now=0.0)
    events = list(client.events())
    if [type(event) for event in events] != [Opened]:
        raise AssertionError(f"client not opened: {events!r}")
    return client


class MaskingKeyTests(SynchronousTestCase):
    """
    A client masks every frame with a fresh key from a strong source.
    """

    def test_defaultSourceIsUrandom(self) -> None:
        """
        A L{ClientConnection} made without a C{mask_source} takes its keys
        from C{os.urandom}.
        """
        default = inspect.signature(ClientConnection).parameters["mask_source"].default
        self.assertIs(default, os.urandom)

    def test_freshKeyPerFrame(self) -> None:
        """
        Text, binary and ping frames sent by a client made with the default
        key source each carry the MASK bit and a key of their own, none of
        them all zeros, and the masked payload is the key applied to the
        payload.
        """
        client = openedDefaultClient()
        for i in range(FRAMES):
            if i % 3 == 0:
                client.send_text(ZEROS.decode("ascii"))
            elif i % 3 == 1:
                client.send_binary(ZEROS)
            else:
                client.send_ping(ZEROS)
        data = client.data_to_send()
        keys = []
        offset = 0
        for i in range(FRAMES):
            # FIN and opcode, then MASK set and a 7-bit length (RFC 6455 §5.2).
            header = data[offset : offset + 2]
            self.assertEqual(header, bytes([0x80 | (0x1, 0x2, 0x9)[i % 3], 0x80 | len(ZEROS)]), i)
            key = data[offset + 2 : offset + 6]
            masked = data[offset + 6 : offset + 6 + len(ZEROS)]
            self.assertEqual(masked, key * (len(ZEROS) // 4), i)
            keys.append(key)
            offset += 6 + len(ZEROS)
        self.assertEqual(offset, len(data))
        self.assertNotIn(bytes(4), keys)
        self.assertEqual(len(set(keys)), FRAMES, keys)

    def test_serverUnmasks(self) -> None:
        """
        The frames a default client sends unmask, as a server reads them, to
        what was sent.
        """
        client = openedDefaultClient()
        for _ in range(FRAMES):
            client.send_binary(ZEROS)
        reader = FrameReader(expect_mask=True, max_frame_size=0)
        reader.buffer += client.data_to_send()
        payloads = []
        while (frame := reader.read_frame()) is not None:
            payloads.append(frame.payload)
        self.assertEqual(payloads, [ZEROS] * FRAMES)
