/* What both compiled sides hold: the connection and the contract's fields.
 *
 * A part of _fastframes.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__FRAMES_SIDE_H
#define RLMESH__FRAMES_SIDE_H

/* -- what both sides hold ------------------------------------------------------------------ */

#define MAX_REWARDS 2  /* one env's NumPy scalar rewards: float64, float32 */
#define FLOAT_REWARD 9  /* 0xcb and a big-endian double */

typedef struct {
    Stream stream;
    Field action, scalar, replies[4];  /* the scalar's is unheld without scalar actions */
    Field rewards[MAX_REWARDS];  /* one env's NumPy scalar rewards; a scratch of one item */
    PyObject *reward_types[MAX_REWARDS];  /* their NumPy scalar types */
    int n_rewards;
    int ints;               /* whether a Python int is an action (a Discrete space) */
    int fields;             /* a reply's arrays: 1 (one env) or 4 (a vector env) */
    Py_ssize_t reply_size;  /* a reply's header with a one-byte request id and a float reward */
    Py_ssize_t reply_extra; /* how much longer a NumPy reward may make it */
    Py_ssize_t body;        /* a reply's body: the observation's bytes if it travels there */
} Side;

static void side_drop(Side *side) {
    stream_drop(&side->stream);
    field_drop(&side->action);
    field_drop(&side->scalar);
    for (int i = 0; i < 4; i++) field_drop(&side->replies[i]);
    for (int i = 0; i < MAX_REWARDS; i++) {
        field_drop(&side->rewards[i]);
        Py_CLEAR(side->reward_types[i]);
    }
    side->n_rewards = 0;
}

static int side_traverse(Side *side, visitproc visit, void *arg) {
    int failed = field_traverse(&side->action, visit, arg);
    if (!failed) failed = field_traverse(&side->scalar, visit, arg);
    for (int i = 0; i < 4 && !failed; i++) failed = field_traverse(&side->replies[i], visit, arg);
    for (int i = 0; i < MAX_REWARDS && !failed; i++) {
        failed = field_traverse(&side->rewards[i], visit, arg);
        if (!failed) Py_VISIT(side->reward_types[i]);
    }
    return failed ? failed : stream_traverse(&side->stream, visit, arg);
}

/* One env's NumPy scalar rewards: a tuple of fields whose scratch holds one item, of the
 * scalar type each stands for. -1 with an exception. */
static int side_rewards(Side *side, PyObject *rewards) {
    Py_ssize_t n = PyTuple_GET_SIZE(rewards);
    if (n > MAX_REWARDS || (n && side->fields != 1)) {
        PyErr_SetString(PyExc_ValueError, "rewards: at most two, and only for one env");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Field *field = &side->rewards[i];
        side->n_rewards = (int)i + 1;  /* (dropped from here on) */
        if (field_init(field, PyTuple_GET_ITEM(rewards, i), 0) < 0
                || (side->reward_types[i] = scalar_type_of(field->scratch)) == NULL)
            return -1;
        if (field->layout.nbytes != field->layout.itemsize) {
            PyErr_SetString(PyExc_ValueError, "a reward field holds one NumPy scalar");
            return -1;
        }
        side->reply_extra = Py_MAX(side->reply_extra,
                                   prefix_len(field) + field->layout.nbytes - FLOAT_REWARD);
    }
    return 0;
}

/* The fields of a side: the action's (`read`: this side reads actions, so binds its copy),
 * a scalar action's (or None), the reply's, (obs,) or (obs, rewards, terminated,
 * truncated), and one env's NumPy scalar rewards. -1 with an exception (the caller drops
 * what was taken). */
static int side_fields(Side *side, PyObject *action, PyObject *scalar, int read, int ints,
                       PyObject *replies, PyObject *rewards) {
    Py_ssize_t n = PyTuple_GET_SIZE(replies);
    if (n != 1 && n != 4) {
        PyErr_SetString(PyExc_ValueError, "replies: one field, or four for a vector env");
        return -1;
    }
    if (field_init(&side->action, action, read) < 0
            || (scalar != Py_None && field_init(&side->scalar, scalar, 0) < 0))
        return -1;
    side->ints = ints;
    side->fields = (int)n;
    side->reply_size = 2 + 1 + 1;  /* head, rid, empty info (and one env's reward and flags) */
    if (n == 1) side->reply_size += FLOAT_REWARD + 2;
    side->reply_extra = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (field_init(&side->replies[i], PyTuple_GET_ITEM(replies, i), 1) < 0) return -1;
        side->reply_size += field_size(&side->replies[i]);
    }
    side->body = side->replies[0].make != NULL ? side->replies[0].layout.nbytes : 0;
    if (side_rewards(side, rewards) < 0) return -1;
    /* (only a reply's observation may travel in the body: every other field is inline) */
    int elsewhere = side->action.make != NULL || side->scalar.make != NULL;
    for (int i = 1; i < side->fields; i++) elsewhere |= side->replies[i].make != NULL;
    for (int i = 0; i < side->n_rewards; i++) elsewhere |= side->rewards[i].make != NULL;
    if (elsewhere) {
        PyErr_SetString(PyExc_ValueError, "only a reply's observation travels in the body");
        return -1;
    }
    return 0;
}

/* The type object of NAME's functions (NAME##_drop, _traverse, _init and _methods, defined
 * before FRAMES_TYPE). */
#define FRAMES_TYPE(NAME, TYPE, DOC, GETSET)                                                \
    GC_FREE(NAME, TYPE)                                                                     \
    GC_TYPE("_fastframes", NAME, TYPE, DOC, GETSET)

#endif  /* RLMESH__FRAMES_SIDE_H */
