/* The server's slot steps: ServerSteps.take and put, and serve (_serve_step.h).
 *
 * A part of _fastslots.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__SLOTS_SERVER_H
#define RLMESH__SLOTS_SERVER_H

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
    Serving serving;        /* serve()'s state */
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
    if (!side->held) return code(RECEIVE);  /* (released in the policy's last call) */
    const char *in = (const char *)side->in.buf;
    uint32_t kind, form;
    uint64_t rid;
    memcpy(&kind, in, 4);
    memcpy(&form, in + 4, 4);
    memcpy(&rid, in + 8, 8);
    if (kind != side->kind) return code(RECEIVE);
    PyObject *action, *source;  /* (held for the call: the steps may be released in it) */
    if (form == FORM_ARRAY) {
        Py_INCREF(source = self->action_copy);
        action = PyObject_CallNoArgs(source);
        Py_DECREF(source);
    } else if (form == FORM_INT && self->ints) {
        long long value;
        memcpy(&value, in + HEAD_BYTES, 8);
        action = PyLong_FromLongLong(value);
    } else if (form == FORM_SCALAR && self->scalars) {
        Py_INCREF(source = self->action);
        action = PyObject_GetItem(source, no_index);
        Py_DECREF(source);
    } else {
        return code(RECEIVE);  /* (a form this layout has not: the Python path refuses it) */
    }
    if (action == NULL) return NULL;
    if (!side->held) {  /* (released meanwhile: the Python path reports the closed link) */
        Py_DECREF(action);
        return code(RECEIVE);
    }
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
        if (Py_TYPE(terminated) != &PyBool_Type || Py_TYPE(truncated) != &PyBool_Type
                || !reward_write(&self->rewards, reward, out + self->tail, &form)
                || !copy_array(side->ndarray, &self->reply[0], args[1], out + HEAD_BYTES))
            return code(DECLINED);  /* (what was written is not announced: see below) */
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

SERVE_METHOD(server, ServerSteps)

static PyMethodDef server_methods[] = {
    SERVE_METHOD_DEF(server),
    {"take", (PyCFunction)server_take, METH_NOARGS,
     "take(): the next slot step's (rid, action), or the code handed to the Python path."},
    {"put", (PyCFunction)(void (*)(void))server_put, METH_FASTCALL,
     "put(rid, obs, reward, terminated, truncated, info): DONE, WAKE or DECLINED."},
    {"release", (PyCFunction)server_release, METH_NOARGS,
     "Drop every view of the slots (the region may then close). Idempotent."},
    {NULL, NULL, 0, NULL},
};

STEPS_TYPE(server, ServerSteps,
           "The server's slot steps over one link, compiled (see the module).",
           SERVING_GETSET(ServerSteps));

#endif  /* RLMESH__SLOTS_SERVER_H */
