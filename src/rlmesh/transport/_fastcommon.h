/* What the two compiled step modules share (_fastslots.c, _fastframes.c): the polling
 * constants, the codes handed to the Python path, array layouts and small helpers.
 *
 * Each module includes this file once; everything here is static to it.
 */
#ifndef RLMESH_FASTCOMMON_H
#define RLMESH_FASTCOMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define STOLEN_NS 25000 /* rlmesh.transport.spin.STOLEN_NS */
#define EARLY_NS 10000  /* rlmesh.transport.spin.EARLY_NS */
#define MAX_DIMS 32

/* What a call hands to the Python path (rlmesh.transport.fastslots and
 * rlmesh.transport.fastframes explain each). */
#define DECLINED 0 /* nothing written, nothing read */
#define DONE 1     /* (put, post) written and announced */
#define WAKE 2     /* announced; the peer sleeps and its wake-up byte did not go out */
#define RECEIVE 3  /* the peer's slot holds something else: receive it on the Python path */
#define ASLEEP 4   /* the poll missed: sleep for the peer (its poll started at spun_from) */

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static PyObject *bound(PyObject *owner, const char *name) {
    PyObject *method = PyObject_GetAttrString(owner, name);
    if (method != NULL && !PyCallable_Check(method)) {
        Py_DECREF(method);
        PyErr_Format(PyExc_TypeError, "%s is not callable", name);
        return NULL;
    }
    return method;
}

/* -- the layout of one array ----------------------------------------------------------- */

typedef struct {
    int ndim;
    Py_ssize_t shape[MAX_DIMS];
    Py_ssize_t nbytes, itemsize;
    char format[16];  /* as format_class() reads it */
} Layout;

/* A buffer format in one spelling: the machine's byte order and sizes are this build's
 * (x86-64), so '@', '=' and '<' mean the same, and a one-letter integer or float format is
 * its class ('i' signed, 'u' unsigned, 'f' float, '?' bool), which the item size completes.
 * Anything else is kept as it is (and matches only itself). 0 when it does not fit. */
static int format_class(const char *format, char *into, size_t room) {
    if (format == NULL) format = "B";
    if (*format == '@' || *format == '=' || *format == '<') format++;
    if (strlen(format) + 1 > room) return 0;
    if (format[0] != '\0' && format[1] == '\0') {
        const char *kind = strchr("bhilqn", format[0]) ? "i"
            : strchr("BHILQN", format[0]) ? "u" : strchr("efd", format[0]) ? "f"
            : format[0] == '?' ? "?" : format;
        strcpy(into, kind);
        return 1;
    }
    strcpy(into, format);
    return 1;
}

