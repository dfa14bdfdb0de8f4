/* A server's step in one call: serve(env, check, bounds) takes a step's request (take),
 * checks its action, calls env.step and answers the results (put), for both compiled
 * servers (ServerSteps over a link's slots, ServerFrames over a socket).
 *
 * Each module includes this file once, after its server type's take and put; everything
 * here is static to it. What serve cannot finish it hands to the Python path, which goes
 * on from where it stopped (rlmesh.server.served_step):
 *
 *   a code            DONE (answered), WAKE (answered; the sleeping client's wake-up byte
 *                     did not go out), or take's RECEIVE or ASLEEP (nothing taken);
 *   (rid, action)     taken, but its action was refused: not stepped, not answered;
 *   (rid, action, result)
 *                     stepped, not answered (results of another layout or kind);
 *   an exception      the env's step raised (`failed` is then its request id), or
 *                     anything else did (`failed` is None).
 */
#ifndef RLMESH__SERVE_STEP_H
#define RLMESH__SERVE_STEP_H

/* A server's serving state (a member `serving` of its type). */
typedef struct {
    int stepping;  /* whether its env's step runs now (a drain lets the reply out) */
    int failed;    /* whether the last serve's env step raised */
    uint64_t rid;  /* that step's request id */
} Serving;

static PyObject *s_step;  /* "step", interned (the module's init) */

typedef PyObject *(*put_fn)(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* Whether `action` is within bounds (lo, hi, shape, types): every item an int in
 * [lo, hi). A Python int (of a shape ()) or an exact one of `types` whose buffer holds
 * C-contiguous 8-byte signed ints of `shape` is judged here: 1 within, 0 not; 2 for
 * anything else (the check decides). -1 with an exception. */
static int within(PyObject *action, PyObject *bounds) {
    if (!PyTuple_CheckExact(bounds) || PyTuple_GET_SIZE(bounds) != 4
            || !PyTuple_CheckExact(PyTuple_GET_ITEM(bounds, 2))
            || !PyTuple_CheckExact(PyTuple_GET_ITEM(bounds, 3))) {
        PyErr_SetString(PyExc_TypeError, "bounds: (low, high, shape, types) or None");
        return -1;
    }
    long long lo = PyLong_AsLongLong(PyTuple_GET_ITEM(bounds, 0));
    if (lo == -1 && PyErr_Occurred()) return -1;
    long long hi = PyLong_AsLongLong(PyTuple_GET_ITEM(bounds, 1));
    if (hi == -1 && PyErr_Occurred()) return -1;
    PyObject *shape = PyTuple_GET_ITEM(bounds, 2), *types = PyTuple_GET_ITEM(bounds, 3);
    Py_ssize_t ndim = PyTuple_GET_SIZE(shape);
    if (PyLong_CheckExact(action)) {
        if (ndim != 0) return 2;
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(action, &overflow);
        if (value == -1 && PyErr_Occurred()) return -1;
        return !overflow && lo <= value && value < hi;
    }
    int listed = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(types); i++)
        listed |= (PyObject *)Py_TYPE(action) == PyTuple_GET_ITEM(types, i);
    Py_buffer b;
    if (!listed || PyObject_GetBuffer(action, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return 2;
    }
    char format[16];
    int judged = b.ndim == ndim && b.itemsize == 8 && b.format != NULL
        && format_class(b.format, format, sizeof(format)) && strcmp(format, "i") == 0;
    for (Py_ssize_t i = 0; judged && i < ndim; i++) {
        Py_ssize_t size = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, i));
        if (size == -1 && PyErr_Occurred()) {
            PyBuffer_Release(&b);
            return -1;
        }
        judged = b.shape[i] == size;
    }
    int inside = 1;
    if (judged) {
        const char *at = (const char *)b.buf;
        for (Py_ssize_t i = 0; i < b.len / 8; i++) {
            long long value;
            memcpy(&value, at + 8 * i, 8);
            inside &= lo <= value && value < hi;
        }
    }
    PyBuffer_Release(&b);
    return judged ? inside : 2;
}

/* Whether `action` passes: within `bounds` (if not None), else as `check` says (None: every
 * action passes). 1 passes, 0 refused, -1 with an exception. */
