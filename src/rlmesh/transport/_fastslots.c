/* Slot steps over the same-host link, compiled: each side's step in one call.
 *
 * rlmesh.transport.fastslots is the Python face. The two types here follow the pure-Python
 * path byte for byte (rlmesh.wire.slots.SlotSteps and rlmesh.transport.shmlink.ShmLink:
 * send_written, recv, _spin) and cover only its common case:
 *
 *   ClientSteps.step(rid, action)  writes the request, announces it, polls for the reply and
 *                                  reads it;
 *   ServerSteps.take()             polls for a request and reads it;
 *   ServerSteps.put(rid, *results) writes the reply and announces it.
 *
 * Whatever else happens (a value of another layout, a late peer, a frame in the slot, a
 * released view) returns a code and the Python path goes on from there, with the same state:
 * the link's sequence counts (its _out_seq and _in_seq) and its spin policy stay the Python
 * objects' own.
 *
 * Ordering (protocol section 10.2): a slot's data is written before its sequence word (a
 * release store), the peer's sleep flag is read after a full fence, and the peer's data after
 * its sequence word (an acquire load).
 */
#include "_fastcommon.h"

#define HEAD_BYTES 16
#define CHECK_NS 2000   /* polling between two yields (the Python path's 64 checks) */
#define FORM_ARRAY 0
#define FORM_SCALAR 1
#define FORM_INT 2

/* -- one side of one link ---------------------------------------------------------------- */

typedef struct {
    Py_buffer ctl, out, in;
    int held;
    Py_ssize_t out_word, in_word, peer_sleep;
    uint32_t kind;
    PyObject *link;      /* the ShmLink: its _out_seq and _in_seq */
    PyObject *policy;    /* its SpinPolicy */
    PyObject *start, *missed, *stolen_yield;  /* the policy's bound methods */
    PyObject *fileno;    /* the link socket's bound fileno (wake-up bytes) */
    PyObject *ndarray;   /* numpy.ndarray */
    unsigned long long wakes;
    long long spun_from;
} Side;

static PyObject *s_out_seq, *s_in_seq, *s_stolen, *zero, *no_index;

static inline uint32_t load_word(Side *side, Py_ssize_t word) {
    return __atomic_load_n((uint32_t *)side->ctl.buf + word, __ATOMIC_ACQUIRE);
}

static void side_drop(Side *side) {
    if (side->held) {
        PyBuffer_Release(&side->ctl);
        PyBuffer_Release(&side->out);
        PyBuffer_Release(&side->in);
        side->held = 0;
    }
    Py_CLEAR(side->link);
    Py_CLEAR(side->policy);
    Py_CLEAR(side->start);
    Py_CLEAR(side->missed);
    Py_CLEAR(side->stolen_yield);
    Py_CLEAR(side->fileno);
    Py_CLEAR(side->ndarray);
}

/* The references a side holds, for the cycle collector: a link refers to its steps (through
 * the release it calls when closed) and its steps to the link. */
static int side_traverse(Side *side, visitproc visit, void *arg) {
    if (side->held) {
        Py_VISIT(side->ctl.obj);
        Py_VISIT(side->out.obj);
        Py_VISIT(side->in.obj);
    }
    Py_VISIT(side->link);
    Py_VISIT(side->policy);
    Py_VISIT(side->start);
    Py_VISIT(side->missed);
    Py_VISIT(side->stolen_yield);
    Py_VISIT(side->fileno);
    Py_VISIT(side->ndarray);
    return 0;
}

