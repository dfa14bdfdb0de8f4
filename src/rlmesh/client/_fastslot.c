/* The client's slot step, compiled: one call writes the action into the link's request slot,
 * announces it, polls for the reply and reads it (rlmesh.client.fastslot is its Python face).
 *
 * It follows the pure-Python path step for step (rlmesh.wire.slots.SlotSteps.write_request
 * and read_reply, rlmesh.transport.shmlink.ShmLink.send_written, recv and _spin) and covers
 * only its common case. Whatever else happens (a value of another layout, a peer asleep, a
 * reply that is a frame or late, a view released) returns a code, and the Python path goes
 * on from there with the same state: the link's sequence counts (its `_out_seq` and
 * `_in_seq`) and its spin policy are the Python objects' own.
 *
 * Ordering: the slot's data is written before the sequence word (a release store), the peer's
 * sleep flag is read after a full fence, and the reply's data after its sequence word (an
 * acquire load), as the protocol's section 10.2 asks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sched.h>
#include <sys/socket.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define HEAD_BYTES 16
#define FORM_ARRAY 0
#define FORM_SCALAR 1
#define FORM_INT 2
#define CHECK_NS 2000   /* polling between two yields (the Python path's 64 checks) */
#define STOLEN_NS 25000 /* rlmesh.transport.spin.STOLEN_NS */
#define MAX_DIMS 32

/* What step() returns when it does not return the reply (see the module's Python face). */
#define DECLINED 0 /* nothing written: take the Python path */
#define WAKE 1     /* announced; the peer sleeps and its wake-up byte did not go: send it */
#define RECEIVE 2  /* announced; receive the reply on the Python path */
#define ASLEEP 3   /* announced; the poll missed: sleep for the reply (from spun_from) */

typedef struct {
    PyObject_HEAD
    Py_buffer ctl, out, in;
    int held;
    Py_ssize_t out_word, in_word, peer_sleep;
    uint32_t kind;
    PyObject *link;     /* the ShmLink: its _out_seq and _in_seq */
    PyObject *fileno;   /* its socket's bound fileno (wake-up bytes) */
    unsigned long long wakes;  /* wake-up bytes sent here */
    PyObject *policy;   /* its SpinPolicy */
    PyObject *start, *missed, *stolen_yield;  /* the policy's bound methods */
    PyObject *ndarray;  /* numpy.ndarray */
    PyObject *scalar_type;  /* the Discrete action's NumPy scalar type, or None */
    int ints;
    int one;
    int action_ndim;
    Py_ssize_t action_shape[MAX_DIMS];
    Py_ssize_t action_nbytes, action_itemsize;
    char action_format[16];
    Py_ssize_t tail;    /* where a reply's values after the observation start */
    PyObject *copies[4];  /* bound `copy` of the reply views: obs (and rewards, flags) */
    long long spun_from;
} FastSlot;

static PyObject *s_out_seq, *s_in_seq, *s_stolen, *zero;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline uint32_t load_word(FastSlot *self, Py_ssize_t word) {
    return __atomic_load_n((uint32_t *)self->ctl.buf + word, __ATOMIC_ACQUIRE);
}

static void drop(FastSlot *self) {
    if (self->held) {
        PyBuffer_Release(&self->ctl);
        PyBuffer_Release(&self->out);
        PyBuffer_Release(&self->in);
        self->held = 0;
    }
    Py_CLEAR(self->link);
    Py_CLEAR(self->fileno);
    Py_CLEAR(self->policy);
    Py_CLEAR(self->start);
    Py_CLEAR(self->missed);
    Py_CLEAR(self->stolen_yield);
    Py_CLEAR(self->ndarray);
    Py_CLEAR(self->scalar_type);
    for (int i = 0; i < 4; i++) Py_CLEAR(self->copies[i]);
}

