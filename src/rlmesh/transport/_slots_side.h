/* One side of one link: its words, slots and spin policy (ShmLink's), and a slot's head.
 *
 * A part of _fastslots.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__SLOTS_SIDE_H
#define RLMESH__SLOTS_SIDE_H

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

/* A poll's sequence word and the value it waits for (the context of word_came). */
typedef struct {
    Side *side;
    uint32_t want;
} Awaited;

/* Whether the peer's sequence word reached the value awaited (a came_fn). */
static int word_came(const void *ctx) {
    const Awaited *awaited = ctx;
    return load_word(awaited->side, awaited->side->in_word) == awaited->want;
}

/* Poll the peer's sequence word for up to `budget` ns (ShmLink._spin): 1 it came, 0 not,
 * -1 an exception. */
static int poll_word(Side *side, uint32_t want, long long budget) {
    Awaited awaited = {side, want};
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
        int verdict = poll_verdict(side->stolen_yield, side->missed, start, &mark, budget,
                                   word_came, &awaited);
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

/* The attributes every side reads out (and EXTRA's getset entries, each with a trailing
 * comma, or nothing), and the type object of NAME's functions and methods
 * (NAME##_traverse, _init and _methods, defined before STEPS_TYPE). */
#define STEPS_TYPE(NAME, TYPE, DOC, EXTRA)                                                  \
    static PyGetSetDef NAME##_getset[] = {                                                  \
        {"spun_from", get_spun_from, NULL,                                                  \
         "When the last poll that missed started (time.perf_counter_ns's clock).",         \
         (void *)offsetof(TYPE, side)},                                                     \
        {"wakes", get_wakes, NULL, "Wake-up bytes sent here to a sleeping peer.",         \
         (void *)offsetof(TYPE, side)},                                                     \
        {"held", get_held, NULL, "Whether the slots' views are held.",                    \
         (void *)offsetof(TYPE, side)},                                                     \
        EXTRA                                                                               \
        {NULL, NULL, NULL, NULL, NULL},                                                     \
    };                                                                                      \
    GC_TYPE("_fastslots", NAME, TYPE, DOC, NAME##_getset)

#endif  /* RLMESH__SLOTS_SIDE_H */
