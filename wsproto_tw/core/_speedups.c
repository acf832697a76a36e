/*
 * wsproto_tw.core._speedups: an optional C accelerator for the sans-I/O core.
 *
 * apply_mask(data, key) -> bytes
 *     XOR data with the 4-byte masking key repeated (RFC 6455 §5.3), eight
 *     bytes at a time. The pure-Python fallback in wsproto_tw.core.frames
 *     computes the same result; tests/core/test_speedups.py checks that they
 *     agree.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static void
mask_into(unsigned char *out, const unsigned char *in, Py_ssize_t n, const unsigned char key[4])
{
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
"apply_mask(data, key) -> bytes\n\n"
"XOR the bytes-like data with the 4-byte masking key repeated\n"
"(RFC 6455 section 5.3).");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "apply_mask() takes 2 arguments (%zd given)", nargs);
        return NULL;
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
        mask_into((unsigned char *)PyBytes_AS_STRING(result), data.buf, data.len, key.buf);
        Py_END_ALLOW_THREADS
    } else {
        mask_into((unsigned char *)PyBytes_AS_STRING(result), data.buf, data.len, key.buf);
    }
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "wsproto_tw.core._speedups",
    "Optional C accelerator for wsproto_tw.core (masking).",
    0,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