/* Takes the link's views and words; on failure everything taken is dropped. */
static int side_init(Side *side, PyObject *link, PyObject *ctl, PyObject *out, PyObject *in,
                     Py_ssize_t out_word, Py_ssize_t in_word, Py_ssize_t peer_sleep,
                     unsigned int kind, PyObject *ndarray) {
    side_drop(side);
    if (PyObject_GetBuffer(ctl, &side->ctl, PyBUF_WRITABLE) < 0) return -1;
    if (PyObject_GetBuffer(out, &side->out, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&side->ctl);
        return -1;
    }
    if (PyObject_GetBuffer(in, &side->in, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&side->ctl);
        PyBuffer_Release(&side->out);
        return -1;
    }
    side->held = 1;
    Py_ssize_t words = side->ctl.len / 4;
    if (out_word < 0 || in_word < 0 || peer_sleep < 0 || out_word >= words
            || in_word >= words || peer_sleep >= words || side->in.len < HEAD_BYTES + 8
            || side->out.len < HEAD_BYTES + 8) {
        side_drop(side);
        PyErr_SetString(PyExc_ValueError, "a control word or a slot is out of range");
        return -1;
    }
    side->out_word = out_word;
    side->in_word = in_word;
    side->peer_sleep = peer_sleep;
    side->kind = kind;
    side->wakes = 0;
    side->spun_from = 0;
    Py_INCREF(link);
    side->link = link;
    Py_INCREF(ndarray);
    side->ndarray = ndarray;
    PyObject *sock = NULL;
    if ((side->policy = PyObject_GetAttrString(link, "_policy")) == NULL
            || (side->start = bound(side->policy, "start")) == NULL
            || (side->missed = bound(side->policy, "missed")) == NULL
            || (side->stolen_yield = bound(side->policy, "stolen_yield")) == NULL
            || (sock = PyObject_GetAttrString(link, "sock")) == NULL
            || (side->fileno = bound(sock, "fileno")) == NULL) {
        Py_XDECREF(sock);
        side_drop(side);
        return -1;
    }
    Py_DECREF(sock);
    return 0;
}

/* A sequence count of the link (its _out_seq or _in_seq), or -1 with an exception set. */
static long long get_seq(Side *side, PyObject *name) {
    PyObject *value = PyObject_GetAttr(side->link, name);
    if (value == NULL) return -1;
    unsigned long seq = PyLong_AsUnsignedLong(value);
    Py_DECREF(value);
    if (seq == (unsigned long)-1 && PyErr_Occurred()) return -1;
    return (long long)(seq & 0xFFFFFFFFUL);
}

static int set_seq(Side *side, PyObject *name, uint32_t seq) {
    PyObject *value = PyLong_FromUnsignedLong(seq);
    if (value == NULL) return -1;
    int failed = PyObject_SetAttr(side->link, name, value);
    Py_DECREF(value);
    return failed;
}

/* Send the sleeping peer its wake-up byte without blocking (ShmLink.wake_peer): 1 sent,
 * 0 not (nothing sent: the Python path sends it), -1 an exception. */