static int action_passes(PyObject *action, PyObject *check, PyObject *bounds) {
    if (bounds != Py_None) {
        int judged = within(action, bounds);
        if (judged != 2) return judged;
    }
    if (check == Py_None) return 1;
    PyObject *verdict = PyObject_CallOneArg(check, action);
    if (verdict == NULL) return -1;
    int truth = PyObject_IsTrue(verdict);
    Py_DECREF(verdict);
    return truth;
}

/* The rest of serve once `taken` (rid, action) came: check, step, answer (see the top).
 * Steals `taken`. */
static PyObject *serve_taken(PyObject *self, Serving *serving, put_fn put, PyObject *taken,
                             PyObject *env, PyObject *check, PyObject *bounds) {
    PyObject *rid = PyTuple_GET_ITEM(taken, 0), *action = PyTuple_GET_ITEM(taken, 1);
    uint64_t id;
    int passes = rid_of(rid, &id) ? action_passes(action, check, bounds) : -1;
    if (passes <= 0) {
        if (passes == 0) return taken;
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a request id is a u64");
        Py_DECREF(taken);
        return NULL;
    }
    serving->stepping = 1;
    PyObject *result = PyObject_CallMethodOneArg(env, s_step, action);
    serving->stepping = 0;
    if (result == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            serving->failed = 1;
            serving->rid = id;
        }
        Py_DECREF(taken);
        return NULL;
    }
    if (PyTuple_CheckExact(result) && PyTuple_GET_SIZE(result) == 5) {
        PyObject *args[6] = {rid};
        for (int i = 0; i < 5; i++) args[1 + i] = PyTuple_GET_ITEM(result, i);
        PyObject *sent = put(self, args, 6);
        long done = sent == NULL ? -1 : PyLong_AsLong(sent);
        if (done != DECLINED) {  /* (DONE, WAKE, or an exception) */
            Py_DECREF(result);
            Py_DECREF(taken);
            return sent;
        }
        Py_DECREF(sent);
    }
    PyObject *stepped = PyTuple_Pack(3, rid, action, result);
    Py_DECREF(result);
    Py_DECREF(taken);
    return stepped;
}

/* NAME##_serve(env, check, bounds) for TYPE, whose NAME##_take and NAME##_put come before,
 * and the getters of its `serving` (add SERVING_GETSET(TYPE) to its getset). */
#define SERVE_METHOD(NAME, TYPE)                                                            \
    static PyObject *NAME##_serve(TYPE *self, PyObject *const *args, Py_ssize_t nargs) {    \
        if (nargs != 3) {                                                                   \
            PyErr_SetString(PyExc_TypeError, "serve(env, check, bounds)");                 \
            return NULL;                                                                    \
        }                                                                                   \
        self->serving.failed = 0;                                                           \
        PyObject *taken = NAME##_take(self, NULL);                                          \
        if (taken == NULL || !PyTuple_CheckExact(taken)) return taken;                      \
        return serve_taken((PyObject *)self, &self->serving, (put_fn)NAME##_put, taken,     \
                           args[0], args[1], args[2]);                                      \
    }

static PyObject *get_failed(PyObject *self, void *offset) {
    Serving *serving = (Serving *)((char *)self + (Py_ssize_t)offset);
    if (!serving->failed) Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(serving->rid);
}

static PyObject *get_stepping(PyObject *self, void *offset) {
    return PyBool_FromLong(((Serving *)((char *)self + (Py_ssize_t)offset))->stepping);
}

/* The getset entries of `serving`, each with a trailing comma. */
#define SERVING_GETSET(TYPE)                                                                \
    {"failed", get_failed, NULL,                                                            \
     "The request id of the step whose env raised in the last serve(), else None.",        \
     (void *)offsetof(TYPE, serving)},                                                      \
    {"stepping", get_stepping, NULL, "Whether serve() is calling the env's step now.",    \
     (void *)offsetof(TYPE, serving)},

#define SERVE_METHOD_DEF(NAME)                                                              \
    {"serve", (PyCFunction)(void (*)(void))NAME##_serve, METH_FASTCALL,                     \
     "serve(env, check, bounds): one step taken, checked, stepped and answered."}

#endif  /* RLMESH__SERVE_STEP_H */