static void fast_dealloc(FastSlot *self) {
    drop(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
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

/* FastSlot(link, policy, ctl, out, in, out_word, in_word, peer_sleep, kind, ndarray,
 *          out_action, scalar_type, ints, tail, replies)
 * replies: the reply slot's views, (obs,) for one env or (obs, rewards, terminated,
 * truncated) for a vector env. */
static int fast_init(FastSlot *self, PyObject *args, PyObject *kwds) {
    PyObject *link, *policy, *ctl, *out, *in, *ndarray, *out_action, *scalar_type, *replies;
    Py_ssize_t out_word, in_word, peer_sleep, tail;
    unsigned int kind;
    int ints;
    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "FastSlot takes no keyword arguments");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "OOOOOnnnIOOOpnO!", &link, &policy, &ctl, &out, &in,
                          &out_word, &in_word, &peer_sleep, &kind, &ndarray, &out_action,
                          &scalar_type, &ints, &tail, &PyTuple_Type, &replies))
        return -1;
    drop(self);
    Py_ssize_t n = PyTuple_GET_SIZE(replies);
    if (n != 1 && n != 4) {
        PyErr_SetString(PyExc_ValueError, "replies: one view, or four for a vector env");
        return -1;
    }
    if (PyObject_GetBuffer(ctl, &self->ctl, PyBUF_WRITABLE) < 0) return -1;
    if (PyObject_GetBuffer(out, &self->out, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&self->ctl);
        return -1;
    }
    if (PyObject_GetBuffer(in, &self->in, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&self->ctl);
        PyBuffer_Release(&self->out);
        return -1;
    }
    self->held = 1;
    Py_ssize_t words = self->ctl.len / 4;
    if (out_word < 0 || in_word < 0 || peer_sleep < 0 || out_word >= words
            || in_word >= words || peer_sleep >= words || tail < HEAD_BYTES
            || tail + 10 > self->in.len) {
        drop(self);
        PyErr_SetString(PyExc_ValueError, "a control word or the reply's tail is out of range");
        return -1;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(out_action, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        drop(self);
        return -1;
    }
    int fits = view.ndim <= MAX_DIMS && view.format != NULL
        && strlen(view.format) < sizeof(self->action_format)
        && HEAD_BYTES + (view.len > 8 ? view.len : 8) <= self->out.len;
    if (fits) {
        self->action_ndim = view.ndim;
        for (int i = 0; i < view.ndim; i++) self->action_shape[i] = view.shape[i];
        self->action_nbytes = view.len;
        self->action_itemsize = view.itemsize;
        strcpy(self->action_format, view.format);
    }
    PyBuffer_Release(&view);
    if (!fits) {
        drop(self);
        PyErr_SetString(PyExc_ValueError, "the action's view does not fit the request slot");
        return -1;
    }
    self->out_word = out_word;
    self->in_word = in_word;
    self->peer_sleep = peer_sleep;
    self->kind = kind;
    self->ints = ints;
    self->one = n == 1;
    self->tail = tail;
    self->spun_from = 0;
    self->wakes = 0;
    Py_INCREF(link);
    self->link = link;
    PyObject *sock = PyObject_GetAttrString(link, "sock");
    if (sock == NULL) {
        drop(self);
        return -1;
    }
    self->fileno = bound(sock, "fileno");
    Py_DECREF(sock);
    if (self->fileno == NULL) {
        drop(self);
        return -1;
    }
    Py_INCREF(policy);
    self->policy = policy;
    Py_INCREF(ndarray);
    self->ndarray = ndarray;
    Py_INCREF(scalar_type);
    self->scalar_type = scalar_type;
    if ((self->start = bound(policy, "start")) == NULL
            || (self->missed = bound(policy, "missed")) == NULL
            || (self->stolen_yield = bound(policy, "stolen_yield")) == NULL) {
        drop(self);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((self->copies[i] = bound(PyTuple_GET_ITEM(replies, i), "copy")) == NULL) {
            drop(self);
            return -1;
        }
    }
    return 0;
}

