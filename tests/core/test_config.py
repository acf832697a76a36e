"""
Tests for L{wsproto_tw.core.config.Config}: defaults and validation.
"""

from __future__ import annotations

import dataclasses

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.core.config import Config


class ConfigTests(SynchronousTestCase):
    """
    Tests for L{Config}.
    """

    def assertInvalid(self, kind, message: str, **kwargs) -> None:
        exc = self.assertRaises(kind, Config, **kwargs)
        self.assertEqual(str(exc), message)

    def test_defaults(self):
        """
        Every limit is on by default.
        """
        config = Config()
        self.assertEqual(
            (config.max_message_size, config.max_frame_size, config.max_fragments,
             config.max_head_size, config.max_headers),
            (1 << 20, None, 100_000, 16 * 1024, 100),
        )
        self.assertEqual(
            (config.open_timeout, config.close_timeout, config.ping_interval,
             config.ping_timeout, config.idle_timeout),
            (10.0, 10.0, 20.0, 20.0, None),
        )
        self.assertEqual(config.subprotocols, ())
        self.assertFalse(config.require_subprotocol)
        self.assertIsNone(config.allowed_origins)
        self.assertIsNone(config.compression)

    def test_frozen(self):
        """
        A L{Config} can't be changed after it is made.
        """
        config = Config()
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, config, "max_message_size", 1)

    def test_replace(self):
        """
        L{dataclasses.replace} makes a validated copy.
        """
        config = dataclasses.replace(Config(), subprotocols=["a"])
        self.assertEqual(config.subprotocols, ("a",))
        self.assertRaises(ValueError, dataclasses.replace, config, max_headers=-1)

    def test_frameLimit(self):
        """
        C{frame_limit} is C{max_frame_size} when set, else
        C{max_message_size}.
        """
        self.assertEqual(Config(max_message_size=500).frame_limit, 500)
        self.assertEqual(Config(max_message_size=500, max_frame_size=100).frame_limit, 100)
        self.assertEqual(Config(max_message_size=0).frame_limit, 0)

    def test_frameLimitKept(self):
        """
        C{frame_limit} is worked out once: the first read keeps it in the
        instance, which stays equal to (and hashes as) a configuration with
        the same fields; a configuration made from it by
        L{dataclasses.replace} works out its own.
        """
        config = Config(max_message_size=500)
        self.assertNotIn("frame_limit", vars(config))
        self.assertEqual(config.frame_limit, 500)
        self.assertEqual(vars(config)["frame_limit"], 500)
        self.assertEqual(config, Config(max_message_size=500))
        self.assertEqual(hash(config), hash(Config(max_message_size=500)))
        self.assertEqual(repr(config), repr(Config(max_message_size=500)))
        self.assertEqual(dataclasses.replace(config, max_frame_size=100).frame_limit, 100)

    def test_zeroDisablesSizeLimits(self):
        """
        C{0} is accepted for the size limits (meaning none).
        """
        config = Config(max_message_size=0, max_fragments=0, max_head_size=0, max_headers=0, max_frame_size=0)
        self.assertEqual(config.max_message_size, 0)

    def test_negativeSizes(self):
        """
        A negative or non-integer size raises L{ValueError} naming it.
        """
        for name in ("max_message_size", "max_fragments", "max_head_size", "max_headers", "max_write_buffer"):
            self.assertInvalid(ValueError, f"{name} must be a non-negative integer, not -1", **{name: -1})
            self.assertInvalid(ValueError, f"{name} must be a non-negative integer, not 1.5", **{name: 1.5})
        self.assertInvalid(ValueError, "max_frame_size must be non-negative, not -5", max_frame_size=-5)

    def test_nonPositiveTimeouts(self):
        """
        A zero or negative timeout raises L{ValueError}; L{None} disables
        the optional ones.
        """
        for name in ("open_timeout", "ping_interval", "ping_timeout", "idle_timeout", "write_buffer_timeout"):
            self.assertInvalid(ValueError, f"{name} must be positive or None, not 0", **{name: 0})
            self.assertInvalid(ValueError, f"{name} must be positive or None, not -1.0", **{name: -1.0})
            self.assertIsNone(getattr(Config(**{name: None}), name))
        self.assertInvalid(ValueError, "close_timeout must be positive, not 0", close_timeout=0)

    def test_subprotocolsString(self):
        """
        A str for C{subprotocols} raises L{TypeError} rather than being read
        as one subprotocol per character.
        """
        self.assertInvalid(TypeError, "subprotocols must be a sequence of names, not a str", subprotocols="chat")

    def test_subprotocolsTuple(self):
        """
        C{subprotocols} is stored as a tuple, in order.
        """
        self.assertEqual(Config(subprotocols=["b", "a"]).subprotocols, ("b", "a"))

    def test_allowedOriginsString(self):
        """
        A str for C{allowed_origins} raises L{TypeError}.
        """
        self.assertInvalid(
            TypeError, "allowed_origins must be a collection of origins, not a str",
            allowed_origins="https://example.com",
        )

    def test_allowedOriginsNormalised(self):
        """
        C{allowed_origins} is stored as a lower-case frozenset without
        surrounding whitespace.
        """
        config = Config(allowed_origins=[" https://Example.COM ", "http://a"])
        self.assertEqual(config.allowed_origins, frozenset({"https://example.com", "http://a"}))

    def test_requireSubprotocolNeedsOne(self):
        """
        C{require_subprotocol} without C{subprotocols} raises L{ValueError}.
        """
        self.assertInvalid(
            ValueError, "require_subprotocol needs at least one subprotocol", require_subprotocol=True
        )