static int wake_peer(Side *side) {
    PyObject *got = PyObject_CallNoArgs(side->fileno);
    if (got == NULL) return -1;
    long fd = PyLong_AsLong(got);
    Py_DECREF(got);
    if (fd == -1 && PyErr_Occurred()) return -1;
    if (fd < 0) return 0;
    if (send((int)fd, "W", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) return 0;
    side->wakes++;
    return 1;
}

/* Announce what was written into the outgoing slot (ShmLink.send_written): DONE, WAKE, or
 * -1 with an exception set. */
static int announce(Side *side) {
    long long out_seq = get_seq(side, s_out_seq);
    if (out_seq < 0) return -1;
    uint32_t seq = (uint32_t)(out_seq + 1);
    if (set_seq(side, s_out_seq, seq) < 0) return -1;
    __atomic_store_n((uint32_t *)side->ctl.buf + side->out_word, seq, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (load_word(side, side->peer_sleep) == 0) return DONE;
    int woke = wake_peer(side);
    return woke < 0 ? -1 : woke ? DONE : WAKE;
}

/* Poll the peer's sequence word for up to `budget` ns (ShmLink._spin): 1 it came, 0 not,
 * -1 an exception. */
static int poll_word(Side *side, uint32_t want, long long budget) {
    long long start = now_ns(), mark = start;
    for (;;) {
        long long until = mark + CHECK_NS;
        for (;;) {
            for (int i = 0; i < 32; i++) {
                if (load_word(side, side->in_word) == want)
                    return PyObject_SetAttr(side->policy, s_stolen, zero) < 0 ? -1 : 1;
                CPU_RELAX();
            }
            if (now_ns() > until) break;
        }
        Py_BEGIN_ALLOW_THREADS  /* (as os.sched_yield: a server thread of this process runs) */
        sched_yield();
        Py_END_ALLOW_THREADS
        if (!side->held) return 0;  /* (closed meanwhile: the Python path says so) */
        int verdict = poll_verdict(side->stolen_yield, side->missed, start, &mark, budget);
        if (verdict < 0) return -1;
        if (!side->held) return 0;
        if (verdict == POLL_STOLEN) return load_word(side, side->in_word) == want;
        if (verdict == POLL_MISSED) return 0;
    }
}

/* Wait (by polling only) for the peer's sequence word to reach `want`: 1 it did, 0 the poll
 * missed (spun_from set) or the views were dropped meanwhile, -1 an exception. The GIL is
 * let go only while yielding and in the policy's Python methods: another thread that closes
 * the link then drops these views (release()), which every return after those checks. */
static int await_word(Side *side, uint32_t want) {
    if (load_word(side, side->in_word) == want) return 1;
    long long started = now_ns();
    PyObject *got = PyObject_CallNoArgs(side->start);
    if (got == NULL) return -1;
    long long budget = PyLong_AsLongLong(got);
    Py_DECREF(got);
    if (budget == -1 && PyErr_Occurred()) return -1;
    /* (Python code ran, and so may another thread: one that closed the link drops the views) */
    int came = budget > 0 && side->held ? poll_word(side, want, budget) : 0;
    if (came == 0) side->spun_from = started;
    return came;
}

/* -- a slot's head ----------------------------------------------------------------------- */

static void write_head(char *slot, uint32_t kind, uint32_t form, uint64_t rid) {
    memcpy(slot, &kind, 4);
    memcpy(slot + 4, &form, 4);
    memcpy(slot + 8, &rid, 8);
}

static PyObject *get_wakes(PyObject *self, void *offset) {
    return PyLong_FromUnsignedLongLong(((Side *)((char *)self + (Py_ssize_t)offset))->wakes);
}

static PyObject *get_spun_from(PyObject *self, void *offset) {
    return PyLong_FromLongLong(((Side *)((char *)self + (Py_ssize_t)offset))->spun_from);
}

static PyObject *get_held(PyObject *self, void *offset) {
    return PyBool_FromLong(((Side *)((char *)self + (Py_ssize_t)offset))->held);
}

/* -- what both types share ------------------------------------------------------------ */

/* How many views a reply has: 1 (one env's obs) or 4 (a vector env's obs, rewards and
 * flags); -1 with an exception set for anything else. */
static Py_ssize_t reply_count(PyObject *replies) {
    Py_ssize_t n = PyTuple_GET_SIZE(replies);
    if (n == 1 || n == 4) return n;
    PyErr_SetString(PyExc_ValueError, "replies: one view, or four for a vector env");
    return -1;
}

/* Freeing, clearing (the cycle collector) and release() all drop a type's views and
 * references: NAME##_drop, defined before STEPS_COMMON(NAME, TYPE). */
#define STEPS_COMMON(NAME, TYPE)                                                            \
    GC_FREE(NAME, TYPE)                                                                     \
    static PyObject *NAME##_release(TYPE *self, PyObject *unused) {                         \
        NAME##_drop(self);                                                                  \
        Py_RETURN_NONE;                                                                     \
    }

/* The attributes every side reads out, and the type object of NAME's functions and
 * methods (NAME##_traverse, _init and _methods, defined before STEPS_TYPE). */
#define STEPS_TYPE(NAME, TYPE, DOC)                                                         \
    static PyGetSetDef NAME##_getset[] = {                                                  \
        {"spun_from", get_spun_from, NULL,                                                  \
         "When the last poll that missed started (time.perf_counter_ns's clock).",         \
         (void *)offsetof(TYPE, side)},                                                     \
        {"wakes", get_wakes, NULL, "Wake-up bytes sent here to a sleeping peer.",         \
         (void *)offsetof(TYPE, side)},                                                     \
        {"held", get_held, NULL, "Whether the slots' views are held.",                    \
         (void *)offsetof(TYPE, side)},                                                     \
        {NULL, NULL, NULL, NULL, NULL},                                                     \
    };                                                                                      \
    GC_TYPE("_fastslots", NAME, TYPE, DOC, NAME##_getset)

/* -- the client ---------------------------------------------------------------------------- */

/* -- one env's NumPy scalar rewards (reply forms 1 and up, where both sides agreed) ----------- */

#define MAX_REWARDS 2

typedef struct {
    PyObject *types[MAX_REWARDS];  /* the NumPy scalar type of form i + 1 */
    int count;
} Rewards;

static void rewards_drop(Rewards *r) {
    for (int i = 0; i < MAX_REWARDS; i++) Py_CLEAR(r->types[i]);
    r->count = 0;
}

static int rewards_traverse(Rewards *r, visitproc visit, void *arg) {
    for (int i = 0; i < MAX_REWARDS; i++) Py_VISIT(r->types[i]);
    return 0;
}

/* The forms' types from a tuple of types (only one env's replies have forms): -1 with an
 * exception. */
static int rewards_init(Rewards *r, PyObject *types, int one) {
    Py_ssize_t n = PyTuple_GET_SIZE(types);
    if (n > MAX_REWARDS || (n && !one)) {
        PyErr_SetString(PyExc_ValueError, "rewards: at most two types, and only for one env");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *type = PyTuple_GET_ITEM(types, i);
        if (!PyType_Check(type) || type == (PyObject *)&PyFloat_Type) {
            PyErr_SetString(PyExc_TypeError, "rewards: NumPy scalar types");
            return -1;
        }
        Py_INCREF(type);
        r->types[i] = type;
        r->count = (int)i + 1;
    }
    return 0;
}

/* A reward's form and its value as a float64: 0 (declined) if it has none. */
static int reward_form(const Rewards *r, PyObject *reward, uint32_t *form, double *value) {
    if (PyFloat_CheckExact(reward)) {
        *form = 0;
        *value = PyFloat_AS_DOUBLE(reward);
        return 1;
    }
    for (int i = 0; i < r->count; i++) {
        if ((PyObject *)Py_TYPE(reward) == r->types[i]) {
            *value = PyFloat_AsDouble(reward);  /* (a float32's value, exactly) */
            if (*value == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return 0;
            }
            *form = (uint32_t)i + 1;
            return 1;
        }
    }
    return 0;
}

/* The reward of a reply of `form` (0 or an agreed one) whose float64 is `value`: a new
 * reference, or NULL with an exception. */
static PyObject *reward_of(const Rewards *r, uint32_t form, double value) {
    PyObject *number = PyFloat_FromDouble(value);
    if (number == NULL || form == 0) return number;
    PyObject *scalar = PyObject_CallOneArg(r->types[form - 1], number);
    Py_DECREF(number);
    return scalar;
}

typedef struct {
    PyObject_HEAD
    Side side;
    Layout action;
    PyObject *scalar_type;  /* the Discrete action's NumPy scalar type, or None */
    int ints;
    int one;
    Py_ssize_t tail;        /* where a one-env reply's reward starts */
    PyObject *copies[4];    /* bound `copy` of the reply views: obs (and rewards, flags) */
    Rewards rewards;        /* one env's NumPy scalar rewards, by form */
} ClientSteps;

static void client_drop(ClientSteps *self) {
    side_drop(&self->side);
    Py_CLEAR(self->scalar_type);
    for (int i = 0; i < 4; i++) Py_CLEAR(self->copies[i]);
    rewards_drop(&self->rewards);
}

STEPS_COMMON(client, ClientSteps)

static int client_traverse(ClientSteps *self, visitproc visit, void *arg) {
    Py_VISIT(self->scalar_type);
    for (int i = 0; i < 4; i++) Py_VISIT(self->copies[i]);
    int failed = rewards_traverse(&self->rewards, visit, arg);
    return failed ? failed : side_traverse(&self->side, visit, arg);
}

/* ClientSteps(link, ctl, out, in, out_word, in_word, peer_sleep, kind, ndarray, action,
 *             scalar_type, ints, tail, replies, rewards)
 * replies: (obs,) for one env, (obs, rewards, terminated, truncated) for a vector env;
 * rewards: the NumPy scalar types of one env's reward forms 1, 2 (agreed), or (). */
static int client_init(ClientSteps *self, PyObject *args, PyObject *kwds) {
    PyObject *link, *ctl, *out, *in, *ndarray, *action, *scalar_type, *replies, *rewards;
    Py_ssize_t out_word, in_word, peer_sleep, tail;
    unsigned int kind;
    int ints;
    if (no_keywords(kwds, "ClientSteps") < 0
            || first_init(self->side.link != NULL, "ClientSteps") < 0)
        return -1;
    if (!PyArg_ParseTuple(args, "OOOOnnnIOOOpnO!O!", &link, &ctl, &out, &in, &out_word,
                          &in_word, &peer_sleep, &kind, &ndarray, &action, &scalar_type,
                          &ints, &tail, &PyTuple_Type, &replies, &PyTuple_Type, &rewards))
        return -1;
    client_drop(self);
    Py_ssize_t n = reply_count(replies);
    if (n < 0) return -1;
    if (rewards_init(&self->rewards, rewards, n == 1) < 0) {
        client_drop(self);
        return -1;
    }
    if (side_init(&self->side, link, ctl, out, in, out_word, in_word, peer_sleep, kind,
                  ndarray) < 0)
        return -1;
    if (layout_of(&self->action, action) < 0
            || HEAD_BYTES + self->action.nbytes > self->side.out.len
            || tail < HEAD_BYTES || tail + 10 > self->side.in.len) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "the layout does not fit the slots");
        client_drop(self);
        return -1;
    }
    self->ints = ints;
    self->one = n == 1;
    self->tail = tail;
    Py_INCREF(scalar_type);
    self->scalar_type = scalar_type;
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((self->copies[i] = bound(PyTuple_GET_ITEM(replies, i), "copy")) == NULL) {
            client_drop(self);
            return -1;
        }
    }
    return 0;
}