/* The layout of `view` (a NumPy array), or -1 with an exception set. */
static int layout_of(Layout *layout, PyObject *view) {
    Py_buffer b;
    if (PyObject_GetBuffer(view, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    int fits = b.ndim <= MAX_DIMS && b.format != NULL
        && format_class(b.format, layout->format, sizeof(layout->format));
    if (fits) {
        layout->ndim = b.ndim;
        for (int i = 0; i < b.ndim; i++) layout->shape[i] = b.shape[i];
        layout->nbytes = b.len;
        layout->itemsize = b.itemsize;
    }
    PyBuffer_Release(&b);
    if (!fits) PyErr_SetString(PyExc_ValueError, "a view of a layout this step does not cover");
    return fits ? 0 : -1;
}

/* Hold `value`'s bytes in `b` if it is an exact `ndarray` of `layout`, C-contiguous: 1 held
 * (release `b` after), 0 not of the layout (nothing held, no exception). */
static int hold_array(PyObject *ndarray, const Layout *layout, PyObject *value, Py_buffer *b) {
    if ((PyObject *)Py_TYPE(value) != ndarray) return 0;
    if (PyObject_GetBuffer(value, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();  /* (not C-contiguous: the Python path copies it) */
        return 0;
    }
    char format[16];
    int same = b->ndim == layout->ndim && b->len == layout->nbytes
        && b->itemsize == layout->itemsize && b->format != NULL
        && format_class(b->format, format, sizeof(format))
        && strcmp(format, layout->format) == 0;
    for (int i = 0; same && i < b->ndim; i++) same = b->shape[i] == layout->shape[i];
    if (!same) PyBuffer_Release(b);
    return same;
}

/* Copy `value` (an exact `ndarray` of `layout`, C-contiguous) to `dest`: 1 copied, 0 not of
 * the layout (nothing copied). */
static int copy_array(PyObject *ndarray, const Layout *layout, PyObject *value, char *dest) {
    Py_buffer b;
    if (!hold_array(ndarray, layout, value, &b)) return 0;
    memcpy(dest, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    return 1;
}

/* A request id as a u64: 1, or 0 for anything else (no exception). */
static int rid_of(PyObject *rid, uint64_t *id) {
    if (!PyLong_CheckExact(rid)) return 0;
    unsigned long long value = PyLong_AsUnsignedLongLong(rid);
    if (value == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *id = value;
    return 1;
}

static PyObject *code(int value) {
    return PyLong_FromLong(value);
}

static int no_keywords(PyObject *kwds, const char *type) {
    if (kwds == NULL || PyDict_GET_SIZE(kwds) == 0) return 0;
    PyErr_Format(PyExc_TypeError, "%s takes no keyword arguments", type);
    return -1;
}

/* The spin policy's constants mirrored here, as module constants (a test compares them). */
static int add_policy_constants(PyObject *module) {
    return PyModule_AddIntConstant(module, "STOLEN_NS", STOLEN_NS) < 0
        || PyModule_AddIntConstant(module, "EARLY_NS", EARLY_NS) < 0 ? -1 : 0;
}

static int add_type(PyObject *module, const char *name, PyTypeObject *type) {
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

/* -- polling ---------------------------------------------------------------------------- */

#define POLL_ON 0      /* keep polling */
#define POLL_MISSED 1  /* the budget is spent (the policy's missed() was called) */
#define POLL_STOLEN 2  /* a yield gave the CPU away and the policy says block */

/* Whether what a poll waits for has come (`ctx` is the poll's own): asked only after a long
 * yield late in a poll, before any Python code runs. (tests/transport/test_spin.py tests
 * the same rules in the Python poll loops, with a fake clock.) */
typedef int (*came_fn)(const void *ctx);

/* What the spin policy says after a yield of a poll that began at `started`, the last yield
 * at *mark (rlmesh.transport.spin): POLL_ON, POLL_MISSED, POLL_STOLEN, or -1 with an
 * exception. Calls the policy's stolen_yield (for a long yield early in the poll, or later
 * if what the poll waits for came during it) or missed as the Python poll loops do. Both
 * are held for the call: the Python code it runs may release the side that owns them. */
static int poll_verdict(PyObject *stolen_yield, PyObject *missed, long long started,
                        long long *mark, long long budget, came_fn came, const void *ctx) {
    long long now = now_ns();
    int verdict = POLL_ON;
    Py_INCREF(stolen_yield);
    Py_INCREF(missed);
    if (now - *mark > STOLEN_NS && (*mark - started <= EARLY_NS || came(ctx))) {
        PyObject *stop = PyObject_CallNoArgs(stolen_yield);
        int truth = stop == NULL ? -1 : PyObject_IsTrue(stop);
        Py_XDECREF(stop);
        if (truth) verdict = truth < 0 ? -1 : POLL_STOLEN;
    }
    if (verdict == POLL_ON && now - started > budget) {
        PyObject *done = PyObject_CallNoArgs(missed);
        verdict = done == NULL ? -1 : POLL_MISSED;
        Py_XDECREF(done);
    }
    if (verdict == POLL_ON) *mark = now;
    Py_DECREF(stolen_yield);
    Py_DECREF(missed);
    return verdict;
}

/* The NumPy scalar type of a one-item array's item (a new reference), or NULL with an
 * exception, also for an item that is a Python float (that is no NumPy scalar's form). */
static PyObject *scalar_type_of(PyObject *scratch) {
    PyObject *item = PySequence_GetItem(scratch, 0);
    if (item == NULL) return NULL;
    PyObject *type = (PyObject *)Py_TYPE(item);
    int exact = PyFloat_CheckExact(item);
    Py_INCREF(type);
    Py_DECREF(item);
    if (exact) {
        Py_DECREF(type);
        PyErr_SetString(PyExc_TypeError, "a reward field holds NumPy scalars");
        return NULL;
    }
    return type;
}

/* -- types ------------------------------------------------------------------------------ */

/* Refuses to initialise an object twice (a step of the first may be waiting, the GIL
 * released, on what a second would free): 0, or -1 with TypeError. */
static int first_init(int initialised, const char *type) {
    if (!initialised) return 0;
    PyErr_Format(PyExc_TypeError, "%s is already initialised", type);
    return -1;
}

/* Freeing and clearing (the cycle collector) of a GC-tracked type whose NAME##_drop, defined
 * before, lets go of everything it holds. */
#define GC_FREE(NAME, TYPE)                                                                 \
    static void NAME##_dealloc(TYPE *self) {                                                \
        PyObject_GC_UnTrack(self);                                                          \
        NAME##_drop(self);                                                                  \
        Py_TYPE(self)->tp_free((PyObject *)self);                                           \
    }                                                                                       \
    static int NAME##_clear(TYPE *self) {                                                   \
        NAME##_drop(self);                                                                  \
        return 0;                                                                           \
    }

/* The type object of TYPE in the module MODULE (a string): GC-tracked, with NAME##_dealloc
 * and _clear (GC_FREE), NAME##_traverse, _init and _methods, and GETSET (or NULL). */
#define GC_TYPE(MODULE, NAME, TYPE, DOC, GETSET)                                            \
    static PyTypeObject TYPE##Type = {                                                      \
        PyVarObject_HEAD_INIT(NULL, 0)                                                      \
        .tp_name = "rlmesh.transport." MODULE "." #TYPE,                                    \
        .tp_basicsize = sizeof(TYPE),                                                       \
        .tp_dealloc = (destructor)NAME##_dealloc,                                           \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,                                \
        .tp_traverse = (traverseproc)NAME##_traverse,                                       \
        .tp_clear = (inquiry)NAME##_clear,                                                  \
        .tp_doc = DOC,                                                                      \
        .tp_methods = NAME##_methods,                                                       \
        .tp_getset = GETSET,                                                                \
        .tp_init = (initproc)NAME##_init,                                                   \
        .tp_new = PyType_GenericNew,                                                        \
    }

#endif  /* RLMESH_FASTCOMMON_H */
