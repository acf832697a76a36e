/*
 * wsproto_tw.core._speedups: an optional C accelerator for the sans-I/O core.
 *
 * apply_mask(data, key, offset=0) -> bytes
 *     XOR data with the 4-byte masking key repeated (RFC 6455 §5.3), eight
 *     bytes at a time; data starts offset bytes into the payload, so a
 *     payload unmasked in parts needs no rotated copies of the key.
 *
 * BytesBuilder(size_hint=0)
 *     Joins the pieces of a message into one bytes object, written in place:
 *     append(data, key=None, offset=0) copies data at the end (unmasking it
 *     on the way when given the masking key), build() hands the bytes over.
 *     The bytes object is private to the builder until build() returns it,
 *     so growing it with _PyBytes_Resize is allowed. A large message then
 *     costs one allocation of its size, where joining a list of pieces
 *     holds every piece as well until the join. A buffer of 4 MiB or more
 *     is offered transparent huge pages (advise_huge).
 *     reserve(n) offers the next n bytes of room as a writable memoryview,
 *     for bytes to be received straight into the message (recv_into);
 *     commit(n, key=None, offset=0) then takes the first n of them,
 *     unmasking them in place. While such a view is alive the bytes object
 *     is exported: nothing may move or hand it over (append, reserve and
 *     build raise BufferError), as for a bytearray.
 *
 * parse_upgrade_request(head, max_headers, shared_values, shared_pairs)
 *     The usual WebSocket opening request, parsed and checked at once: the
 *     fast path of wsproto_tw.core.handshake.read_request. It returns what
 *     parse_request and validate_request (wsproto_tw.core.handshake, the
 *     reference) would make of the head, or None whenever the head is
 *     anything but the common case they accept: then the reference code
 *     parses it, and says what is wrong. It only ever accepts what the
 *     reference accepts; tests/core/test_requestspeedups.py checks that on
 *     exact bytes.
 *
 * read_frame(buffer, mask_bit, rsv1_allowed, max_frame_size, opcodes)
 *     The common case of FrameReader.read_piece: a whole data frame at the
 *     start of the bytearray buffer, nothing about it to check beyond the
 *     masking direction and the size. It is cut off the buffer (a frame
 *     that was all of a buffer of at most KEEP_BUFFER_MAX bytes allocated
 *     empties it in place, the allocation kept for the next read) and comes
 *     out as read_piece's tuple (opcode, fin, rsv1, payload, True, True),
 *     the payload unmasked, opcode taken from opcodes[0..2]; None when the
 *     buffer has fewer than 2 bytes; False for anything else (reserved bits
 *     or opcode, a frame not whole yet, a size or masking error), left
 *     untouched for the Python path to read or reject. A whole control
 *     frame (opcode 8 to 10) that is valid as it stands (FIN set, no
 *     reserved bit, at most 125 bytes: RFC 6455 section 5.5) is read too
 *     when opcodes has an entry other than None for it (a tuple of 11 or
 *     more, indexed by opcode); else it is False as well.
 *
 * The pure-Python fallbacks in wsproto_tw.core.frames compute the same
 * results; tests/core/test_speedups.py checks that they agree.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* read_frame empties a bytearray buffer of at most this many bytes
 * allocated in place, keeping the allocation (see read_frame). */
#define KEEP_BUFFER_MAX ((Py_ssize_t)256)

/* Buffers from this size on are offered transparent huge pages. */
#define HUGE_ADVICE_MIN ((Py_ssize_t)4 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

/*
 * Ask the kernel to back the whole 2 MiB pages inside a large buffer with
 * transparent huge pages (Linux, where THP is "madvise" or "always"):
 * filling a fresh 16 MiB message then costs 8 page faults instead of 4,096.
 * It concerns this buffer's pages only (no process-wide malloc tuning), and
 * it is advice: failure or a kernel without THP changes nothing else.
 */