/* The action into the request slot and the header; 0: not of the layout (nothing written). */
static int write_request(ClientSteps *self, uint64_t rid, PyObject *action) {
    char *out = (char *)self->side.out.buf;
    uint32_t form;
    PyTypeObject *type = Py_TYPE(action);
    if ((PyObject *)type == self->side.ndarray) {
        if (!copy_array(self->side.ndarray, &self->action, action, out + HEAD_BYTES)) return 0;
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
        int same = b.len == self->action.itemsize;
        if (same) memcpy(out + HEAD_BYTES, b.buf, (size_t)b.len);
        PyBuffer_Release(&b);
        if (!same) return 0;
        form = FORM_SCALAR;
    } else {
        return 0;
    }
    write_head(out, self->side.kind, form, rid);
    return 1;
}

static PyObject *read_reply(ClientSteps *self, PyObject *rid) {
    const char *in = (const char *)self->side.in.buf;
    PyObject *reply = PyList_New(7);
    if (reply == NULL) return NULL;
    Py_INCREF(zero);
    PyList_SET_ITEM(reply, 0, zero);
    Py_INCREF(rid);
    PyList_SET_ITEM(reply, 1, rid);
    PyObject *item;
    if (self->one) {
        double reward;
        uint32_t form;
        memcpy(&reward, in + self->tail, 8);
        memcpy(&form, in + 4, 4);  /* (0, or an agreed form: client_step checked it) */
        if ((item = PyObject_CallNoArgs(self->copies[0])) == NULL) goto fail;
        PyList_SET_ITEM(reply, 2, item);
        if ((item = reward_of(&self->rewards, form, reward)) == NULL) goto fail;
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

static PyObject *client_step(ClientSteps *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "step(rid, action)");
        return NULL;
    }
    Side *side = &self->side;
    uint64_t id;
    if (!side->held || !rid_of(args[0], &id)) return code(DECLINED);
    long long in_seq = get_seq(side, s_in_seq);
    if (in_seq < 0) return NULL;
    if (!write_request(self, id, args[1])) return code(DECLINED);
    /* announced: from here on the Python path can only go on, never start over */
    int sent = announce(side);
    if (sent < 0) return NULL;
    if (sent == WAKE) return code(WAKE);
    uint32_t want = (uint32_t)(in_seq + 1);
    int came = await_word(side, want);
    if (came < 0) return NULL;
    if (!came) return code(ASLEEP);
    const char *in = (const char *)side->in.buf;
    uint32_t kind, form;
    uint64_t got;
    memcpy(&kind, in, 4);
    memcpy(&form, in + 4, 4);
    memcpy(&got, in + 8, 8);
    if (kind != side->kind || got != id || (self->one && form > (uint32_t)self->rewards.count))
        return code(RECEIVE);  /* (the Python path reads it, or says what is wrong with it) */
    PyObject *reply = read_reply(self, args[0]);
    if (reply == NULL) return NULL;
    if (set_seq(side, s_in_seq, want) < 0) {
        Py_DECREF(reply);
        return NULL;
    }
    return reply;
}

