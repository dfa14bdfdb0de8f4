/* The server's fixed-frame steps: ServerFrames.take and put, and serve (_serve_step.h).
 *
 * A part of _fastframes.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__FRAMES_SERVER_H
#define RLMESH__FRAMES_SERVER_H

/* -- the server ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Side side;
    Py_ssize_t request_min, request_max;  /* a fixed request's header sizes */
    Serving serving;  /* serve()'s state */
} ServerFrames;

static void server_drop(ServerFrames *self) {
    side_drop(&self->side);
}

static int server_traverse(ServerFrames *self, visitproc visit, void *arg) {
    return side_traverse(&self->side, visit, arg);
}

/* ServerFrames(conn, ndarray, action, scalar, ints, replies, rewards, max_header)
 * action, scalar, replies, rewards: as ClientFrames'; the scalar's scratch has one item. A
 * request header larger than max_header is never taken (the Python path refuses it). */
static int server_init(ServerFrames *self, PyObject *args, PyObject *kwds) {
    PyObject *conn, *ndarray, *action, *scalar, *replies, *rewards;
    int ints;
    Py_ssize_t max_header;
    Side *side = &self->side;
    if (no_keywords(kwds, "ServerFrames") < 0
            || first_init(side->stream.conn != NULL, "ServerFrames") < 0)
        return -1;
    if (!PyArg_ParseTuple(args, "OOOOpO!O!n", &conn, &ndarray, &action, &scalar, &ints,
                          &PyTuple_Type, &replies, &PyTuple_Type, &rewards, &max_header))
        return -1;
    server_drop(self);
    if (side_fields(side, action, scalar, 1, ints, replies, rewards) < 0) goto fail;
    Py_ssize_t low = prefix_len(&side->action) + side->action.layout.nbytes, high = low;
    if (side->scalar.held) {
        Py_ssize_t n = prefix_len(&side->scalar) + side->scalar.layout.nbytes;
        low = Py_MIN(low, n);
        high = Py_MAX(high, n);
    }
    if (ints) {
        low = 1;
        high = Py_MAX(high, MAX_INT_BYTES);
    }
    self->request_min = 2 + 1 + low;
    self->request_max = Py_MIN(2 + MAX_RID_BYTES + high, max_header);
    if (stream_init(&side->stream, conn, ndarray,
                    PREFIX + side->reply_size - 1 + MAX_RID_BYTES + side->reply_extra) < 0)
        goto fail;
    return 0;
fail:
    server_drop(self);
    return -1;
}

/* A msgpack int of exactly `n` bytes at `at` (StepFrames.decode_request's int form): a new
 * int, Py_None if not one (a new reference either way), or NULL with an exception. */
static PyObject *read_int(const unsigned char *at, Py_ssize_t n) {
    unsigned char first = at[0];
    if (first < 0x80 && n == 1) return PyLong_FromLong(first);
    if (first >= 0xe0 && n == 1) return PyLong_FromLong((long)first - 0x100);
    int width = first == 0xcc || first == 0xd0 ? 1 : first == 0xcd || first == 0xd1 ? 2
        : first == 0xce || first == 0xd2 ? 4 : first == 0xcf || first == 0xd3 ? 8 : 0;
    if (width == 0 || n != 1 + width) Py_RETURN_NONE;
    uint64_t raw = big_endian(at + 1, width);
    if (first <= 0xcf) return PyLong_FromUnsignedLongLong(raw);
    int shift = 64 - 8 * width;  /* sign-extend */
    return PyLong_FromLongLong((long long)(raw << shift) >> shift);
}

/* The action of a fixed request's `n` bytes at `at`: a new reference, Py_None if of no
 * fixed form, NULL with an exception. */
static PyObject *read_action(ServerFrames *self, const char *at, Py_ssize_t n) {
    Field *field = &self->side.action;
    if (n == prefix_len(field) + field->layout.nbytes && field_read(field, at))
        return PyObject_CallNoArgs(field->copy);
    field = &self->side.scalar;  /* (its scratch has one item: a NumPy scalar of it) */
    if (field->held && n == prefix_len(field) + field->layout.nbytes && field_read(field, at))
        return PySequence_GetItem(field->scratch, 0);
    if (self->side.ints && n >= 1 && n <= MAX_INT_BYTES)
        return read_int((const unsigned char *)at, n);
    Py_RETURN_NONE;
}

