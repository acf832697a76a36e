"""
Tests for L{wsproto_tw.stomp.routing} and application destinations in a
session.
"""

from __future__ import annotations

import logging

from twisted.trial.unittest import SynchronousTestCase

from tests.stomp.helpers import connected, frame, sent
from wsproto_tw.stomp.broker import EmbeddedBroker
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.errors import DestinationError, StompError
from wsproto_tw.stomp.routing import Router


class RouterTests(SynchronousTestCase):
    """
    Tests for L{Router}.
    """

    def test_patterns(self):
        """
        C{{name}} matches one path segment; the first matching pattern
        wins; the whole destination must match.
        """
        router = Router()
        first, second, exact = object(), object(), object()
        router.add("/app/chat/{room}", first)
        router.add("/app/chat/{room}/{user}", second)
        router.add("/app/a.b", exact)
        self.assertEqual(router.match("/app/chat/lobby"), (first, {"room": "lobby"}))
        self.assertEqual(router.match("/app/chat/lobby/ann"), (second, {"room": "lobby", "user": "ann"}))
        self.assertEqual(router.match("/app/a.b"), (exact, {}))
        self.assertIsNone(router.match("/app/aXb"))
        self.assertIsNone(router.match("/app/chat/"))
        self.assertIsNone(router.match("/app/chat/lobby/ann/x"))

    def test_decorator(self):
        """
        L{Router.route} registers the function it decorates and returns
        it.
        """
        router = Router()

        @router.route("/app/x")
        def handler(request):
            pass

        self.assertEqual(router.match("/app/x"), (handler, {}))

    def test_badPatterns(self):
        """
        A pattern must start with C{/} and name each parameter once.
        """
        router = Router()
        self.assertRaises(ValueError, router.add, "app/x", print)
        self.assertRaises(ValueError, router.add, "/app/{a}/{a}", print)


class ApplicationDestinationTests(SynchronousTestCase):
    """
    Tests for frames a session sends to the application prefix.
    """

    def setUp(self):
        self.router = Router()
        self.broker = EmbeddedBroker()
        self.seen = []

    def session(self, **kwargs):
        return connected(self.broker, router=self.router, **kwargs)

    def test_handlerSeesSession(self):
        """
        The handler gets the frame, the pattern's parameters and the
        session; nothing reaches the broker.
        """

        @self.router.route("/app/chat/{room}")
        def chat(request):
            self.seen.append((request.destination, request.params, request.text, request.session.principal,
                              request.session.subprotocol, dict(request.headers)["x"]))

        session = self.session(principal="ann", subprotocol="v12.stomp")
        session.receive_data(frame("SEND", "destination:/app/chat/lobby", "x:1", "receipt:r", body=b"hello"), now=0)
        self.assertEqual(self.seen, [("/app/chat/lobby", {"room": "lobby"}, "hello", "ann", "v12.stomp", "1")])
        self.assertEqual(sent(session), ["RECEIPT\nreceipt-id:r\n\n\x00"])

    def test_replyAndPublish(self):
        """
        A handler can reply to the sender on its subscriptions to a
        destination (each reply with its own message id; none without a
        subscription), and publish to any broker destination.
        """

        @self.router.route("/app/echo")
        def echo(request):
            request.reply("/topic/me", "just you")
            request.reply("/topic/none", "nobody subscribed")
            request.publish("/topic/all", request.body, [("x-from", request.session.session_id)])

        sender = self.session(session_id="a")
        other = self.session(session_id="b")
        for session in (sender, other):
            session.receive_data(frame("SUBSCRIBE", "id:me", "destination:/topic/me"), now=0)
            session.receive_data(frame("SUBSCRIBE", "id:all", "destination:/topic/all"), now=0)
        sender.receive_data(frame("SEND", "destination:/app/echo", body=b"hi"), now=0)
        sender.receive_data(frame("SEND", "destination:/app/echo", body=b"hi"), now=0)
        self.assertEqual(
            sent(sender),
            [
                "MESSAGE\ndestination:/topic/me\nmessage-id:a-reply-1\nsubscription:me\n"
                "content-type:text/plain;charset=utf-8\ncontent-length:8\n\njust you\x00",
                "MESSAGE\ndestination:/topic/all\nmessage-id:1\nsubscription:all\nx-from:a\ncontent-length:2\n\nhi\x00",
                "MESSAGE\ndestination:/topic/me\nmessage-id:a-reply-2\nsubscription:me\n"
                "content-type:text/plain;charset=utf-8\ncontent-length:8\n\njust you\x00",
                "MESSAGE\ndestination:/topic/all\nmessage-id:3\nsubscription:all\nx-from:a\ncontent-length:2\n\nhi\x00",
            ],
        )
        self.assertEqual(
            sent(other),
            [
                "MESSAGE\ndestination:/topic/all\nmessage-id:2\nsubscription:all\nx-from:a\ncontent-length:2\n\nhi\x00",
                "MESSAGE\ndestination:/topic/all\nmessage-id:4\nsubscription:all\nx-from:a\ncontent-length:2\n\nhi\x00",
            ],
        )

    def test_handlerRaises(self):
        """
        A handler that raises a L{StompError} gets C{ERROR} with its
        message; any other exception is logged and gets a generic one.
        """

        @self.router.route("/app/no")
        def refuse(request):
            raise DestinationError("not today")

        @self.router.route("/app/bug")
        def bug(request):
            1 / 0

        session = self.session()
        session.receive_data(frame("SEND", "destination:/app/no", "receipt:r"), now=0)
        self.assertEqual(sent(session), ["ERROR\nmessage:not today\nreceipt-id:r\ncontent-length:0\n\n\x00"])
        session = self.session()
        with self.assertLogs("wsproto_tw.stomp", logging.ERROR) as logs:
            session.receive_data(frame("SEND", "destination:/app/bug"), now=0)
        self.assertIn("ZeroDivisionError", logs.output[0])
        self.assertEqual(sent(session), ["ERROR\nmessage:the handler of /app/bug failed\ncontent-length:0\n\n\x00"])
        self.assertIsInstance(session.events()[0].error, StompError)

    def test_noHandler(self):
        """
        A frame to the prefix that no pattern matches is an error.
        """
        session = self.session()
        session.receive_data(frame("SEND", "destination:/app/none"), now=0)
        self.assertEqual(sent(session), ["ERROR\nmessage:no handler for /app/none\ncontent-length:0\n\n\x00"])

    def test_prefixConfigurable(self):
        """
        The prefix is C{StompConfig.app_prefix}; other destinations go to
        the broker.
        """
        self.router.add("/svc/x", lambda request: self.seen.append(request.destination))
        config = StompConfig(server="test", heart_beat=(0, 0), app_prefix="/svc")
        session = self.session(config=config)
        session.receive_data(frame("SEND", "destination:/svc/x") + frame("SEND", "destination:/app/x"), now=0)
        self.assertEqual(self.seen, ["/svc/x"])
        self.assertEqual(sent(session), ["ERROR\nmessage:unknown destination /app/x\ncontent-length:0\n\n\x00"])

    def test_inTransaction(self):
        """
        A frame to the application inside a transaction reaches its
        handler at C{COMMIT}.
        """
        self.router.add("/app/x", lambda request: self.seen.append(request.body))
        session = self.session()
        session.receive_data(frame("BEGIN", "transaction:t") + frame("SEND", "destination:/app/x", "transaction:t", body=b"1"), now=0)
        self.assertEqual(self.seen, [])
        session.receive_data(frame("COMMIT", "transaction:t"), now=0)
        self.assertEqual(self.seen, [b"1"])