static void
advise_huge(char *start, Py_ssize_t size)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (size < HUGE_ADVICE_MIN) {
        return;
    }
    uintptr_t lo = ((uintptr_t)start + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t hi = ((uintptr_t)start + (uintptr_t)size) & ~(HUGE_PAGE - 1);
    if (hi > lo) {
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#else
    (void)start;
    (void)size;
#endif
}

static void
mask_into(unsigned char *out, const unsigned char *in, Py_ssize_t n, const unsigned char key_in[4],
          Py_ssize_t offset)
{
    /* The key as it stands at byte 0 of data that begins offset bytes into
     * the payload. */
    unsigned char key[4] = {key_in[offset & 3], key_in[(offset + 1) & 3], key_in[(offset + 2) & 3],
                            key_in[(offset + 3) & 3]};
    Py_ssize_t i = 0;
    if (n >= 16) {
        unsigned char kb[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
        uint64_t k8, v;
        memcpy(&k8, kb, 8);
        for (; i + 8 <= n; i += 8) {
            memcpy(&v, in + i, 8);
            v ^= k8;
            memcpy(out + i, &v, 8);
        }
    }
    for (; i < n; i++) {
        out[i] = in[i] ^ key[i & 3];
    }
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, key, offset=0) -> bytes\n\n"
"XOR the bytes-like data with the 4-byte masking key repeated\n"
"(RFC 6455 section 5.3), data being the part of a payload that begins\n"
"offset bytes into it (the key carries on where the previous part left it).");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    PyObject *result = NULL;
    Py_ssize_t offset = 0;

    if (nargs != 2 && nargs != 3) {
        PyErr_Format(PyExc_TypeError, "apply_mask() takes 2 or 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (nargs == 3) {
        offset = PyLong_AsSsize_t(args[2]);
        if (offset == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (offset < 0) {
            PyErr_SetString(PyExc_ValueError, "offset must not be negative");
            return NULL;
        }
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (key.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask key must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    if (data.len >= 65536) {
        /* Large payloads: let other threads run meanwhile. */
        Py_BEGIN_ALLOW_THREADS
        mask_into((unsigned char *)PyBytes_AS_STRING(result), data.buf, data.len, key.buf, offset);
        Py_END_ALLOW_THREADS
    } else {
        mask_into((unsigned char *)PyBytes_AS_STRING(result), data.buf, data.len, key.buf, offset);
    }
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(read_frame_doc,
"read_frame(buffer, mask_bit, rsv1_allowed, max_frame_size, opcodes)\n\n"
"Cut a whole data frame that needs no check beyond the masking direction\n"
"and the size off the start of the bytearray buffer: (opcode, fin, rsv1,\n"
"payload, True, True), the payload unmasked (RFC 6455 section 5.3);\n"
"None for fewer than 2 bytes; False for anything else, buffer untouched.\n"
"A valid whole control frame is read too when opcodes (indexed by opcode)\n"
"has an entry other than None for its opcode.");

static PyObject *
read_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "read_frame() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *buffer = args[0];
    if (!PyByteArray_CheckExact(buffer)) {
        if (PyBytes_Check(buffer) && PyBytes_GET_SIZE(buffer) < 2) {
            Py_RETURN_NONE; /* a released reader's empty buffer */
        }
        Py_RETURN_FALSE;
    }
    Py_ssize_t have = PyByteArray_GET_SIZE(buffer);
    if (have < 2) {
        Py_RETURN_NONE;
    }
    long mask_bit = PyLong_AsLong(args[1]);
    if (mask_bit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int rsv1_allowed = PyObject_IsTrue(args[2]);
    if (rsv1_allowed < 0) {
        return NULL;
    }
    int overflow = 0;
    long long max_frame_size = PyLong_AsLongLongAndOverflow(args[3], &overflow);
    if (max_frame_size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow) {
        max_frame_size = 0; /* beyond any length read_frame takes: no limit */
    }
    PyObject *opcodes = args[4];
    if (!PyTuple_Check(opcodes) || PyTuple_GET_SIZE(opcodes) < 3) {
        PyErr_SetString(PyExc_TypeError, "opcodes must be a tuple of at least 3");
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)PyByteArray_AS_STRING(buffer);
    unsigned char b0 = buf[0], b1 = buf[1];
    unsigned int opcode = b0 & 0x0F;
    unsigned int rsv = b0 & (rsv1_allowed ? 0x30 : 0x70);
    if (opcode > 2) {
        /* A control frame, read here only as it must be (RFC 6455 section
           5.5): whole (FIN), no reserved bit (not even a negotiated RSV1),
           at most 125 bytes; and with an opcode the caller names. */
        if (opcode < 8 || opcode >= (unsigned int)PyTuple_GET_SIZE(opcodes) ||
            PyTuple_GET_ITEM(opcodes, opcode) == Py_None || (b0 & 0xF0) != 0x80 || (b1 & 0x7F) > 125) {
            Py_RETURN_FALSE; /* Python's to read or reject */
        }
    }
    if (rsv || (long)(b1 & 0x80) != mask_bit) {
        Py_RETURN_FALSE; /* reserved, or the wrong masking: Python's to say */
    }
    unsigned long long length = b1 & 0x7F;
    Py_ssize_t pos = 2;
    if (length == 126) {
        if (have < 4) {
            Py_RETURN_FALSE;
        }
        length = ((unsigned long long)buf[2] << 8) | buf[3];
        pos = 4;
    } else if (length == 127) {
        if (have < 10) {
            Py_RETURN_FALSE;
        }
        length = 0;
        for (int i = 2; i < 10; i++) {
            length = (length << 8) | buf[i];
        }
        pos = 10;
    }
    if (length > (unsigned long long)PY_SSIZE_T_MAX ||
        (max_frame_size > 0 && length > (unsigned long long)max_frame_size)) {
        Py_RETURN_FALSE;
    }
    const unsigned char *key = NULL;
    if (mask_bit) {
        key = buf + pos;
        pos += 4;
    }
    if ((unsigned long long)(have - pos) < length || have < pos) {
        Py_RETURN_FALSE; /* not whole yet */
    }
    Py_ssize_t n = (Py_ssize_t)length;
    PyObject *payload = PyBytes_FromStringAndSize(NULL, n);
    if (payload == NULL) {
        return NULL;
    }
    if (key != NULL) {
        mask_into((unsigned char *)PyBytes_AS_STRING(payload), buf + pos, n, key, 0);
    } else {
        memcpy(PyBytes_AS_STRING(payload), buf + pos, n);
    }
    PyObject *result = PyTuple_New(6);
    if (result == NULL) {
        Py_DECREF(payload);
        return NULL;
    }
    PyObject *op = PyTuple_GET_ITEM(opcodes, opcode);
    Py_INCREF(op);
    PyTuple_SET_ITEM(result, 0, op);
    PyObject *flag = (b0 & 0x80) ? Py_True : Py_False;
    Py_INCREF(flag);
    PyTuple_SET_ITEM(result, 1, flag);
    flag = (b0 & 0x40) ? Py_True : Py_False;
    Py_INCREF(flag);
    PyTuple_SET_ITEM(result, 2, flag);
    PyTuple_SET_ITEM(result, 3, payload);
    Py_INCREF(Py_True);
    PyTuple_SET_ITEM(result, 4, Py_True);
    Py_INCREF(Py_True);
    PyTuple_SET_ITEM(result, 5, Py_True);
    PyByteArrayObject *array = (PyByteArrayObject *)buffer;
    if (pos + n == have && array->ob_exports == 0 && array->ob_alloc <= KEEP_BUFFER_MAX) {
        /* The frame was all of the buffer (a message read alone): emptied
         * in place, its small allocation kept for the next read. del
         * buffer[:] would give the memory back, and the next read's +=
         * take it again. */
        array->ob_start = array->ob_bytes;
        Py_SET_SIZE(array, 0);
        array->ob_start[0] = '\0';
        return result;
    }
    /* del buffer[:pos + n]: a bytearray moves its start, no copy. */
    if (PySequence_DelSlice(buffer, 0, pos + n) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* -- BytesBuilder ------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *bytes;     /* the bytes being written, or NULL when empty */
    Py_ssize_t size;     /* bytes written so far */
    Py_ssize_t reserved; /* room after size offered by reserve() */
    Py_ssize_t exports;  /* views of that room still alive */
    int offering;        /* reserve() is making its view: the only way in */
} BytesBuilder;

/* An empty room's view points here (bytes may be NULL then). */
static char empty_room[1];

static int
check_not_exported(BytesBuilder *self)
{
    if (self->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "the room offered by reserve() is still being written");
        return -1;
    }
    return 0;
}

/* Make room for n more bytes after size, growing geometrically. */
static int
ensure_room(BytesBuilder *self, Py_ssize_t n)
{
    Py_ssize_t capacity = self->bytes == NULL ? 0 : PyBytes_GET_SIZE(self->bytes);
    if (n > PY_SSIZE_T_MAX - self->size) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t needed = self->size + n;
    if (needed <= capacity) {
        return 0;
    }
    /* Grow geometrically, so that many small pieces cost amortized O(1). */
    Py_ssize_t grown = capacity < PY_SSIZE_T_MAX / 2 ? capacity * 2 : PY_SSIZE_T_MAX;
    Py_ssize_t target = needed > grown ? needed : grown;
    if (self->bytes == NULL) {
        self->bytes = PyBytes_FromStringAndSize(NULL, target);
        if (self->bytes == NULL) {
            return -1;
        }
    } else if (_PyBytes_Resize(&self->bytes, target) < 0) {
        /* _PyBytes_Resize has released the bytes and set the error. */
        self->size = 0;
        return -1;
    }
    advise_huge(PyBytes_AS_STRING(self->bytes), target);
    return 0;
}

static int
BytesBuilder_init(BytesBuilder *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"size_hint", NULL};
    Py_ssize_t hint = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:BytesBuilder", keywords, &hint)) {
        return -1;
    }
    if (hint < 0) {
        PyErr_SetString(PyExc_ValueError, "size_hint must not be negative");
        return -1;
    }
    if (check_not_exported(self) < 0) {
        return -1;
    }
    Py_CLEAR(self->bytes);
    self->size = 0;
    self->reserved = 0;
    if (hint > 0) {
        self->bytes = PyBytes_FromStringAndSize(NULL, hint);
        if (self->bytes == NULL) {
            return -1;
        }
        advise_huge(PyBytes_AS_STRING(self->bytes), hint);
    }
    return 0;
}

static void
BytesBuilder_dealloc(BytesBuilder *self)
{
    Py_XDECREF(self->bytes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The optional (key, offset) arguments of append() and commit(), args[1]
 * and args[2]: a 4-byte masking key or None (masked says which; the key's
 * buffer is to be released by the caller when masked), and a non-negative
 * offset into the payload. Returns -1 with an exception set on bad
 * arguments. */
static int
parse_key_offset(PyObject *const *args, Py_ssize_t nargs, Py_buffer *key, int *masked, Py_ssize_t *offset)
{
    *masked = 0;
    *offset = 0;
    if (nargs == 3) {
        *offset = PyLong_AsSsize_t(args[2]);
        if (*offset == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (*offset < 0) {
            PyErr_SetString(PyExc_ValueError, "offset must not be negative");
            return -1;
        }
    }
    if (nargs >= 2 && args[1] != Py_None) {
        if (PyObject_GetBuffer(args[1], key, PyBUF_SIMPLE) < 0) {
            return -1;
        }
        if (key->len != 4) {
            PyBuffer_Release(key);
            PyErr_SetString(PyExc_ValueError, "mask key must be 4 bytes");
            return -1;
        }
        *masked = 1;
    }
    return 0;
}

static PyObject *append_buffer(BytesBuilder *self, Py_buffer *view, const unsigned char *key, Py_ssize_t offset);

PyDoc_STRVAR(BytesBuilder_append_doc,
"append(data, key=None, offset=0)\n\n"
"Copy the bytes-like data at the end of what was appended so far; with a\n"
"4-byte masking key, unmask it on the way, data beginning offset bytes\n"
"into its payload (RFC 6455 section 5.3): one pass over the bytes.");

static PyObject *
BytesBuilder_append(BytesBuilder *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    Py_ssize_t offset = 0;
    int masked = 0;

    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "append() takes 1 to 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (parse_key_offset(args, nargs, &key, &masked, &offset) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        if (masked) {
            PyBuffer_Release(&key);
        }
        return NULL;
    }
    PyObject *result = append_buffer(self, &data, masked ? key.buf : NULL, offset);
    PyBuffer_Release(&data);
    if (masked) {
        PyBuffer_Release(&key);
    }
    return result;
}

static PyObject *
append_buffer(BytesBuilder *self, Py_buffer *view, const unsigned char *key, Py_ssize_t offset)
{
    Py_buffer data = *view;

    if (check_not_exported(self) < 0) {
        return NULL;
    }
    self->reserved = 0;
    if (data.len == 0) {
        Py_RETURN_NONE;
    }
    if (ensure_room(self, data.len) < 0) {
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(self->bytes) + self->size;
    if (key == NULL) {
        memcpy(out, data.buf, data.len);
    } else {
        mask_into(out, data.buf, data.len, key, offset);
    }
    self->size += data.len;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(BytesBuilder_reserve_doc,
"reserve(n) -> memoryview\n\n"
"Make room for n more bytes and return a writable memoryview of exactly\n"
"that room (what follows what was appended), to receive bytes into; then\n"
"commit() says how many were written. Until the view is released,\n"
"append(), reserve() and build() raise BufferError.");

static PyObject *
BytesBuilder_reserve(BytesBuilder *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must not be negative");
        return NULL;
    }
    if (check_not_exported(self) < 0) {
        return NULL;
    }
    if (n > 0 && ensure_room(self, n) < 0) {
        self->reserved = 0;
        return NULL;
    }
    self->reserved = n;
    self->offering = 1;
    PyObject *view = PyMemoryView_FromObject((PyObject *)self);
    self->offering = 0;
    return view;
}

PyDoc_STRVAR(BytesBuilder_commit_doc,
"commit(n, key=None, offset=0)\n\n"
"Take the first n bytes of the room reserve() offered as appended; with a\n"
"4-byte masking key, unmask them in place, their first byte being offset\n"
"bytes into its payload (RFC 6455 section 5.3). The rest of the room is\n"
"given up.");

static PyObject *
BytesBuilder_commit(BytesBuilder *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer key;
    Py_ssize_t n, offset = 0;
    int masked = 0;

    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "commit() takes 1 to 3 arguments (%zd given)", nargs);
        return NULL;
    }
    n = PyLong_AsSsize_t(args[0]);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 0 || n > self->reserved) {
        PyErr_Format(PyExc_ValueError, "commit(%zd) outside the %zd bytes reserved", n, self->reserved);
        return NULL;
    }
    if (parse_key_offset(args, nargs, &key, &masked, &offset) < 0) {
        return NULL;
    }
    if (n > 0) {
        unsigned char *room = (unsigned char *)PyBytes_AS_STRING(self->bytes) + self->size;
        if (masked) {
            mask_into(room, room, n, key.buf, offset);
        }
        self->size += n;
    }
    self->reserved = 0;
    if (masked) {
        PyBuffer_Release(&key);
    }
    Py_RETURN_NONE;
}

static int
BytesBuilder_getbuffer(BytesBuilder *self, Py_buffer *view, int flags)
{
    if (!self->offering) {
        PyErr_SetString(PyExc_BufferError, "a BytesBuilder's room is offered by reserve() only");
        view->obj = NULL;
        return -1;
    }
    char *room = self->reserved > 0 ? PyBytes_AS_STRING(self->bytes) + self->size : empty_room;
    if (PyBuffer_FillInfo(view, (PyObject *)self, room, self->reserved, 0, flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
BytesBuilder_releasebuffer(BytesBuilder *self, Py_buffer *Py_UNUSED(view))
{
    self->exports--;
}

static PyBufferProcs BytesBuilder_as_buffer = {
    .bf_getbuffer = (getbufferproc)BytesBuilder_getbuffer,
    .bf_releasebuffer = (releasebufferproc)BytesBuilder_releasebuffer,
};

PyDoc_STRVAR(BytesBuilder_build_doc,
"build() -> bytes\n\n"
"Return everything appended as one bytes object and start over empty.");

static PyObject *
BytesBuilder_build(BytesBuilder *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *result = self->bytes;

    if (check_not_exported(self) < 0) {
        return NULL;
    }
    self->reserved = 0;
    if (result == NULL) {
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    self->bytes = NULL;
    if (self->size != PyBytes_GET_SIZE(result) && _PyBytes_Resize(&result, self->size) < 0) {
        self->size = 0;
        return NULL;
    }
    self->size = 0;
    return result;
}

static Py_ssize_t
BytesBuilder_length(BytesBuilder *self)
{
    return self->size;
}

static PyMethodDef BytesBuilder_methods[] = {
    {"append", (PyCFunction)(void (*)(void))BytesBuilder_append, METH_FASTCALL, BytesBuilder_append_doc},
    {"build", (PyCFunction)BytesBuilder_build, METH_NOARGS, BytesBuilder_build_doc},
    {"reserve", (PyCFunction)BytesBuilder_reserve, METH_O, BytesBuilder_reserve_doc},
    {"commit", (PyCFunction)(void (*)(void))BytesBuilder_commit, METH_FASTCALL, BytesBuilder_commit_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods BytesBuilder_as_sequence = {
    .sq_length = (lenfunc)BytesBuilder_length,
};

PyDoc_STRVAR(BytesBuilder_doc,
"BytesBuilder(size_hint=0)\n\n"
"Joins pieces into one bytes object, written in place. size_hint is the\n"
"expected total: that much is allocated at once.");

static PyTypeObject BytesBuilder_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wsproto_tw.core._speedups.BytesBuilder",
    .tp_basicsize = sizeof(BytesBuilder),
    .tp_dealloc = (destructor)BytesBuilder_dealloc,
    .tp_as_sequence = &BytesBuilder_as_sequence,
    .tp_as_buffer = &BytesBuilder_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = BytesBuilder_doc,
    .tp_methods = BytesBuilder_methods,
    .tp_init = (initproc)BytesBuilder_init,
    .tp_new = PyType_GenericNew,
};


/* -- the opening request -------------------------------------------------- */

/* RFC 9110 §5.6.2: tchar. */
static unsigned char is_tchar[256];
/* RFC 4648 §4: the base64 alphabet. */
static unsigned char is_b64[256];

static PyObject *str_GET;
static PyObject *key_host, *key_upgrade, *key_connection, *key_sec_key, *key_sec_version;
static PyObject *key_transfer_encoding, *key_content_length;

/* Header lines longer than this, and names longer than this, are left to
 * the reference code (as _MAX_SHARED_LINE and _MAX_SHARED_PAIRS there). */
#define MAX_NAME 128
#define MAX_SHARED_LINE 256
#define MAX_SHARED_PAIRS 1024

static int
init_request_tables(void)
{
    const char *tchars = "!#$%&'*+-.^_`|~";
    for (int c = '0'; c <= '9'; c++) {
        is_tchar[c] = is_b64[c] = 1;
    }
    for (int c = 'a'; c <= 'z'; c++) {
        is_tchar[c] = is_b64[c] = 1;
        is_tchar[c - 32] = is_b64[c - 32] = 1;
    }
    for (const char *t = tchars; *t; t++) {
        is_tchar[(unsigned char)*t] = 1;
    }
    is_b64['+'] = is_b64['/'] = 1;
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return -1
    INTERN(str_GET, "GET");
    INTERN(key_host, "host");
    INTERN(key_upgrade, "upgrade");
    INTERN(key_connection, "connection");
    INTERN(key_sec_key, "sec-websocket-key");
    INTERN(key_sec_version, "sec-websocket-version");
    INTERN(key_transfer_encoding, "transfer-encoding");
    INTERN(key_content_length, "content-length");
#undef INTERN
    return 0;
}

static int
ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/*
 * Whether the comma-separated list s[0:n] (RFC 9110 §5.6.1) has an element
 * that is token (lower-case ASCII), in any case, once its spaces and tabs
 * are trimmed.
 */
static int
has_token(const unsigned char *s, Py_ssize_t n, const char *token)
{
    Py_ssize_t tlen = (Py_ssize_t)strlen(token);
    Py_ssize_t i = 0;
    while (i <= n) {
        Py_ssize_t start = i;
        while (i < n && s[i] != ',') {
            i++;
        }
        Py_ssize_t a = start, b = i;
        while (a < b && (s[a] == ' ' || s[a] == '\t')) {
            a++;
        }
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) {
            b--;
        }
        if (b - a == tlen) {
            Py_ssize_t k = 0;
            while (k < tlen && ascii_lower(s[a + k]) == token[k]) {
                k++;
            }
            if (k == tlen) {
                return 1;
            }
        }
        i++; /* past the comma, or past the end */
    }
    return 0;
}

/* The bytes of a str made by PyUnicode_DecodeLatin1 (or interned from it). */
static int
latin1_view(PyObject *s, const unsigned char **data, Py_ssize_t *n)
{
    if (PyUnicode_READY(s) < 0) {
        return -1;
    }
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
        return 0;
    }
    *data = PyUnicode_1BYTE_DATA(s);
    *n = PyUnicode_GET_LENGTH(s);
    return 1;
}

/*
 * One header line, line[0:n] (without its CRLF), as ((name, value), key):
 * from shared_pairs when the line was seen before, else parsed. Returns
 * 1 and new references in *pair and *key, 0 if the line is not a
 * well-formed field line (RFC 9110 §5.1, §5.5: a token, a colon, a value
 * without CR, LF or NUL; RFC 9112 §5.2: no obsolete folding, which starts
 * with a space), -1 on error.
 */
static int
header_line(const unsigned char *line, Py_ssize_t n, PyObject *shared_values, PyObject *shared_pairs,
            PyObject **pair, PyObject **key)
{
    Py_ssize_t colon = 0;
    while (colon < n && is_tchar[line[colon]]) {
        colon++;
    }
    if (colon == 0 || colon >= n || line[colon] != ':' || colon > MAX_NAME) {
        return 0;
    }
    for (Py_ssize_t i = colon + 1; i < n; i++) {
        if (line[i] == '\r' || line[i] == '\n' || line[i] == '\0') {
            return 0;
        }
    }
    PyObject *lineBytes = PyBytes_FromStringAndSize((const char *)line, n);
    if (lineBytes == NULL) {
        return -1;
    }
    PyObject *known = PyDict_GetItemWithError(shared_pairs, lineBytes); /* borrowed */
    if (known != NULL) {
        if (!PyTuple_CheckExact(known) || PyTuple_GET_SIZE(known) != 2) {
            Py_DECREF(lineBytes);
            PyErr_SetString(PyExc_TypeError, "shared pairs must map lines to (pair, key)");
            return -1;
        }
        *pair = Py_NewRef(PyTuple_GET_ITEM(known, 0));
        *key = Py_NewRef(PyTuple_GET_ITEM(known, 1));
        Py_DECREF(lineBytes);
        return 1;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(lineBytes);
        return -1;
    }
    PyObject *name = PyUnicode_DecodeASCII((const char *)line, colon, NULL);
    if (name == NULL) {
        Py_DECREF(lineBytes);
        return -1;
    }
    PyUnicode_InternInPlace(&name);
    char lower[MAX_NAME];
    int changed = 0;
    for (Py_ssize_t i = 0; i < colon; i++) {
        lower[i] = (char)ascii_lower(line[i]);
        changed |= lower[i] != (char)line[i];
    }
    PyObject *lowered;
    if (changed) {
        lowered = PyUnicode_DecodeASCII(lower, colon, NULL);
        if (lowered == NULL) {
            Py_DECREF(name);
            Py_DECREF(lineBytes);
            return -1;
        }
        PyUnicode_InternInPlace(&lowered);
    }
    else {
        lowered = Py_NewRef(name);
    }
    /* RFC 9110 §5.5: leading and trailing whitespace is not the value. */
    Py_ssize_t a = colon + 1, b = n;
    while (a < b && (line[a] == ' ' || line[a] == '\t')) {
        a++;
    }
    while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t')) {
        b--;
    }
    PyObject *value = PyUnicode_DecodeLatin1((const char *)line + a, b - a, NULL);
    PyObject *made = NULL;
    int shared = 0;
    if (value != NULL) {
        shared = PySet_Contains(shared_values, lowered);
    }
    if (value != NULL && shared >= 0) {
        if (shared) {
            PyUnicode_InternInPlace(&value);
        }
        made = PyTuple_Pack(2, name, value);
    }
    Py_DECREF(name);
    Py_XDECREF(value);
    if (made == NULL) {
        Py_DECREF(lowered);
        Py_DECREF(lineBytes);
        return -1;
    }
    if (shared && n <= MAX_SHARED_LINE && PyDict_GET_SIZE(shared_pairs) < MAX_SHARED_PAIRS) {
        PyObject *entry = PyTuple_Pack(2, made, lowered);
        if (entry == NULL || PyDict_SetItem(shared_pairs, lineBytes, entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(made);
            Py_DECREF(lowered);
            Py_DECREF(lineBytes);
            return -1;
        }
        Py_DECREF(entry);
    }
    Py_DECREF(lineBytes);
    *pair = made;
    *key = lowered;
    return 1;
}

PyDoc_STRVAR(parse_upgrade_request_doc,
"parse_upgrade_request(head, max_headers, shared_values, shared_pairs)\n\n"
"Parse and check the usual opening request head (without its blank line):\n"
"GET of an origin-form target in HTTP/1.1, Host, Upgrade: websocket,\n"
"Connection: upgrade, a Sec-WebSocket-Key of 16 bytes in base64 and\n"
"Sec-WebSocket-Version: 13, each on one line, and no body (RFC 6455\n"
"section 4.2.1, RFC 9112). Return (method, target, headers, index, key) as\n"
"wsproto_tw.core.handshake.parse_request and validate_request make them,\n"
"or None for any other head, valid or not: those are left to them.\n"
"shared_values is the set of lower-case names whose values are interned;\n"
"shared_pairs, the dict of header lines to ((name, value), key) that\n"
"parse_request shares.");

static PyObject *
parse_upgrade_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "parse_upgrade_request() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *head = args[0];
    Py_ssize_t max_headers = PyLong_AsSsize_t(args[1]);
    if (max_headers == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *shared_values = args[2], *shared_pairs = args[3];
    if (!PyBytes_Check(head)) {
        PyErr_SetString(PyExc_TypeError, "head must be bytes");
        return NULL;
    }
    if (!PyAnySet_Check(shared_values) || !PyDict_Check(shared_pairs)) {
        PyErr_SetString(PyExc_TypeError, "shared_values must be a set and shared_pairs a dict");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(head);
    Py_ssize_t n = PyBytes_GET_SIZE(head);

    /* RFC 9112 §2.2: every line ends with CRLF; a CR or LF elsewhere is
     * left to the reference code, as is an empty line. */
    Py_ssize_t lines = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] == '\r') {
            if (i + 1 >= n || p[i + 1] != '\n') {
                Py_RETURN_NONE;
            }
            i++;
            lines++;
        }
        else if (p[i] == '\n') {
            Py_RETURN_NONE;
        }
    }
    if (lines - 1 > max_headers) {
        Py_RETURN_NONE;
    }
    const unsigned char *cr = memchr(p, '\r', (size_t)n);
    Py_ssize_t first = cr == NULL ? n : cr - p;

    /* RFC 9112 §3: "GET" SP origin-form SP "HTTP/1.1"; RFC 9112 §3.2: no
     * control character, space or fragment in the target. */
    static const char version[] = " HTTP/1.1";
    const Py_ssize_t vlen = (Py_ssize_t)sizeof(version) - 1;
    if (first < 4 + 1 + vlen || memcmp(p, "GET /", 5) != 0 ||
        memcmp(p + first - vlen, version, (size_t)vlen) != 0) {
        Py_RETURN_NONE;
    }
    const unsigned char *target = p + 4;
    Py_ssize_t target_len = first - vlen - 4;
    for (Py_ssize_t i = 0; i < target_len; i++) {
        unsigned char c = target[i];
        if (c <= 0x20 || c == 0x7f || c == '#') {
            Py_RETURN_NONE;
        }
    }

    PyObject *headers = PyTuple_New(lines - 1);
    PyObject *index = PyDict_New();
    PyObject *targetStr = NULL;
    if (headers == NULL || index == NULL) {
        goto error;
    }
    int seen_host = 0, seen_upgrade = 0, seen_connection = 0, seen_key = 0, seen_version = 0;
    Py_ssize_t count = 0;
    Py_ssize_t pos = first + 2;
    while (pos < n + 2 && count < lines - 1) {
        const unsigned char *line = p + pos;
        const unsigned char *end = memchr(line, '\r', (size_t)(n - pos));
        Py_ssize_t len = end == NULL ? n - pos : end - line;
        PyObject *pair, *key;
        int ok = header_line(line, len, shared_values, shared_pairs, &pair, &key);
        if (ok < 0) {
            goto error;
        }
        if (ok == 0) {
            goto decline;
        }
        PyTuple_SET_ITEM(headers, count, pair); /* steals pair */
        count++;
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        if (key == key_host) {
            seen_host++;
        }
        else if (key == key_upgrade) {
            seen_upgrade++;
        }
        else if (key == key_connection) {
            seen_connection++;
        }
        else if (key == key_sec_key) {
            seen_key++;
        }
        else if (key == key_sec_version) {
            seen_version++;
        }
        else if (key == key_transfer_encoding || key == key_content_length) {
            Py_DECREF(key);
            goto decline; /* RFC 9112 §6.3: a body, maybe */
        }
        /* RFC 9110 §5.3: repeated fields combine with ", ". */
        PyObject *before = PyDict_GetItemWithError(index, key); /* borrowed */
        int set;
        if (before != NULL) {
            PyObject *combined = PyUnicode_FromFormat("%U, %U", before, value);
            set = combined == NULL ? -1 : PyDict_SetItem(index, key, combined);
            Py_XDECREF(combined);
        }
        else {
            set = PyErr_Occurred() ? -1 : PyDict_SetItem(index, key, value);
        }
        Py_DECREF(key);
        if (set < 0) {
            goto error;
        }
        pos += len + 2;
    }
    if (count != lines - 1) {
        goto decline;
    }
    /* RFC 6455 §4.2.1, each of these on one line (RFC 9112 §3.2, RFC 6455
     * §11.3.1, §11.3.5): the rest is left to the reference code. */
    if (seen_host != 1 || seen_upgrade != 1 || seen_connection != 1 || seen_key != 1 || seen_version != 1) {
        goto decline;
    }
    const unsigned char *v;
    Py_ssize_t vn;
    int r;
    /* Host: not empty. */
    if ((r = latin1_view(PyDict_GetItem(index, key_host), &v, &vn)) <= 0) {
        goto decline_or_error;
    }
    if (vn == 0) {
        goto decline;
    }
    /* Upgrade: websocket; Connection: upgrade (case-insensitive tokens). */
    if ((r = latin1_view(PyDict_GetItem(index, key_upgrade), &v, &vn)) <= 0) {
        goto decline_or_error;
    }
    if (!has_token(v, vn, "websocket")) {
        goto decline;
    }
    if ((r = latin1_view(PyDict_GetItem(index, key_connection), &v, &vn)) <= 0) {
        goto decline_or_error;
    }
    if (!has_token(v, vn, "upgrade")) {
        goto decline;
    }
    /* Sec-WebSocket-Version: 13. */
    if ((r = latin1_view(PyDict_GetItem(index, key_sec_version), &v, &vn)) <= 0) {
        goto decline_or_error;
    }
    if (vn != 2 || v[0] != '1' || v[1] != '3') {
        goto decline;
    }
    /* Sec-WebSocket-Key: 16 bytes in base64 (RFC 4648 §4), so 22 digits
     * and "==". */
    PyObject *wskey = PyDict_GetItem(index, key_sec_key);
    if ((r = latin1_view(wskey, &v, &vn)) <= 0) {
        goto decline_or_error;
    }
    if (vn != 24 || v[22] != '=' || v[23] != '=') {
        goto decline;
    }
    for (Py_ssize_t i = 0; i < 22; i++) {
        if (!is_b64[v[i]]) {
            goto decline;
        }
    }
    targetStr = PyUnicode_DecodeLatin1((const char *)target, target_len, NULL);
    if (targetStr == NULL) {
        goto error;
    }
    PyObject *result = PyTuple_Pack(5, str_GET, targetStr, headers, index, wskey);
    Py_DECREF(targetStr);
    Py_DECREF(headers);
    Py_DECREF(index);
    return result;

decline_or_error:
    if (r < 0) {
        goto error;
    }
decline:
    Py_XDECREF(headers);
    Py_XDECREF(index);
    Py_RETURN_NONE;
error:
    Py_XDECREF(headers);
    Py_XDECREF(index);
    return NULL;
}

/* -- the module ----------------------------------------------------------- */

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {"parse_upgrade_request", (PyCFunction)(void (*)(void))parse_upgrade_request, METH_FASTCALL,
     parse_upgrade_request_doc},
    {"read_frame", (PyCFunction)(void (*)(void))read_frame, METH_FASTCALL, read_frame_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "wsproto_tw.core._speedups",
    "Optional C accelerator for wsproto_tw.core (masking, joining, the opening request).",
    0,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&BytesBuilder_Type) < 0 || init_request_tables() < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&BytesBuilder_Type);
    if (PyModule_AddObject(module, "BytesBuilder", (PyObject *)&BytesBuilder_Type) < 0) {
        Py_DECREF(&BytesBuilder_Type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
