/* The client's fixed-frame step: ClientFrames.step (encode, send, receive, decode).
 *
 * A part of _fastframes.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__FRAMES_CLIENT_H
#define RLMESH__FRAMES_CLIENT_H

/* -- the client ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Side side;
    PyObject *scalar_type;  /* a Discrete action's NumPy scalar type, or None */
    Py_ssize_t peer_max;    /* the largest request the server takes */
} ClientFrames;

static void client_drop(ClientFrames *self) {
    side_drop(&self->side);
    Py_CLEAR(self->scalar_type);
}

static int client_traverse(ClientFrames *self, visitproc visit, void *arg) {
    Py_VISIT(self->scalar_type);
    return side_traverse(&self->side, visit, arg);
}

/* ClientFrames(conn, ndarray, action, scalar, scalar_type, ints, replies, rewards, peer_max)
 * action: (prefix, scratch); scalar: (prefix, scratch) or None; replies, rewards: tuples of
 * fields (a reward's scratch has one item). */
static int client_init(ClientFrames *self, PyObject *args, PyObject *kwds) {
    PyObject *conn, *ndarray, *action, *scalar, *scalar_type, *replies, *rewards;
    int ints;
    Py_ssize_t peer_max;
    Side *side = &self->side;
    if (no_keywords(kwds, "ClientFrames") < 0
            || first_init(side->stream.conn != NULL, "ClientFrames") < 0)
        return -1;
    if (!PyArg_ParseTuple(args, "OOOOOpO!O!n", &conn, &ndarray, &action, &scalar,
                          &scalar_type, &ints, &PyTuple_Type, &replies, &PyTuple_Type,
                          &rewards, &peer_max))
        return -1;
    client_drop(self);
    if (side_fields(side, action, scalar, 0, ints, replies, rewards) < 0) goto fail;
    Py_ssize_t request = prefix_len(&side->action) + side->action.layout.nbytes;
    if (side->scalar.held)
        request = Py_MAX(request, prefix_len(&side->scalar) + side->scalar.layout.nbytes);
    if (stream_init(&side->stream, conn, ndarray,
                    PREFIX + 2 + MAX_RID_BYTES + Py_MAX(request, MAX_INT_BYTES)) < 0)
        goto fail;
    Py_INCREF(scalar_type);
    self->scalar_type = scalar_type;
    self->peer_max = peer_max;
    return 0;
fail:
    client_drop(self);
    return -1;
}

/* The canonical msgpack form of a Python int (as msgpack.packb writes it): its size, or 0. */
static Py_ssize_t put_int(char *at, PyObject *value) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;  /* (beyond an int64: the Python path) */
    }
    if (v >= 0) return put_uint(at, (uint64_t)v);
    if (v >= -32) {
        at[0] = (char)(0xe0 | (v & 0x1f));
        return 1;
    }
    int n = v >= -0x80 ? 1 : v >= -0x8000 ? 2 : v >= -0x80000000LL ? 4 : 8;
    at[0] = (char)(n == 1 ? 0xd0 : n == 2 ? 0xd1 : n == 4 ? 0xd2 : 0xd3);
    put_big_endian(at + 1, (uint64_t)v, n);
    return 1 + n;
}

/* The request's frame (prefix, [STEP, rid, action]) into the stream's buffer: its size, or
 * 0 if the action is not of a fixed layout (StepFrames.encode_request). */
static Py_ssize_t encode_request(ClientFrames *self, uint64_t rid, PyObject *action) {
    Side *side = &self->side;
    char *out = side->stream.out, *at = out + PREFIX + 2;
    at += put_uint(at, rid);
    PyTypeObject *type = Py_TYPE(action);
    Py_ssize_t n = 0;
    if ((PyObject *)type == self->scalar_type && side->scalar.held) {
        n = scalar_write(&side->scalar, action, at);
    } else if ((PyObject *)type == side->stream.ndarray) {
        n = field_write(&side->action, side->stream.ndarray, action, at);
    } else if (type == &PyLong_Type && side->ints) {
        n = put_int(at, action);
    }
    if (n == 0) return 0;
    Py_ssize_t hlen = at + n - out - PREFIX;
    put_prefix(out, hlen, 0);
    memcpy(out + PREFIX, "\x93\x02", 2);
    return PREFIX + hlen;
}

/* The reply of `size` header bytes at the staging start, if it is the fixed reply to the
 * request of `request` (its rid at byte 2): the reply list, Py_None if not (a new reference
 * either way), NULL with an exception. */