static PyMethodDef client_methods[] = {
    {"step", (PyCFunction)(void (*)(void))client_step, METH_FASTCALL,
     "step(rid, action): the reply list, or the code handed to the Python path."},
    {"release", (PyCFunction)client_release, METH_NOARGS,
     "Drop every view of the slots (the region may then close). Idempotent."},
    {NULL, NULL, 0, NULL},
};

STEPS_TYPE(client, ClientSteps,
           "The client's slot steps over one link, compiled (see the module).");

/* -- the server ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Side side;
    PyObject *action;       /* the request slot's action view */
    PyObject *action_copy;  /* its bound `copy` */
    int scalars;            /* whether a NumPy scalar form may come (a Discrete action) */
    int ints;
    int one;
    int fields;             /* arrays in a reply: 1 (one env: obs) or 4 (a vector env) */
    Layout reply[4];        /* obs (and rewards, terminated, truncated) */
    Py_ssize_t offsets[4];  /* where each starts in the reply slot */
    Py_ssize_t tail;        /* where a one-env reply's reward starts */
    Rewards rewards;        /* one env's NumPy scalar rewards, by form */
} ServerSteps;

static void server_drop(ServerSteps *self) {
    side_drop(&self->side);
    Py_CLEAR(self->action);
    Py_CLEAR(self->action_copy);
    rewards_drop(&self->rewards);
}

