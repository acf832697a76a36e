/*
 * wsproto_tw._sockets: the optional C half of wsproto_tw.wire.sendEach,
 * a broadcast's sends. The pure-Python function in wsproto_tw/wire.py is
 * the reference; this one must behave the same.
 *
 * It belongs to the Twisted layer, not to the sans-I/O core: it makes
 * system calls on sockets it is handed, and knows nothing of WebSocket.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

PyDoc_STRVAR(sendEach_doc,
"sendEach(fds, data) -> list\n"
"\n"
"Send data on each socket in fds (a list of file descriptors of open,\n"
"non-blocking sockets), one send() call each, with the GIL released once\n"
"for them all. An error, or a full socket, counts as nothing sent; a\n"
"negative descriptor is sent nothing.\n"
"\n"
"Returns [(index, sent), ...] for the sockets that did not take all of\n"
"data, in order: sent is how many of its first bytes they took.");

static PyObject *
sendEach(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *fdList, *data, *result = NULL;
    Py_ssize_t count, length, i;
    const char *buffer;
    int *fds = NULL;
    Py_ssize_t *sent = NULL;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "sendEach() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    fdList = args[0];
    data = args[1];
    if (!PyList_CheckExact(fdList)) {
        PyErr_Format(PyExc_TypeError, "sendEach() takes a list of file descriptors, not %.100s",
                     Py_TYPE(fdList)->tp_name);
        return NULL;
    }
    if (!PyBytes_CheckExact(data)) {
        PyErr_Format(PyExc_TypeError, "sendEach() sends bytes, not %.100s", Py_TYPE(data)->tp_name);
        return NULL;
    }
    count = PyList_GET_SIZE(fdList);
    buffer = PyBytes_AS_STRING(data);
    length = PyBytes_GET_SIZE(data);
    if (count == 0) {
        return PyList_New(0);
    }
    fds = PyMem_Malloc(count * sizeof(int));
    sent = PyMem_Malloc(count * sizeof(Py_ssize_t));
    if (fds == NULL || sent == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(fdList, i);
        long fd;
        if (!PyLong_CheckExact(item)) {
            PyErr_Format(PyExc_TypeError, "a file descriptor is an int, not %.100s", Py_TYPE(item)->tp_name);
            goto done;
        }
        fd = PyLong_AsLong(item);  /* no Python code runs: the list stays as it is */
        if (fd == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (fd > INT_MAX || fd < INT_MIN) {
            PyErr_SetString(PyExc_OverflowError, "file descriptor out of range");
            goto done;
        }
        fds[i] = (int)fd;
    }
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < count; i++) {
        ssize_t n = 0;
        if (fds[i] >= 0) {
            do {
                n = send(fds[i], buffer, (size_t)length, MSG_NOSIGNAL);
            } while (n < 0 && errno == EINTR);
        }
        sent[i] = n < 0 ? 0 : (Py_ssize_t)n;
    }
    Py_END_ALLOW_THREADS
    result = PyList_New(0);
    if (result == NULL) {
        goto done;
    }
    for (i = 0; i < count; i++) {
        PyObject *entry;
        if (sent[i] == length) {
            continue;
        }
        entry = Py_BuildValue("(nn)", i, sent[i]);
        if (entry == NULL || PyList_Append(result, entry) < 0) {
            Py_XDECREF(entry);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(entry);
    }
done:
    PyMem_Free(fds);
    PyMem_Free(sent);
    return result;
}

static PyMethodDef sockets_methods[] = {
    {"sendEach", (PyCFunction)(void (*)(void))sendEach, METH_FASTCALL, sendEach_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef sockets_module = {
    PyModuleDef_HEAD_INIT,
    "wsproto_tw._sockets",
    "The optional C half of wsproto_tw.wire's sends to many sockets.",
    -1,
    sockets_methods,
};

PyMODINIT_FUNC
PyInit__sockets(void)
{
    return PyModule_Create(&sockets_module);
}
