"""
Tests for L{wsproto_tw.core._speedups}, the optional C accelerator: it must
compute exactly what the pure-Python code in L{wsproto_tw.core.frames}
computes, and L{wsproto_tw.core.frames} must pick it unless
C{WSPROTO_TW_NO_SPEEDUPS} is set.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.core import frames
from wsproto_tw.core.frames import _mask_python, _PythonBytesBuilder

try:
    from wsproto_tw.core import _speedups
except ImportError:  # built without a C compiler
    _speedups = None  # type: ignore[assignment]

#: The C accelerator's source, in this checkout.
SOURCE = Path(__file__).resolve().parents[2] / "wsproto_tw" / "core" / "_speedups.c"

NO_SPEEDUPS = bool(os.environ.get("WSPROTO_TW_NO_SPEEDUPS"))


def _requireBuilt(testCase: SynchronousTestCase) -> None:
    """
    Fail C{testCase} if the C accelerator was not built: a missing build
    must not pass for a tested one.
    """
    if _speedups is None:
        testCase.fail(
            "wsproto_tw.core._speedups was not built (it needs a C compiler and Python's headers; "
            "WSPROTO_TW_NO_SPEEDUPS=1 opts out of building and testing it)"
        )


def _reference(data: bytes, key: bytes) -> bytes:
    """
    RFC 6455 §5.3 as written: octet i XOR key octet i MOD 4.
    """
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


class SelectionTests(SynchronousTestCase):
    """
    Which masking function L{wsproto_tw.core.frames} uses.
    """

    def test_selectedImplementation(self) -> None:
        """
        L{frames.apply_mask} is the pure-Python function when
        C{WSPROTO_TW_NO_SPEEDUPS} is set or the extension is missing, and
        the C function otherwise.
        """
        if NO_SPEEDUPS or _speedups is None:
            self.assertIs(frames.apply_mask, _mask_python)
        else:
            self.assertIs(frames.apply_mask, _speedups.apply_mask)

    def test_selectedBuilder(self) -> None:
        """
        L{frames.BytesBuilder} is the pure-Python class when
        C{WSPROTO_TW_NO_SPEEDUPS} is set or the extension is missing, and
        the C type otherwise.
        """
        if NO_SPEEDUPS or _speedups is None:
            self.assertIs(frames.BytesBuilder, _PythonBytesBuilder)
        else:
            self.assertIs(frames.BytesBuilder, _speedups.BytesBuilder)

    def test_environmentVariableDisables(self) -> None:
        """
        With C{WSPROTO_TW_NO_SPEEDUPS=1}, a fresh interpreter's
        L{frames.apply_mask} is the pure-Python function.
        """
        code = (
            "from wsproto_tw.core import frames; "
            "print(frames.apply_mask is frames._mask_python)"
        )
        env = dict(os.environ, WSPROTO_TW_NO_SPEEDUPS="1")
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
        self.assertEqual(out.strip(), "True")


class CBuildTests(SynchronousTestCase):
    """
    The C accelerator tested is this checkout's.
    """

    def test_builtFromCurrentSource(self) -> None:
        """
        The C accelerator imported was built after the last change to
        C{wsproto_tw/core/_speedups.c}: a build that failed must not leave an
        older one to be tested in its place.
        """
        _requireBuilt(self)
        built = Path(_speedups.__file__).stat().st_mtime
        # build_ext copies the module into place with its modification time
        # in whole seconds: one built in the second the source was written
        # (a fresh checkout built at once) may look a fraction older.
        self.assertGreaterEqual(
            int(built), int(SOURCE.stat().st_mtime), f"{_speedups.__file__} is older than {SOURCE}: rebuild it"
        )


class PythonMaskTests(SynchronousTestCase):
    """
    The pure-Python masking, against the RFC's definition.
    """

    def test_agreesWithDefinition(self) -> None:
        """
        L{_mask_python} computes RFC 6455 §5.3 for short and long data (its
        two code paths meet at 2048 bytes).
        """
        rng = random.Random(6455)
        for n in (0, 1, 3, 4, 5, 127, 2047, 2048, 2049, 5000):
            data = rng.randbytes(n)
            key = rng.randbytes(4)
            self.assertEqual(_mask_python(data, key), _reference(data, key), n)


class CMaskTests(SynchronousTestCase):
    """
    The C masking agrees with the pure-Python masking.
    """

    def setUp(self) -> None:
        _requireBuilt(self)
        self.rng = random.Random(7692)

    def test_randomLengthsAndKeys(self) -> None:
        """
        For random lengths (around the 8-byte word loop's edges and far
        beyond) and random keys, C and Python give the same bytes.
        """
        lengths = list(range(0, 40)) + [self.rng.randrange(40, 70_000) for _ in range(200)] + [65536, 1 << 20]
        for n in lengths:
            data = self.rng.randbytes(n)
            key = self.rng.randbytes(4)
            self.assertEqual(_speedups.apply_mask(data, key), _mask_python(data, key), n)

    def test_unalignedSlices(self) -> None:
        """
        Data starting at any offset of a larger buffer (a memoryview slice
        of a bytearray, as the frame reader has them) masks the same.
        """
        buffer = bytearray(self.rng.randbytes(5000))
        for _ in range(300):
            start = self.rng.randrange(0, 64)
            end = self.rng.randrange(start, len(buffer))
            key = self.rng.randbytes(4)
            with memoryview(buffer) as view:
                got = _speedups.apply_mask(view[start:end], key)
            self.assertEqual(got, _mask_python(bytes(buffer[start:end]), key), (start, end))

    def test_offsetAgrees(self) -> None:
        """
        With an offset, C and Python give the same bytes, for random
        lengths and offsets (offsets past 3 wrap around the key).
        """
        for _ in range(400):
            n = self.rng.choice([self.rng.randrange(0, 40), self.rng.randrange(40, 5000)])
            data = self.rng.randbytes(n)
            key = self.rng.randbytes(4)
            offset = self.rng.randrange(0, 1 << 40)
            self.assertEqual(
                _speedups.apply_mask(data, key, offset), _mask_python(data, key, offset), (n, offset))

    def test_offsetCarriesAcrossPieces(self) -> None:
        """
        A payload masked piece by piece, each piece at the offset where it
        begins, is the payload masked whole: in C and in Python, for random
        cuts (empty pieces included), from bytes and from memoryview slices.
        """
        for _ in range(60):
            payload = self.rng.randbytes(self.rng.randrange(0, 3000))
            key = self.rng.randbytes(4)
            whole = _reference(payload, key)
            cuts = sorted(self.rng.randrange(0, len(payload) + 1) for _ in range(self.rng.randrange(0, 12)))
            for mask in (_speedups.apply_mask, _mask_python):
                pieces = []
                start = 0
                with memoryview(payload) as view:
                    for end in [*cuts, len(payload)]:
                        pieces.append(mask(view[start:end], key, start))
                        start = end
                self.assertEqual(b"".join(pieces), whole, (mask, cuts))

    def test_badOffset(self) -> None:
        """
        A negative offset is a C{ValueError} in C and in Python; one that is
        not an integer is a C{TypeError}.
        """
        for mask in (_speedups.apply_mask, _mask_python):
            self.assertRaises(ValueError, mask, b"abc", b"\x00\x01\x02\x03", -1)
            self.assertRaises(TypeError, mask, b"abc", b"\x00\x01\x02\x03", "1")

    def test_bytesLikeInputs(self) -> None:
        """
        bytes, bytearray and memoryview data and keys are accepted, and the
        result is always bytes.
        """
        data = b"Hello, WebSocket"
        key = b"\x37\xfa\x21\x3d"
        expected = _reference(data, key)
        for value in (data, bytearray(data), memoryview(data)):
            for k in (key, bytearray(key), memoryview(key)):
                result = _speedups.apply_mask(value, k)
                self.assertIs(type(result), bytes)
                self.assertEqual(result, expected)

    def test_rfcExample(self) -> None:
        """
        The masked "Hello" of RFC 6455 §5.7 unmasks to "Hello".
        """
        masked = bytes.fromhex("7f9f4d5158")
        self.assertEqual(_speedups.apply_mask(masked, bytes.fromhex("37fa213d")), b"Hello")

    def test_badKey(self) -> None:
        """
        A key that is not 4 bytes is a C{ValueError}; data that is not
        bytes-like is a C{TypeError}.
        """
        self.assertRaises(ValueError, _speedups.apply_mask, b"abc", b"\x00\x01\x02")
        self.assertRaises(ValueError, _speedups.apply_mask, b"abc", b"\x00\x01\x02\x03\x04")
        self.assertRaises(TypeError, _speedups.apply_mask, "text", b"\x00\x01\x02\x03")
        self.assertRaises(TypeError, _speedups.apply_mask, b"abc")


class _BytesBuilderTestsMixin:
    """
    What both L{frames.BytesBuilder} implementations do.

    @ivar builderType: the implementation under test.
    """

    builderType: type

    def test_empty(self) -> None:
        """
        A builder that was given nothing builds C{b""}, with or without a
        size hint.
        """
        for hint in (0, 10):
            builder = self.builderType(hint)
            self.assertEqual(len(builder), 0)
            self.assertEqual(builder.build(), b"")

    def test_joinsPieces(self) -> None:
        """
        The result is the pieces appended, in order, as exactly C{bytes},
        whatever bytes-like type they came as.
        """
        builder = self.builderType()
        builder.append(b"Hello, ")
        builder.append(bytearray(b"Web"))
        builder.append(memoryview(b"xxSocket")[2:])
        self.assertEqual(len(builder), 16)
        result = builder.build()
        self.assertIs(type(result), bytes)
        self.assertEqual(result, b"Hello, WebSocket")
        self.assertEqual(hash(result), hash(b"Hello, WebSocket"))

    def test_appendUnmasks(self) -> None:
        """
        With a key and an offset, L{append} unmasks each piece as the
        payload's part that begins at that offset: the pieces build the
        payload masked whole, for random cuts, sizes and hints.
        """
        rng = random.Random(7)
        for _ in range(40):
            payload = rng.randbytes(rng.randrange(0, 5000))
            key = rng.randbytes(4)
            cuts = sorted(rng.randrange(0, len(payload) + 1) for _ in range(rng.randrange(0, 9)))
            builder = self.builderType(rng.choice([0, len(payload)]))
            start = 0
            for end in [*cuts, len(payload)]:
                builder.append(payload[start:end], key, start)
                start = end
            self.assertEqual(builder.build(), _mask_python(payload, key), cuts)

    def test_appendBadKey(self) -> None:
        """
        A key that is not 4 bytes, or a negative offset, is a
        C{ValueError}; a key of L{None} means no masking.
        """
        builder = self.builderType()
        self.assertRaises(ValueError, builder.append, b"abc", b"\x01\x02\x03")
        self.assertRaises(ValueError, builder.append, b"abc", b"\x01\x02\x03\x04", -1)
        builder.append(b"abc", None, 5)
        self.assertEqual(builder.build(), b"abc")

    def test_sizeHint(self) -> None:
        """
        A size hint larger or smaller than what is appended changes nothing
        in the result.
        """
        data = random.Random(6455).randbytes(70_000)
        for hint in (0, 1, 4096, 70_000, 1 << 20):
            builder = self.builderType(hint)
            for start in range(0, len(data), 4099):
                builder.append(data[start : start + 4099])
            self.assertEqual(builder.build(), data, hint)

    def test_emptyPieces(self) -> None:
        """
        Empty pieces change nothing, first or later, with or without a
        size hint.
        """
        for hint in (0, 3):
            builder = self.builderType(hint)
            builder.append(b"")
            builder.append(b"abc")
            builder.append(memoryview(b""))
            self.assertEqual(builder.build(), b"abc")

    def test_startsOver(self) -> None:
        """
        After L{build}, the builder is empty and can build again; the first
        result is not changed by what comes next.
        """
        builder = self.builderType(4)
        builder.append(b"first")
        first = builder.build()
        self.assertEqual(len(builder), 0)
        builder.append(b"second")
        self.assertEqual(builder.build(), b"second")
        self.assertEqual(first, b"first")

    def test_badArguments(self) -> None:
        """
        A negative size hint is a C{ValueError}; appending something that is
        not bytes-like is a C{TypeError}.
        """
        self.assertRaises(ValueError, self.builderType, -1)
        self.assertRaises(TypeError, self.builderType().append, "text")

    def test_reserveAndCommit(self) -> None:
        """
        L{reserve} offers a writable view of exactly the room asked for;
        L{commit} takes the first bytes written there as appended, after
        what was appended before, unmasked in place with a key from the
        offset given, and gives up the rest of the room.
        """
        builder = self.builderType(2)
        builder.append(b"ab")
        view = builder.reserve(10)
        self.assertEqual((len(view), view.readonly), (10, False))
        masked = _mask_python(b"cdefg", b"\x01\x02\x03\x04", 3)
        view[:5] = masked
        view.release()
        builder.commit(5, b"\x01\x02\x03\x04", 3)
        self.assertEqual(len(builder), 7)
        builder.append(b"h")
        self.assertEqual(builder.build(), b"abcdefgh")

    def test_reserveCommitAgreesWithAppend(self) -> None:
        """
        Pieces received into reserved room, in random cuts with the key
        carried on by the offset, build what appending them builds; the
        room may be more than what is committed, or committed empty.
        """
        rng = random.Random(1)
        for _ in range(30):
            payload = rng.randbytes(rng.randrange(1, 5000))
            key = rng.randbytes(4)
            masked = _mask_python(payload, key)
            builder = self.builderType(rng.choice([0, 7, len(payload)]))
            start = 0
            while start < len(payload):
                n = rng.randrange(0, min(1500, len(payload) - start) + 1)
                view = builder.reserve(n + rng.randrange(0, 50))
                view[:n] = masked[start : start + n]
                view.release()
                builder.commit(n, key, start)
                start += n
            self.assertEqual(builder.build(), payload)

    def test_commitOutsideRoom(self) -> None:
        """
        Committing more than was reserved, a negative count, or without a
        reservation (an append gives it up) is a C{ValueError}; so is a bad
        key.
        """
        builder = self.builderType()
        builder.reserve(4).release()
        self.assertRaises(ValueError, builder.commit, 5)
        self.assertRaises(ValueError, builder.commit, -1)
        self.assertRaises(ValueError, builder.commit, 4, b"\x01")
        builder.append(b"x")
        self.assertRaises(ValueError, builder.commit, 1)
        self.assertRaises(ValueError, builder.reserve, -1)
        self.assertEqual(builder.build(), b"x")


class PythonBytesBuilderTests(_BytesBuilderTestsMixin, SynchronousTestCase):
    """
    The pure-Python L{frames._PythonBytesBuilder}.
    """

    builderType = _PythonBytesBuilder


class CBytesBuilderTests(_BytesBuilderTestsMixin, SynchronousTestCase):
    """
    The C L{_speedups.BytesBuilder}.
    """

    def setUp(self) -> None:
        _requireBuilt(self)
        self.builderType = _speedups.BytesBuilder

    def test_agreesWithPython(self) -> None:
        """
        For random pieces and hints, the C and Python builders build the
        same bytes.
        """
        rng = random.Random(7692)
        for _ in range(50):
            hint = rng.randrange(0, 5000)
            pieces = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(rng.randrange(0, 8))]
            c = _speedups.BytesBuilder(hint)
            python = _PythonBytesBuilder(hint)
            for piece in pieces:
                c.append(piece)
                python.append(piece)
            self.assertEqual(c.build(), python.build())

    def test_reservedRoomIsTheMessage(self) -> None:
        """
        The C builder's reserved room is its result's own storage, grown in
        place beyond the size hint if need be: bytes written there end up
        in the built C{bytes} without another copy.
        """
        builder = _speedups.BytesBuilder(4)
        builder.append(b"ab")
        view = builder.reserve(1 << 20)
        view[-3:] = b"xyz"
        view.release()
        builder.commit(1 << 20)
        result = builder.build()
        self.assertEqual((len(result), result[:2], result[-3:]), (2 + (1 << 20), b"ab", b"xyz"))

    def test_exportedRoomPinsTheBuffer(self) -> None:
        """
        While a view of the reserved room is alive, nothing that could move
        or hand over the buffer is allowed (append, reserve, build and
        re-initializing raise C{BufferError}); commit is, and once the view
        is released everything is again.
        """
        builder = _speedups.BytesBuilder()
        view = builder.reserve(8)
        view[:3] = b"abc"
        self.assertRaises(BufferError, builder.append, b"x")
        self.assertRaises(BufferError, builder.reserve, 1)
        self.assertRaises(BufferError, builder.build)
        self.assertRaises(BufferError, builder.__init__, 0)
        builder.commit(3)
        self.assertRaises(BufferError, builder.build)
        view.release()
        self.assertEqual(builder.build(), b"abc")

    def test_roomOnlyThroughReserve(self) -> None:
        """
        The builder's buffer is not exported but by L{reserve}: a
        memoryview or a C{bytes} of the builder itself is a
        C{BufferError}, reserved room or not.
        """
        builder = _speedups.BytesBuilder()
        builder.append(b"abc")
        self.assertRaises(BufferError, memoryview, builder)
        view = builder.reserve(4)
        self.assertRaises(BufferError, bytes, builder)
        view.release()
        self.assertEqual(builder.build(), b"abc")


if _speedups is None and NO_SPEEDUPS:
    # The user opted out of the C accelerator (WSPROTO_TW_NO_SPEEDUPS=1, and
    # run-tests.sh then builds none): there is no C code here to test.
    del CBuildTests, CMaskTests, CBytesBuilderTests


def _vmFlags(address: int) -> set[str]:
    """
    @return: the C{VmFlags} of the mapping holding C{address}, from
        C{/proc/self/smaps}.
    """
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "VmFlags:":
                return set(line.split()[1:])
    raise AssertionError(f"no mapping holds {address:#x}")


# Linux with transparent huge pages (the C builder advises them there).
_THP = sys.platform.startswith("linux") and os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled")


class HugePageAdviceTests(SynchronousTestCase):
    """
    The C L{BytesBuilder} asks for transparent huge pages for the 2 MiB
    pages inside a buffer of 4 MiB or more (Linux), so that filling a large
    message takes a few page faults, not one per 4 KiB.
    """

    def setUp(self) -> None:
        _requireBuilt(self)

    def dataAddress(self, value: bytes) -> int:
        # CPython: a bytes object's data follows its fixed-size header.
        return id(value) + bytes.__basicsize__ - 1

    def assertAdvised(self, value: bytes, advised: bool) -> None:
        middle = self.dataAddress(value) + len(value) // 2
        if _THP:
            self.assertEqual("hg" in _vmFlags(middle), advised)

    def test_sizedFromHint(self) -> None:
        """
        A buffer allocated from a 16 MiB hint is advised, and holds what
        was appended.
        """
        chunk = bytes(range(256)) * 4096
        builder = _speedups.BytesBuilder(16 << 20)
        for _ in range(16):
            builder.append(chunk)
        value = builder.build()
        self.assertEqual(value, chunk * 16)
        self.assertAdvised(value, True)

    def test_grown(self) -> None:
        """
        A buffer grown past 4 MiB by appends is advised too.
        """
        chunk = b"\x5a" * (1 << 20)
        builder = _speedups.BytesBuilder()
        for _ in range(12):
            builder.append(chunk)
        value = builder.build()
        self.assertEqual(value, chunk * 12)
        self.assertAdvised(value, True)

    def test_smallNotAdvised(self) -> None:
        """
        A buffer under 4 MiB is left alone.
        """
        if not _THP:
            return
        # In a fresh process: here, the heap may hold memory an earlier
        # test's large buffer advised, and a small buffer land in it.
        import subprocess

        script = (
            "import sys\n"
            "from tests.core.test_speedups import _vmFlags\n"
            "from wsproto_tw.core import _speedups\n"
            "builder = _speedups.BytesBuilder(3 << 20)\n"
            "builder.append(b'\\x01' * (3 << 20))\n"
            "value = builder.build()\n"
            "middle = id(value) + bytes.__basicsize__ - 1 + len(value) // 2\n"
            "print('hg' in _vmFlags(middle))\n"
        )
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=60)
        self.assertEqual(out.stdout.strip(), "False", out.stderr)


def _frame(rng: random.Random, masked: bool) -> bytes:
    """
    One random frame, valid or not: data or control opcodes, reserved bits
    and opcodes now and then, lengths in each of the three forms, masked or
    not as asked (the wrong way now and then).
    """
    b0 = rng.choice([0x81, 0x82, 0x80, 0x01, 0x02, 0x00, 0x89, 0x8A, 0x88, 0xC1, 0xA1, 0x83, 0x8B])
    length = rng.choice([0, 1, 7, 32, 125, 126, 300, 65535, 65536, 70000])
    if rng.random() < 0.05:
        masked = not masked
    if length < 126:
        head = bytes([b0, (0x80 if masked else 0) | length])
    elif length < 65536:
        head = bytes([b0, (0x80 if masked else 0) | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([b0, (0x80 if masked else 0) | 127]) + length.to_bytes(8, "big")
    key = rng.randbytes(4) if masked else b""
    return head + key + rng.randbytes(length)


class ReadFrameTests(SynchronousTestCase):
    """
    L{_speedups.read_frame}, the whole-frame read of
    L{frames.FrameReader.read_piece}.
    """

    def setUp(self) -> None:
        if not NO_SPEEDUPS:
            _requireBuilt(self)

    def test_selected(self) -> None:
        """
        L{frames.FrameReader} reads whole frames with the C function unless
        C{WSPROTO_TW_NO_SPEEDUPS} is set or the extension is missing.
        """
        if NO_SPEEDUPS or _speedups is None:
            self.assertIsNone(frames._read_frame)
        else:
            self.assertIs(frames._read_frame, _speedups.read_frame)

    def _read(self, stream: bytes, chunks: list[int], expectMask: bool, limit: int, rsv1: bool) -> list:
        """
        Feed C{stream} to a reader in C{chunks}, reading pieces after each.

        @return: what came out: pieces, then the error's class and message
            if one was raised, then what was left in the buffer.
        """
        reader = frames.FrameReader(expect_mask=expectMask, max_frame_size=limit, rsv1_allowed=rsv1)
        out: list = []
        at = 0
        try:
            for size in chunks + [len(stream)]:
                reader.feed(stream[at : at + size])
                at += size
                while (piece := reader.read_piece()) is not None:
                    out.append(piece)
        except Exception as e:
            out.append((type(e), str(e)))
        out.append(bytes(reader.buffer))
        return out

    def test_agreesWithPython(self) -> None:
        """
        For random streams of frames (data and control, reserved bits and
        opcodes, all three length forms, masked the right way or not, over
        the size limit or not), fed whole or in random chunks, a reader
        using the C function reads the same pieces, raises the same errors
        and leaves the same bytes as the pure-Python reader.
        """
        _requireBuilt(self)
        rng = random.Random(6455)
        for i in range(300):
            expectMask = rng.random() < 0.7
            stream = b"".join(_frame(rng, expectMask) for _ in range(rng.randrange(1, 6)))
            chunks = [rng.randrange(1, 200) for _ in range(rng.randrange(0, 6))]
            limit = rng.choice([0, 100, 1 << 20])
            rsv1 = rng.random() < 0.3
            self.patch(frames, "_read_frame", _speedups.read_frame)
            c = self._read(stream, chunks, expectMask, limit, rsv1)
            self.patch(frames, "_read_frame", None)
            python = self._read(stream, chunks, expectMask, limit, rsv1)
            # (No diff of the two: they hold payloads of up to 70 kB.)
            self.assertTrue(c == python, f"stream {i} read differently")

    def test_wholeFrame(self) -> None:
        """
        A whole masked text frame is cut off the buffer and comes out
        unmasked as read_piece's tuple, with the opcode from the tuple given.
        """
        _requireBuilt(self)
        key = b"\x01\x02\x03\x04"
        buffer = bytearray(b"\x81\x82" + key + _reference(b"hi", key) + b"\x89")
        opcodes = ("c", "t", "b")
        self.assertEqual(
            _speedups.read_frame(buffer, 0x80, False, 0, opcodes), ("t", True, False, b"hi", True, True)
        )
        self.assertEqual(buffer, bytearray(b"\x89"))

    def test_lastFrameKeepsSmallAllocation(self) -> None:
        """
        A frame that was all of a small buffer empties it in place: the
        buffer keeps its allocation (C{sys.getsizeof} counts it), and what
        is added next is read as usual.
        """
        _requireBuilt(self)
        opcodes = ("c", "t", "b")
        buffer = bytearray(b"\x81\x02hi")
        allocated = sys.getsizeof(buffer)
        self.assertEqual(_speedups.read_frame(buffer, 0, False, 0, opcodes), ("t", True, False, b"hi", True, True))
        self.assertEqual(buffer, bytearray())
        self.assertEqual(sys.getsizeof(buffer), allocated)
        buffer += b"\x82\x01x"
        self.assertEqual(_speedups.read_frame(buffer, 0, False, 0, opcodes), ("b", True, False, b"x", True, True))
        self.assertEqual(buffer, bytearray())

    def test_lastFrameFreesLargeAllocation(self) -> None:
        """
        A frame that was all of a buffer of more than 256 bytes lets the
        buffer's allocation go, as C{del buffer[:]} does; and a buffer
        viewed by a memoryview is not emptied in place (C{BufferError}, as
        C{del buffer[:]}).
        """
        _requireBuilt(self)
        opcodes = ("c", "t", "b")
        buffer = bytearray(b"\x82\x7e\x01\x00" + b"x" * 256)
        allocated = sys.getsizeof(buffer)
        self.assertEqual(
            _speedups.read_frame(buffer, 0, False, 0, opcodes), ("b", True, False, b"x" * 256, True, True)
        )
        self.assertEqual(buffer, bytearray())
        self.assertLess(sys.getsizeof(buffer), allocated - 200)
        buffer = bytearray(b"\x81\x02hi")
        with memoryview(buffer):
            self.assertRaises(BufferError, _speedups.read_frame, buffer, 0, False, 0, opcodes)

    def test_declined(self) -> None:
        """
        Fewer than two bytes give L{None}; a control frame, reserved bits,
        a reserved opcode, the wrong masking, a frame over the limit or not
        whole yet give C{False} and leave the buffer as it was.
        """
        _requireBuilt(self)
        opcodes = ("c", "t", "b")
        self.assertIsNone(_speedups.read_frame(bytearray(b"\x81"), 0, False, 0, opcodes))
        self.assertIsNone(_speedups.read_frame(b"", 0, False, 0, opcodes))
        for data, rsv1, limit in [
            (b"\x89\x00", False, 0),  # ping
            (b"\xc1\x00", False, 0),  # RSV1 without an extension
            (b"\xa1\x00", True, 0),  # RSV2
            (b"\x83\x00", False, 0),  # reserved opcode
            (b"\x81\x80\x00\x00\x00\x00", False, 0),  # masked, to a client
            (b"\x81\x03ab", False, 0),  # not whole
            (b"\x81\x7e\x00", False, 0),  # its length not whole
            (b"\x81\x03abc", False, 2),  # over the limit
        ]:
            buffer = bytearray(data)
            self.assertIs(_speedups.read_frame(buffer, 0, rsv1, limit, opcodes), False, data)
            self.assertEqual(buffer, bytearray(data))
        self.assertEqual(
            _speedups.read_frame(bytearray(b"\xc1\x01a"), 0, True, 0, opcodes), ("t", True, True, b"a", True, True)
        )

    def test_wholeControlFrame(self) -> None:
        """
        Given an opcode for it (a tuple indexed by opcode), a whole control
        frame with FIN set, no reserved bit and at most 125 bytes is cut off
        the buffer and comes out unmasked, as a data frame does.
        """
        _requireBuilt(self)
        key = b"\x01\x02\x03\x04"
        opcodes = ("c", "t", "b", None, None, None, None, None, "close", "ping", "pong")
        buffer = bytearray(b"\x88\x82" + key + _reference(b"\x03\xe8", key) + b"\x81")
        self.assertEqual(
            _speedups.read_frame(buffer, 0x80, False, 0, opcodes), ("close", True, False, b"\x03\xe8", True, True)
        )
        self.assertEqual(buffer, bytearray(b"\x81"))
        payload = bytes(range(125))
        buffer = bytearray(b"\x89\x7d" + payload)
        self.assertEqual(
            _speedups.read_frame(buffer, 0, True, 0, opcodes), ("ping", True, False, payload, True, True)
        )
        self.assertEqual(buffer, bytearray())
        self.assertEqual(
            _speedups.read_frame(bytearray(b"\x8a\x00"), 0, False, 0, opcodes), ("pong", True, False, b"", True, True)
        )

    def test_controlFrameDeclined(self) -> None:
        """
        A control frame that is not whole, fragmented, has a reserved bit
        (RSV1 too, negotiated or not), is over 125 bytes or over the limit,
        is masked the wrong way, has a reserved opcode, or whose opcode the
        tuple does not name gives C{False} and leaves the buffer as it was:
        the Python path reads or rejects it.
        """
        _requireBuilt(self)
        opcodes = ("c", "t", "b", None, None, None, None, None, "close", "ping", "pong", None)
        for data, rsv1, limit, given in [
            (b"\x88\x02\x03", False, 0, opcodes),  # not whole
            (b"\x08\x00", False, 0, opcodes),  # fragmented
            (b"\xc9\x00", True, 0, opcodes),  # RSV1, negotiated
            (b"\xa9\x00", False, 0, opcodes),  # RSV2
            (b"\x89\x7e\x00\x7e" + bytes(126), False, 0, opcodes),  # over 125 bytes
            (b"\x89\x03abc", False, 2, opcodes),  # over the limit
            (b"\x89\x80\x00\x00\x00\x00", False, 0, opcodes),  # masked, to a client
            (b"\x8b\x00", False, 0, opcodes),  # reserved opcode, named None
            (b"\x8f\x00", False, 0, opcodes),  # reserved opcode, past the tuple
            (b"\x88\x00", False, 0, opcodes[:8]),  # not named
            (b"\x88\x00", False, 0, ("c", "t", "b")),  # not named
        ]:
            buffer = bytearray(data)
            self.assertIs(_speedups.read_frame(buffer, 0, rsv1, limit, given), False, data)
            self.assertEqual(buffer, bytearray(data))