STEPS_COMMON(server, ServerSteps)

static int server_traverse(ServerSteps *self, visitproc visit, void *arg) {
    Py_VISIT(self->action);
    Py_VISIT(self->action_copy);
    int failed = rewards_traverse(&self->rewards, visit, arg);
    return failed ? failed : side_traverse(&self->side, visit, arg);
}

/* ServerSteps(link, ctl, out, in, out_word, in_word, peer_sleep, kind, ndarray, action,
 *             scalars, ints, replies, rewards)
 * replies: the reply slot's views, (obs,) for one env or (obs, rewards, terminated,
 * truncated) for a vector env; rewards: as ClientSteps'. */
static int server_init(ServerSteps *self, PyObject *args, PyObject *kwds) {
    PyObject *link, *ctl, *out, *in, *ndarray, *action, *replies, *rewards;
    Py_ssize_t out_word, in_word, peer_sleep;
    unsigned int kind;
    int scalars, ints;
    if (no_keywords(kwds, "ServerSteps") < 0
            || first_init(self->side.link != NULL, "ServerSteps") < 0)
        return -1;
    if (!PyArg_ParseTuple(args, "OOOOnnnIOOppO!O!", &link, &ctl, &out, &in, &out_word,
                          &in_word, &peer_sleep, &kind, &ndarray, &action, &scalars, &ints,
                          &PyTuple_Type, &replies, &PyTuple_Type, &rewards))
        return -1;
    server_drop(self);
    Py_ssize_t n = reply_count(replies);
    if (n < 0) return -1;
    if (rewards_init(&self->rewards, rewards, n == 1) < 0) {
        server_drop(self);
        return -1;
    }
    if (side_init(&self->side, link, ctl, out, in, out_word, in_word, peer_sleep, kind,
                  ndarray) < 0)
        return -1;
    Py_ssize_t at = HEAD_BYTES;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (layout_of(&self->reply[i], PyTuple_GET_ITEM(replies, i)) < 0) {
            server_drop(self);
            return -1;
        }
        self->offsets[i] = at;
        at += self->reply[i].nbytes;
    }
    self->one = n == 1;
    self->fields = (int)n;
    self->tail = at;
    Layout request;
    if (layout_of(&request, action) < 0 || at + (n == 1 ? 10 : 0) > self->side.out.len
            || HEAD_BYTES + request.nbytes > self->side.in.len) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "the layout does not fit the slots");
        server_drop(self);
        return -1;
    }
    self->scalars = scalars;
    self->ints = ints;
    Py_INCREF(action);
    self->action = action;
    if ((self->action_copy = bound(action, "copy")) == NULL) {
        server_drop(self);
        return -1;
    }
    return 0;
}

