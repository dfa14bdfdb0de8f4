/* The client's slot step: ClientSteps.step (write, announce, poll, read), or its halves
 * post (write, announce) and reply (poll, read) for a pipelined request.
 *
 * A part of _fastslots.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__SLOTS_CLIENT_H
#define RLMESH__SLOTS_CLIENT_H

/* -- the client ---------------------------------------------------------------------------- */

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

/* The reply in the reply slot (of `form`, checked), or NULL with an exception. The slot's
 * values are read out, and what the calls here use is held, before the first Python call:
 * another thread may release the steps (close the link) during one. */
static PyObject *read_reply(ClientSteps *self, PyObject *rid, uint32_t form) {
    const char *in = (const char *)self->side.in.buf;
    int fields = self->one ? 1 : 4;
    char raw[REWARD_BYTES];
    int terminated = 0, truncated = 0;
    if (self->one) {
        memcpy(raw, in + self->tail, REWARD_BYTES);
        terminated = in[self->tail + 8] != 0;
        truncated = in[self->tail + 9] != 0;
    }
    PyObject *copies[4] = {NULL, NULL, NULL, NULL}, *reply = NULL, *item;
    for (int i = 0; i < fields; i++) {
        copies[i] = self->copies[i];
        Py_INCREF(copies[i]);
    }
    PyObject *reward = self->one ? reward_read(&self->rewards, form, raw) : NULL;
    if (self->one && reward == NULL) goto done;
    if ((reply = PyList_New(7)) == NULL) goto done;
    Py_INCREF(zero);
    PyList_SET_ITEM(reply, 0, zero);
    Py_INCREF(rid);
    PyList_SET_ITEM(reply, 1, rid);
    for (int i = 0; i < fields; i++) {
        if ((item = PyObject_CallNoArgs(copies[i])) == NULL) {
            Py_CLEAR(reply);
            goto done;
        }
        PyList_SET_ITEM(reply, 2 + i, item);
    }
    if (self->one) {
        PyList_SET_ITEM(reply, 3, reward);
        reward = NULL;
        PyList_SET_ITEM(reply, 4, PyBool_FromLong(terminated));
        PyList_SET_ITEM(reply, 5, PyBool_FromLong(truncated));
    }
    if ((item = PyDict_New()) == NULL) {
        Py_CLEAR(reply);
        goto done;
    }
    PyList_SET_ITEM(reply, 6, item);
done:
    Py_XDECREF(reward);
    for (int i = 0; i < fields; i++) Py_DECREF(copies[i]);
    return reply;
}

/* Wait for the reply to `id` (`rid`) in the reply slot, whose sequence word reaches `want`:
 * the reply list, or the code handed to the Python path (RECEIVE, ASLEEP). */
static PyObject *await_reply(ClientSteps *self, PyObject *rid, uint64_t id, uint32_t want) {
    Side *side = &self->side;
    int came = await_word(side, want);
    if (came < 0) return NULL;
    if (!came) return code(ASLEEP);
    if (!side->held) return code(RECEIVE);  /* (released in the policy's last call) */
    const char *in = (const char *)side->in.buf;
    uint32_t kind, form;
    uint64_t got;
    memcpy(&kind, in, 4);
    memcpy(&form, in + 4, 4);
    memcpy(&got, in + 8, 8);
    if (kind != side->kind || got != id || form > (uint32_t)self->rewards.count)
        return code(RECEIVE);  /* (the Python path reads it, or says what is wrong with it) */
    PyObject *reply = read_reply(self, rid, form);  /* (the form read once: the peer's) */
    if (reply == NULL) return NULL;
    if (!side->held) {  /* (released meanwhile: the Python path reports the closed link) */
        Py_DECREF(reply);
        return code(RECEIVE);
    }
    if (set_seq(side, s_in_seq, want) < 0) {
        Py_DECREF(reply);
        return NULL;
    }
    return reply;
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
    return await_reply(self, args[0], id, (uint32_t)(in_seq + 1));
}

/* post(rid, action): the first half of a step (write and announce), for a pipelined request
 * whose reply `reply` reads later: DONE, WAKE, or DECLINED (nothing written). */
static PyObject *client_post(ClientSteps *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "post(rid, action)");
        return NULL;
    }
    uint64_t id;
    if (!self->side.held || !rid_of(args[0], &id)) return code(DECLINED);
    if (!write_request(self, id, args[1])) return code(DECLINED);
    int sent = announce(&self->side);
    return sent < 0 ? NULL : code(sent);
}

/* reply(rid): the second half (poll and read) of a step posted with `post`: the reply list,
 * or RECEIVE or ASLEEP for the Python path. */
static PyObject *client_reply(ClientSteps *self, PyObject *rid) {
    Side *side = &self->side;
    uint64_t id;
    if (!side->held || !rid_of(rid, &id)) return code(RECEIVE);
    long long in_seq = get_seq(side, s_in_seq);
    if (in_seq < 0) return NULL;
    return await_reply(self, rid, id, (uint32_t)(in_seq + 1));
}

static PyMethodDef client_methods[] = {
    {"step", (PyCFunction)(void (*)(void))client_step, METH_FASTCALL,
     "step(rid, action): the reply list, or the code handed to the Python path."},
    {"post", (PyCFunction)(void (*)(void))client_post, METH_FASTCALL,
     "post(rid, action): write and announce a step: DONE, WAKE or DECLINED."},
    {"reply", (PyCFunction)client_reply, METH_O,
     "reply(rid): the reply list of a posted step, or the code handed to the Python path."},
    {"release", (PyCFunction)client_release, METH_NOARGS,
     "Drop every view of the slots (the region may then close). Idempotent."},
    {NULL, NULL, 0, NULL},
};

STEPS_TYPE(client, ClientSteps,
           "The client's slot steps over one link, compiled (see the module).", );

#endif  /* RLMESH__SLOTS_CLIENT_H */