/* The action into the request slot and the header; 0: not of the layout (nothing written). */
static int write_request(FastSlot *self, unsigned long long rid, PyObject *action) {
    char *out = (char *)self->out.buf;
    uint32_t form;
    PyTypeObject *type = Py_TYPE(action);
    if ((PyObject *)type == self->ndarray) {
        Py_buffer b;
        if (PyObject_GetBuffer(action, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear();  /* (not C-contiguous: the Python path copies it) */
            return 0;
        }
        int same = b.ndim == self->action_ndim && b.len == self->action_nbytes
            && b.itemsize == self->action_itemsize && b.format != NULL
            && strcmp(b.format, self->action_format) == 0;
        for (int i = 0; same && i < b.ndim; i++) same = b.shape[i] == self->action_shape[i];
        if (same) memcpy(out + HEAD_BYTES, b.buf, (size_t)b.len);
        PyBuffer_Release(&b);
        if (!same) return 0;
        form = FORM_ARRAY;
    } else if (type == &PyLong_Type && self->ints) {
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(action, &overflow);
        if (overflow || (value == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0;
        }
        memcpy(out + HEAD_BYTES, &value, 8);
        form = FORM_INT;
    } else if ((PyObject *)type == self->scalar_type) {
        Py_buffer b;
        if (PyObject_GetBuffer(action, &b, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            return 0;
        }
        int same = b.len == self->action_itemsize;
        if (same) memcpy(out + HEAD_BYTES, b.buf, (size_t)b.len);
        PyBuffer_Release(&b);
        if (!same) return 0;
        form = FORM_SCALAR;
    } else {
        return 0;
    }
    uint64_t id = rid;
    memcpy(out, &self->kind, 4);
    memcpy(out + 4, &form, 4);
    memcpy(out + 8, &id, 8);
    return 1;
}

/* A sequence count of the link (its _out_seq or _in_seq), or -1 with an exception set. */
static long long get_seq(FastSlot *self, PyObject *name) {
    PyObject *value = PyObject_GetAttr(self->link, name);
    if (value == NULL) return -1;
    unsigned long seq = PyLong_AsUnsignedLong(value);
    Py_DECREF(value);
    if (seq == (unsigned long)-1 && PyErr_Occurred()) return -1;
    return (long long)(seq & 0xFFFFFFFFUL);
}

static int set_seq(FastSlot *self, PyObject *name, uint32_t seq) {
    PyObject *value = PyLong_FromUnsignedLong(seq);
    if (value == NULL) return -1;
    int failed = PyObject_SetAttr(self->link, name, value);
    Py_DECREF(value);
    return failed;
}

/* Poll the reply's sequence word for up to `budget` ns (ShmLink._spin): 1 it came, 0 not,
 * -1 an exception. */
static int poll_reply(FastSlot *self, uint32_t want, long long budget) {
    long long start = now_ns(), mark = start;
    for (;;) {
        long long until = mark + CHECK_NS;
        for (;;) {
            for (int i = 0; i < 32; i++) {
                if (load_word(self, self->in_word) == want) {
                    return PyObject_SetAttr(self->policy, s_stolen, zero) < 0 ? -1 : 1;
                }
                CPU_RELAX();
            }
            if (now_ns() > until) break;
        }
        Py_BEGIN_ALLOW_THREADS  /* (as os.sched_yield: a server thread of this process runs) */
        sched_yield();
        Py_END_ALLOW_THREADS
        long long now = now_ns();
        if (now - mark > STOLEN_NS) {
            PyObject *stop = PyObject_CallNoArgs(self->stolen_yield);
            if (stop == NULL) return -1;
            int truth = PyObject_IsTrue(stop);
            Py_DECREF(stop);
            if (truth < 0) return -1;
            if (truth) return load_word(self, self->in_word) == want;
        }
        if (now - start > budget) {
            PyObject *done = PyObject_CallNoArgs(self->missed);
            if (done == NULL) return -1;
            Py_DECREF(done);
            return 0;
        }
        mark = now;
    }
}

/* Send the sleeping peer its wake-up byte without blocking (ShmLink.wake_peer): 1 sent,
 * 0 not (nothing sent: the Python path sends it), -1 an exception. */
static int wake_peer(FastSlot *self) {
    PyObject *got = PyObject_CallNoArgs(self->fileno);
    if (got == NULL) return -1;
    long fd = PyLong_AsLong(got);
    Py_DECREF(got);
    if (fd == -1 && PyErr_Occurred()) return -1;
    if (fd < 0) return 0;
    if (send((int)fd, "W", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) return 0;
    self->wakes++;
    return 1;
}

static PyObject *read_reply(FastSlot *self, PyObject *rid) {
    const char *in = (const char *)self->in.buf;
    PyObject *reply = PyList_New(7);
    if (reply == NULL) return NULL;
    Py_INCREF(zero);
    PyList_SET_ITEM(reply, 0, zero);
    Py_INCREF(rid);
    PyList_SET_ITEM(reply, 1, rid);
    PyObject *item;
    if (self->one) {
        double reward;
        memcpy(&reward, in + self->tail, 8);
        if ((item = PyObject_CallNoArgs(self->copies[0])) == NULL) goto fail;
        PyList_SET_ITEM(reply, 2, item);
        if ((item = PyFloat_FromDouble(reward)) == NULL) goto fail;
        PyList_SET_ITEM(reply, 3, item);
        PyList_SET_ITEM(reply, 4, PyBool_FromLong(in[self->tail + 8] != 0));
        PyList_SET_ITEM(reply, 5, PyBool_FromLong(in[self->tail + 9] != 0));
    } else {
        for (int i = 0; i < 4; i++) {
            if ((item = PyObject_CallNoArgs(self->copies[i])) == NULL) goto fail;
            PyList_SET_ITEM(reply, 2 + i, item);
        }
    }
    if ((item = PyDict_New()) == NULL) goto fail;
    PyList_SET_ITEM(reply, 6, item);
    return reply;
fail:
    Py_DECREF(reply);
    return NULL;
}

static PyObject *fast_step(FastSlot *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "step(rid, action)");
        return NULL;
    }
    PyObject *rid = args[0];
    if (!self->held || !PyLong_CheckExact(rid)) return PyLong_FromLong(DECLINED);
    unsigned long long id = PyLong_AsUnsignedLongLong(rid);
    if (id == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return PyLong_FromLong(DECLINED);
    }
    long long out_seq = get_seq(self, s_out_seq);
    if (out_seq < 0) return NULL;
    long long in_seq = get_seq(self, s_in_seq);
    if (in_seq < 0) return NULL;
    if (!write_request(self, id, args[1])) return PyLong_FromLong(DECLINED);
    /* announced: from here on the Python path can only go on, never start over */
    uint32_t seq = (uint32_t)(out_seq + 1);
    if (set_seq(self, s_out_seq, seq) < 0) return NULL;
    uint32_t *ctl = (uint32_t *)self->ctl.buf;
    __atomic_store_n(ctl + self->out_word, seq, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (load_word(self, self->peer_sleep) != 0) {
        int woke = wake_peer(self);
        if (woke < 0) return NULL;
        if (!woke) return PyLong_FromLong(WAKE);
    }
    uint32_t want = (uint32_t)(in_seq + 1);
    if (load_word(self, self->in_word) != want) {
        long long started = now_ns();
        PyObject *got = PyObject_CallNoArgs(self->start);
        if (got == NULL) return NULL;
        long long budget = PyLong_AsLongLong(got);
        Py_DECREF(got);
        if (budget == -1 && PyErr_Occurred()) return NULL;
        int came = budget > 0 ? poll_reply(self, want, budget) : 0;
        if (came < 0) return NULL;
        if (!came) {
            self->spun_from = started;
            return PyLong_FromLong(ASLEEP);
        }
    }
    const char *in = (const char *)self->in.buf;
    uint32_t kind;
    uint64_t got_rid;
    memcpy(&kind, in, 4);
    memcpy(&got_rid, in + 8, 8);
    if (kind != self->kind || got_rid != id) return PyLong_FromLong(RECEIVE);
    PyObject *reply = read_reply(self, rid);
    if (reply == NULL) return NULL;
    if (set_seq(self, s_in_seq, want) < 0) {
        Py_DECREF(reply);
        return NULL;
    }
    return reply;
}

static PyObject *fast_release(FastSlot *self, PyObject *unused) {
    drop(self);
    Py_RETURN_NONE;
}

static PyObject *get_spun_from(FastSlot *self, void *closure) {
    return PyLong_FromLongLong(self->spun_from);
}

static PyObject *get_wakes(FastSlot *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->wakes);
}

static PyObject *get_held(FastSlot *self, void *closure) {
    return PyBool_FromLong(self->held);
}

static PyMethodDef fast_methods[] = {
    {"step", (PyCFunction)(void (*)(void))fast_step, METH_FASTCALL,
     "step(rid, action): the reply list, or a code (0 declined, 1 wake, 2 receive, 3 asleep)."},
    {"release", (PyCFunction)fast_release, METH_NOARGS,
     "Drop every view of the slots (the region may then close). Idempotent."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef fast_getset[] = {
    {"spun_from", (getter)get_spun_from, NULL,
     "When the last poll that missed started (time.perf_counter_ns's clock).", NULL},
    {"held", (getter)get_held, NULL, "Whether the slots' views are held.", NULL},
    {"wakes", (getter)get_wakes, NULL, "Wake-up bytes this step sent to a sleeping peer.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FastSlotType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rlmesh.client._fastslot.FastSlot",
    .tp_basicsize = sizeof(FastSlot),
    .tp_dealloc = (destructor)fast_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The client's slot step over one link, compiled (see the module).",
    .tp_methods = fast_methods,
    .tp_getset = fast_getset,
    .tp_init = (initproc)fast_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef fastslot_module = {
    PyModuleDef_HEAD_INIT, "_fastslot",
    "The client's slot step, compiled (rlmesh.client.fastslot is its Python face).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastslot(void) {
    if (PyType_Ready(&FastSlotType) < 0) return NULL;
    s_out_seq = PyUnicode_InternFromString("_out_seq");
    s_in_seq = PyUnicode_InternFromString("_in_seq");
    s_stolen = PyUnicode_InternFromString("stolen");
    zero = PyLong_FromLong(0);
    if (s_out_seq == NULL || s_in_seq == NULL || s_stolen == NULL || zero == NULL) return NULL;
    PyObject *module = PyModule_Create(&fastslot_module);
    if (module == NULL) return NULL;
    Py_INCREF(&FastSlotType);
    if (PyModule_AddObject(module, "FastSlot", (PyObject *)&FastSlotType) < 0) {
        Py_DECREF(&FastSlotType);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "DECLINED", DECLINED) < 0
            || PyModule_AddIntConstant(module, "WAKE", WAKE) < 0
            || PyModule_AddIntConstant(module, "RECEIVE", RECEIVE) < 0
            || PyModule_AddIntConstant(module, "ASLEEP", ASLEEP) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