static PyObject *server_take(ServerSteps *self, PyObject *unused) {
    Side *side = &self->side;
    if (!side->held) return code(RECEIVE);
    long long in_seq = get_seq(side, s_in_seq);
    if (in_seq < 0) return NULL;
    uint32_t want = (uint32_t)(in_seq + 1);
    int came = await_word(side, want);
    if (came < 0) return NULL;
    if (!came) return code(ASLEEP);
    const char *in = (const char *)side->in.buf;
    uint32_t kind, form;
    uint64_t rid;
    memcpy(&kind, in, 4);
    memcpy(&form, in + 4, 4);
    memcpy(&rid, in + 8, 8);
    if (kind != side->kind) return code(RECEIVE);
    PyObject *action;
    if (form == FORM_ARRAY) {
        action = PyObject_CallNoArgs(self->action_copy);
    } else if (form == FORM_INT && self->ints) {
        long long value;
        memcpy(&value, in + HEAD_BYTES, 8);
        action = PyLong_FromLongLong(value);
    } else if (form == FORM_SCALAR && self->scalars) {
        action = PyObject_GetItem(self->action, no_index);
    } else {
        return code(RECEIVE);  /* (a form this layout has not: the Python path refuses it) */
    }
    if (action == NULL) return NULL;
    PyObject *id = PyLong_FromUnsignedLongLong(rid);
    if (id == NULL || set_seq(side, s_in_seq, want) < 0) {
        Py_XDECREF(id);
        Py_DECREF(action);
        return NULL;
    }
    PyObject *taken = PyTuple_New(2);
    if (taken == NULL) {
        Py_DECREF(id);
        Py_DECREF(action);
        return NULL;
    }
    PyTuple_SET_ITEM(taken, 0, id);
    PyTuple_SET_ITEM(taken, 1, action);
    return taken;
}