static PyObject *server_take(ServerFrames *self, PyObject *unused) {
    (void)unused;
    Stream *s = &self->side.stream;
    if (s->conn == NULL) return code(RECEIVE);
    Staging st;
    if (staging_open(s, &st) < 0) return NULL;
    Py_ssize_t size = 0;
    int got = fill_frame(s, &st, self->request_min, self->request_max, 0, &size);
    if (got <= 0) return staging_close(s, &st, got < 0 ? NULL : code(RECEIVE));
    const unsigned char *header = (const unsigned char *)st.view.buf + st.start + PREFIX;
    unsigned char first = header[2];
    Py_ssize_t width = first < 0x80 ? 1 : first == 0xcc ? 2 : first == 0xcd ? 3
        : first == 0xce ? 5 : 0;
    if (width == 0 || memcmp(header, "\x93\x02", 2) != 0 || size < 2 + width + 1)
        return staging_close(s, &st, code(RECEIVE));
    uint64_t rid = width == 1 ? first : big_endian(header + 3, (int)width - 1);
    PyObject *action = read_action(self, (const char *)header + 2 + width, size - 2 - width);
    if (action == NULL) return staging_close(s, &st, NULL);
    if (action == Py_None) {
        Py_DECREF(action);
        return staging_close(s, &st, code(RECEIVE));
    }
    st.start += PREFIX + size;
    PyObject *id = PyLong_FromUnsignedLongLong(rid);
    PyObject *taken = id == NULL ? NULL : PyTuple_Pack(2, id, action);
    Py_XDECREF(id);
    Py_DECREF(action);
    return staging_close(s, &st, taken);
}

/* Reply field `i` at `at`: its prefix and `value`'s bytes, or, for a field in the body, its
 * prefix alone and `value` held in `body`. The header bytes written; 0 if `value` is not of
 * the layout (nothing held). */
static Py_ssize_t put_field(ServerFrames *self, int i, PyObject *value, char *at,
                            Py_buffer *body) {
    Field *field = &self->side.replies[i];
    if (field->make == NULL) return field_write(field, self->side.stream.ndarray, value, at);
    if (!hold_array(self->side.stream.ndarray, &field->layout, value, body)) return 0;
    memcpy(at, prefix_of(field), (size_t)prefix_len(field));
    return prefix_len(field);
}

static PyObject *server_put(ServerFrames *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "put(rid, obs, reward, terminated, truncated, info)");
        return NULL;
    }
    Stream *s = &self->side.stream;
    uint64_t id;
    PyObject *info = args[5];
    if (s->conn == NULL || !frame_rid(args[0], &id) || !PyDict_CheckExact(info)
            || PyDict_GET_SIZE(info) != 0)
        return code(DECLINED);
    char *out = s->out, *at = out + PREFIX;
    Py_buffer body;  /* (the observation, where it travels in the body) */
    body.obj = NULL;
    body.len = 0;
    memcpy(at, "\x97\x00", 2);
    at += 2;
    at += put_uint(at, id);
    if (self->side.fields == 1) {
        PyObject *reward = args[2], *terminated = args[3], *truncated = args[4];
        Field *form = NULL;  /* (a NumPy scalar reward's field; NULL for a float) */
        for (int i = 0; i < self->side.n_rewards; i++)
            if ((PyObject *)Py_TYPE(reward) == self->side.reward_types[i])
                form = &self->side.rewards[i];
        if ((form == NULL && !PyFloat_CheckExact(reward))
                || Py_TYPE(terminated) != &PyBool_Type || Py_TYPE(truncated) != &PyBool_Type)
            return code(DECLINED);
        Py_ssize_t n = put_field(self, 0, args[1], at, &body);
        if (n == 0) return code(DECLINED);
        at += n;
        if (form != NULL) {
            if ((n = scalar_write(form, reward, at)) == 0) goto declined;
            at += n;
        } else {
            double value = PyFloat_AS_DOUBLE(reward);
            uint64_t bits;
            memcpy(&bits, &value, 8);
            *at++ = (char)0xcb;
            put_big_endian(at, bits, 8);
            at += 8;
        }
        *at++ = (char)(terminated == Py_True ? 0xc3 : 0xc2);
        *at++ = (char)(truncated == Py_True ? 0xc3 : 0xc2);
    } else {
        for (int i = 0; i < 4; i++) {
            Py_ssize_t n = put_field(self, i, args[1 + i], at, &body);
            if (n == 0) goto declined;
            at += n;
        }
    }
    *at++ = (char)0x80;
    put_prefix(out, at - out - PREFIX, body.len);
    int failed = send_all(s, out, at - out, body.obj != NULL ? body.buf : NULL, body.len);
    if (body.obj != NULL) PyBuffer_Release(&body);
    return failed ? NULL : code(DONE);
declined:
    if (body.obj != NULL) PyBuffer_Release(&body);
    return code(DECLINED);
}

SERVE_METHOD(server, ServerFrames)

static PyMethodDef server_methods[] = {
    SERVE_METHOD_DEF(server),
    {"take", (PyCFunction)server_take, METH_NOARGS,
     "take(): the next fixed STEP request's (rid, action), or RECEIVE."},
    {"put", (PyCFunction)(void (*)(void))server_put, METH_FASTCALL,
     "put(rid, obs, reward, terminated, truncated, info): DONE (sent) or DECLINED."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef server_getset[] = {
    SERVING_GETSET(ServerFrames)
    {NULL, NULL, NULL, NULL, NULL},
};

FRAMES_TYPE(server, ServerFrames,
            "The server's fixed-frame steps over one connection, compiled (see the module).",
            server_getset);

#endif  /* RLMESH__FRAMES_SERVER_H */