static PyObject *decode_reply(ClientFrames *self, const char *header, Py_ssize_t size,
                              const char *request, Py_ssize_t rid_bytes, PyObject *rid) {
    Side *side = &self->side;
    int one = side->fields == 1;
    if (memcmp(header, "\x97\x00", 2) != 0 || memcmp(header + 2, request + 2, (size_t)rid_bytes))
        Py_RETURN_NONE;
    const char *at = header + 2 + rid_bytes;
    for (int i = 0; i < side->fields; i++) {
        if (!field_read(&side->replies[i], at)) Py_RETURN_NONE;
        at += field_size(&side->replies[i]);
    }
    Field *reward = NULL;  /* (one env: the NumPy scalar reward's field, NULL for a float) */
    Py_ssize_t reward_size = FLOAT_REWARD;
    if (one && (unsigned char)at[0] != 0xcb) {
        for (int i = 0; i < side->n_rewards && reward == NULL; i++) {
            Field *form = &side->rewards[i];
            if (at - header + prefix_len(form) + form->layout.nbytes + 3 == size
                    && field_read(form, at))
                reward = form;
        }
        if (reward == NULL) Py_RETURN_NONE;
        reward_size = prefix_len(reward) + reward->layout.nbytes;
    }
    const unsigned char *tail = (const unsigned char *)at + (one ? reward_size - FLOAT_REWARD : 0);
    if (one && (tail[9] < 0xc2 || tail[9] > 0xc3 || tail[10] < 0xc2 || tail[10] > 0xc3))
        Py_RETURN_NONE;
    if (tail[one ? 11 : 0] != 0x80 || (const char *)tail - header + (one ? 12 : 1) != size)
        Py_RETURN_NONE;
    PyObject *reply = PyList_New(7), *item;
    if (reply == NULL) return NULL;
    Py_INCREF(zero);
    PyList_SET_ITEM(reply, 0, zero);
    Py_INCREF(rid);
    PyList_SET_ITEM(reply, 1, rid);
    for (int i = 0; i < side->fields; i++) {  /* (an array for the body: filled next) */
        Field *field = &side->replies[i];
        item = PyObject_CallNoArgs(field->make != NULL ? field->make : field->copy);
        if (item == NULL) goto fail;
        PyList_SET_ITEM(reply, 2 + i, item);
    }
    if (one) {
        if (reward != NULL) {
            item = PySequence_GetItem(reward->scratch, 0);
        } else {
            uint64_t bits = big_endian(tail + 1, 8);
            double value;
            memcpy(&value, &bits, 8);
            item = PyFloat_FromDouble(value);
        }
        if (item == NULL) goto fail;
        PyList_SET_ITEM(reply, 3, item);
        PyList_SET_ITEM(reply, 4, PyBool_FromLong(tail[9] == 0xc3));
        PyList_SET_ITEM(reply, 5, PyBool_FromLong(tail[10] == 0xc3));
    }
    if ((item = PyDict_New()) == NULL) goto fail;
    PyList_SET_ITEM(reply, 6, item);
    return reply;
fail:
    Py_DECREF(reply);
    return NULL;
}

/* The reply's body of `n` bytes into its observation (a new array of the layout): 0, or -1
 * with an exception. */
static int read_body(Stream *s, Staging *st, PyObject *reply, Py_ssize_t n) {
    Py_buffer b;
    PyObject *obs = PyList_GET_ITEM(reply, 2);
    if (PyObject_GetBuffer(obs, &b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
    int done = -1;
    if (b.len == n)
        done = fill_body(s, st, b.buf, n);
    else
        PyErr_SetString(PyExc_ValueError, "a field's make returned an array of another size");
    PyBuffer_Release(&b);
    return done;
}

static PyObject *client_step(ClientFrames *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "step(rid, action)");
        return NULL;
    }
    Stream *s = &self->side.stream;
    uint64_t id;
    if (s->conn == NULL || !frame_rid(args[0], &id)) return code(DECLINED);
    Py_ssize_t size = encode_request(self, id, args[1]);
    if (size == 0 || size - PREFIX > self->peer_max) return code(DECLINED);
    if (send_all(s, s->out, size, NULL, 0) < 0) return NULL;
    /* sent: from here on the Python path can only go on, never start over */
    Staging st;
    if (staging_open(s, &st) < 0) return NULL;
    Py_ssize_t rid_bytes = id < 0x80 ? 1 : id < 0x100 ? 2 : id < 0x10000 ? 3 : 5;
    Py_ssize_t want = self->side.reply_size - 1 + rid_bytes, got_size = 0;
    int got = fill_frame(s, &st, want, want + self->side.reply_extra, self->side.body,
                         &got_size);
    if (got <= 0) return staging_close(s, &st, got < 0 ? NULL : code(RECEIVE));
    PyObject *reply = decode_reply(self, (const char *)st.view.buf + st.start + PREFIX,
                                   got_size, s->out + PREFIX, rid_bytes, args[0]);
    if (reply == Py_None) {  /* (another reply: left in the buffer for the Python path) */
        Py_DECREF(reply);
        return staging_close(s, &st, code(RECEIVE));
    }
    if (reply != NULL) {
        st.start += PREFIX + got_size;
        if (self->side.body && read_body(s, &st, reply, self->side.body) < 0) Py_CLEAR(reply);
    }
    return staging_close(s, &st, reply);
}

static PyMethodDef client_methods[] = {
    {"step", (PyCFunction)(void (*)(void))client_step, METH_FASTCALL,
     "step(rid, action): the reply list, or the code handed to the Python path."},
    {NULL, NULL, 0, NULL},
};

FRAMES_TYPE(client, ClientFrames,
            "The client's fixed-frame steps over one connection, compiled (see the module).",
            NULL);

#endif  /* RLMESH__FRAMES_CLIENT_H */