static PyObject *server_put(ServerSteps *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "put(rid, obs, reward, terminated, truncated, info)");
        return NULL;
    }
    Side *side = &self->side;
    uint64_t id;
    PyObject *info = args[5];
    if (!side->held || !rid_of(args[0], &id) || !PyDict_CheckExact(info)
            || PyDict_GET_SIZE(info) != 0)
        return code(DECLINED);
    char *out = (char *)side->out.buf;
    uint32_t form = FORM_ARRAY;  /* (a reply's form: its reward's, 0 for a float) */
    if (self->one) {
        PyObject *reward = args[2], *terminated = args[3], *truncated = args[4];
        double value;
        if (!reward_form(&self->rewards, reward, &form, &value)
                || Py_TYPE(terminated) != &PyBool_Type || Py_TYPE(truncated) != &PyBool_Type)
            return code(DECLINED);
        if (!copy_array(side->ndarray, &self->reply[0], args[1], out + HEAD_BYTES))
            return code(DECLINED);
        memcpy(out + self->tail, &value, 8);
        out[self->tail + 8] = terminated == Py_True;
        out[self->tail + 9] = truncated == Py_True;
    } else {
        /* (a reply declined half-way leaves bytes in the slot, but announces nothing: the
         * Python path writes over them) */
        for (int i = 0; i < 4; i++) {
            if (!copy_array(side->ndarray, &self->reply[i], args[1 + i], out + self->offsets[i]))
                return code(DECLINED);
        }
    }
    write_head(out, side->kind, form, id);
    int sent = announce(side);
    return sent < 0 ? NULL : code(sent);
}

static PyMethodDef server_methods[] = {
    {"take", (PyCFunction)server_take, METH_NOARGS,
     "take(): the next slot step's (rid, action), or the code handed to the Python path."},
    {"put", (PyCFunction)(void (*)(void))server_put, METH_FASTCALL,
     "put(rid, obs, reward, terminated, truncated, info): DONE, WAKE or DECLINED."},
    {"release", (PyCFunction)server_release, METH_NOARGS,
     "Drop every view of the slots (the region may then close). Idempotent."},
    {NULL, NULL, 0, NULL},
};

STEPS_TYPE(server, ServerSteps,
           "The server's slot steps over one link, compiled (see the module).");

/* -- the module ------------------------------------------------------------------------------ */

static struct PyModuleDef fastslots_module = {
    PyModuleDef_HEAD_INIT, "_fastslots",
    "Slot steps over the same-host link, compiled (see rlmesh.transport.fastslots).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastslots(void) {
    if (PyType_Ready(&ClientStepsType) < 0 || PyType_Ready(&ServerStepsType) < 0) return NULL;
    s_out_seq = PyUnicode_InternFromString("_out_seq");
    s_in_seq = PyUnicode_InternFromString("_in_seq");
    s_stolen = PyUnicode_InternFromString("stolen");
    zero = PyLong_FromLong(0);
    no_index = PyTuple_New(0);
    if (s_out_seq == NULL || s_in_seq == NULL || s_stolen == NULL || zero == NULL
            || no_index == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&fastslots_module);
    if (module == NULL) return NULL;
    if (add_type(module, "ClientSteps", &ClientStepsType) < 0
            || add_type(module, "ServerSteps", &ServerStepsType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "DECLINED", DECLINED) < 0
            || PyModule_AddIntConstant(module, "DONE", DONE) < 0
            || PyModule_AddIntConstant(module, "WAKE", WAKE) < 0
            || PyModule_AddIntConstant(module, "RECEIVE", RECEIVE) < 0
            || PyModule_AddIntConstant(module, "ASLEEP", ASLEEP) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
