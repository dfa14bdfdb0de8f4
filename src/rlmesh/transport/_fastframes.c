/* Fixed-shape step frames over a socket, compiled: each side's step in one call.
 *
 * rlmesh.transport.fastframes is the Python face. The two types here follow the pure-Python
 * path byte for byte (rlmesh.wire.fixed.StepFrames for the frames' bytes,
 * rlmesh.transport.stream.Connection for their framing, polling and blocking) and cover only
 * its common case:
 *
 *   ClientFrames.step(rid, action)  encodes the STEP request, sends it, receives the reply's
 *                                   frame and decodes it;
 *   ServerFrames.take()             receives a STEP request's frame and decodes it;
 *   ServerFrames.put(rid, *results) encodes the reply and sends it.
 *
 * Whatever else comes (a value of another layout, a frame of another kind, the peer gone)
 * returns a code and the Python path goes on from there, with the same state: the
 * connection's staging buffer (its _buf, _start and _end) and spin policy stay the Python
 * objects' own. A failing system call raises what the socket module raises for it (an
 * expired SO_RCVTIMEO or SO_SNDTIMEO: BlockingIOError), after the staging state is stored.
 */
#include "_fastcommon.h"

#include <errno.h>

#define PREFIX 8          /* rlmesh.transport.stream.PREFIX: "<II", header and body lengths */
#define READ_AHEAD 8192   /* stream._READ: how far past a frame one read may go */
#define MAX_RID_BYTES 5   /* 0xce and a u32: the longest request id of a fixed frame */
#define MAX_INT_BYTES 9   /* 0xcf or 0xd3 and eight bytes */

static PyObject *s_buf, *s_start, *s_end, *s_spin, *s_stolen, *zero;

/* -- one array field of a frame ------------------------------------------------------------- */

typedef struct {
    PyObject *prefix;   /* the msgpack ext prefix the general encoder writes (bytes) */
    PyObject *scratch;  /* an array of the field's layout, overwritten with each value */
    PyObject *copy;     /* its bound copy (NULL where the field is never read) */
    Py_buffer bytes;    /* the scratch array's bytes */
    Layout layout;
    int held;
} Field;

static void field_drop(Field *field) {
    if (field->held) {
        PyBuffer_Release(&field->bytes);
        field->held = 0;
    }
    Py_CLEAR(field->prefix);
    Py_CLEAR(field->scratch);
    Py_CLEAR(field->copy);
}

static int field_traverse(Field *field, visitproc visit, void *arg) {
    Py_VISIT(field->prefix);
    Py_VISIT(field->scratch);
    Py_VISIT(field->copy);
    return 0;
}

/* A field from (prefix, scratch); `copied`: bind the scratch's copy. -1 with an exception. */
static int field_init(Field *field, PyObject *pair, int copied) {
    PyObject *prefix, *scratch;
    if (!PyTuple_Check(pair) || !PyArg_ParseTuple(pair, "O!O", &PyBytes_Type, &prefix, &scratch)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a field is (prefix, scratch)");
        return -1;
    }
    if (layout_of(&field->layout, scratch) < 0) return -1;
    if (PyObject_GetBuffer(scratch, &field->bytes, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    field->held = 1;
    Py_INCREF(prefix);
    field->prefix = prefix;
    Py_INCREF(scratch);
    field->scratch = scratch;
    if (copied && (field->copy = bound(scratch, "copy")) == NULL) return -1;
    return 0;
}

static inline Py_ssize_t prefix_len(const Field *field) {
    return PyBytes_GET_SIZE(field->prefix);
}

static inline const char *prefix_of(const Field *field) {
    return PyBytes_AS_STRING(field->prefix);
}

/* Whether `at` holds the field's prefix; its bytes then go into the scratch array. */
static int field_read(Field *field, const char *at) {
    Py_ssize_t n = prefix_len(field);
    if (memcmp(at, prefix_of(field), (size_t)n) != 0) return 0;
    memcpy(field->bytes.buf, at + n, (size_t)field->layout.nbytes);
    return 1;
}

/* The field's prefix and `value`'s bytes at `at`: the bytes written, 0 if not of the layout. */
static Py_ssize_t field_write(Field *field, PyObject *ndarray, PyObject *value, char *at) {
    Py_ssize_t n = prefix_len(field);
    if (!copy_array(ndarray, &field->layout, value, at + n)) return 0;
    memcpy(at, prefix_of(field), (size_t)n);
    return n + field->layout.nbytes;
}

/* -- one side of one connection -------------------------------------------------------------- */

typedef struct {
    PyObject *conn;      /* the Connection: its _buf, _start, _end and spin */
    PyObject *fileno;    /* its socket's bound fileno (-1 once closed) */
    PyObject *policy;    /* its SpinPolicy */
    PyObject *start, *missed, *stolen_yield, *blocked;  /* the policy's bound methods */
    PyObject *ndarray;   /* numpy.ndarray */
    char *out;           /* the outgoing frame */
} Stream;

static void stream_drop(Stream *s) {
    Py_CLEAR(s->conn);
    Py_CLEAR(s->fileno);
    Py_CLEAR(s->policy);
    Py_CLEAR(s->start);
    Py_CLEAR(s->missed);
    Py_CLEAR(s->stolen_yield);
    Py_CLEAR(s->blocked);
    Py_CLEAR(s->ndarray);
    PyMem_Free(s->out);
    s->out = NULL;
}

static int stream_traverse(Stream *s, visitproc visit, void *arg) {
    Py_VISIT(s->conn);
    Py_VISIT(s->fileno);
    Py_VISIT(s->policy);
    Py_VISIT(s->start);
    Py_VISIT(s->missed);
    Py_VISIT(s->stolen_yield);
    Py_VISIT(s->blocked);
    Py_VISIT(s->ndarray);
    return 0;
}

static int stream_init(Stream *s, PyObject *conn, PyObject *ndarray, Py_ssize_t out_size) {
    Py_INCREF(conn);
    s->conn = conn;
    Py_INCREF(ndarray);
    s->ndarray = ndarray;
    PyObject *sock = PyObject_GetAttrString(conn, "sock");
    if (sock == NULL) return -1;
    s->fileno = bound(sock, "fileno");
    Py_DECREF(sock);
    if (s->fileno == NULL || (s->policy = PyObject_GetAttrString(conn, "_policy")) == NULL
            || (s->start = bound(s->policy, "start")) == NULL
            || (s->missed = bound(s->policy, "missed")) == NULL
            || (s->stolen_yield = bound(s->policy, "stolen_yield")) == NULL
            || (s->blocked = bound(s->policy, "blocked")) == NULL)
        return -1;
    if ((s->out = PyMem_Malloc((size_t)out_size)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The socket's descriptor now: -1 once it is closed (or an exception, with -2). Read again
 * after every point where another thread may have run, which may have closed the socket. */
static int current_fd(Stream *s) {
    PyObject *got = PyObject_CallNoArgs(s->fileno);
    if (got == NULL) return -2;
    long fd = PyLong_AsLong(got);
    Py_DECREF(got);
    if (fd == -1 && PyErr_Occurred()) return -2;
    return fd < 0 || fd > 0x7fffffffL ? -1 : (int)fd;
}

/* Send all of `data`, as socket.sendall does: 0, or -1 with the exception it raises. */
static int send_all(Stream *s, const char *data, Py_ssize_t size) {
    Py_ssize_t sent = 0;
    while (sent < size) {
        int fd = current_fd(s);
        if (fd == -2) return -1;
        if (fd < 0) {
            errno = EBADF;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = send(fd, data + sent, (size_t)(size - sent), MSG_NOSIGNAL);
        Py_END_ALLOW_THREADS
        if (n >= 0) {
            sent += n;
        } else if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        } else if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
    return 0;
}

/* -- the staging buffer of the connection (its _buf, _start, _end) ----------------------------- */

typedef struct {
    PyObject *owner;  /* the bytearray */
    Py_buffer view;
    Py_ssize_t start, end;
} Staging;

static Py_ssize_t get_index(PyObject *conn, PyObject *name) {
    PyObject *value = PyObject_GetAttr(conn, name);
    if (value == NULL) return -1;
    Py_ssize_t index = PyLong_AsSsize_t(value);
    Py_DECREF(value);
    return index;
}

static int staging_open(Stream *s, Staging *st) {
    if ((st->owner = PyObject_GetAttr(s->conn, s_buf)) == NULL) return -1;
    if (PyObject_GetBuffer(st->owner, &st->view, PyBUF_WRITABLE) < 0) {
        Py_CLEAR(st->owner);
        return -1;
    }
    st->start = get_index(s->conn, s_start);
    st->end = st->start < 0 ? -1 : get_index(s->conn, s_end);
    if (st->start < 0 || st->end < st->start || st->end > st->view.len) {
        PyBuffer_Release(&st->view);
        Py_CLEAR(st->owner);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a staging buffer out of range");
        return -1;
    }
    if (st->start == st->end) st->start = st->end = 0;
    return 0;
}

/* Store _start and _end back and let the buffer go; passes `result` on (NULL: it keeps any
 * exception already set, storing what it can). */
static PyObject *staging_close(Stream *s, Staging *st, PyObject *result) {
    PyObject *type, *value, *trace;
    PyErr_Fetch(&type, &value, &trace);
    PyObject *start = PyLong_FromSsize_t(st->start), *end = PyLong_FromSsize_t(st->end);
    int failed = start == NULL || end == NULL || PyObject_SetAttr(s->conn, s_start, start) < 0
        || PyObject_SetAttr(s->conn, s_end, end) < 0;
    Py_XDECREF(start);
    Py_XDECREF(end);
    PyBuffer_Release(&st->view);
    Py_CLEAR(st->owner);
    if (type != NULL) {
        PyErr_Restore(type, value, trace);
        Py_XDECREF(result);
        return NULL;
    }
    if (failed) {
        Py_XDECREF(result);
        return NULL;
    }
    return result;
}

/* Read what the socket holds without blocking for up to `budget` ns, yielding between reads
 * (Connection._poll): 1 `need` bytes are here, 0 not (block for them), -1 an exception. */
static int poll_fill(Stream *s, Staging *st, Py_ssize_t need, long long budget) {
    char *buf = st->view.buf;
    long long started = now_ns(), mark = started;
    for (;;) {
        int fd = current_fd(s);
        if (fd < 0) return fd == -2 ? -1 : 0;
        Py_ssize_t room = Py_MIN(st->view.len, Py_MAX(st->start + need, st->end + READ_AHEAD));
        ssize_t got = recv(fd, buf + st->end, (size_t)(room - st->end), MSG_DONTWAIT);
        if (got > 0) {
            st->end += got;
            if (st->end - st->start >= need)
                return PyObject_SetAttr(s->policy, s_stolen, zero) < 0 ? -1 : 1;
            continue;
        }
        if (got == 0) return 0;  /* (the peer closed: the blocking read reports it) */
        if (errno == EINTR) {
            if (PyErr_CheckSignals() < 0) return -1;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        Py_BEGIN_ALLOW_THREADS
        sched_yield();
        Py_END_ALLOW_THREADS
        int verdict = poll_verdict(s->stolen_yield, s->missed, started, &mark, budget);
        if (verdict != POLL_ON) return verdict < 0 ? -1 : 0;
    }
}

/* Make `need` bytes from the staging start available (Connection._fill): 1 they are, 0 the
 * peer closed or the socket did meanwhile (the Python path reports it), -1 an exception. */
static int fill(Stream *s, Staging *st, Py_ssize_t need) {
    if (st->end - st->start >= need) return 1;
    char *buf = st->view.buf;
    if (need > st->view.len) return 0;  /* (never for a fixed frame: the Python path) */
    if (st->start + need > st->view.len) {
        memmove(buf, buf + st->start, (size_t)(st->end - st->start));
        st->end -= st->start;
        st->start = 0;
    }
    long long blocked_at = 0;
    PyObject *spin = PyObject_GetAttr(s->conn, s_spin);
    if (spin == NULL) return -1;
    int spinning = PyObject_IsTrue(spin);
    Py_DECREF(spin);
    if (spinning < 0) return -1;
    if (spinning) {
        PyObject *got = PyObject_CallNoArgs(s->start);
        if (got == NULL) return -1;
        long long budget = PyLong_AsLongLong(got);
        Py_DECREF(got);
        if (budget == -1 && PyErr_Occurred()) return -1;
        if (budget > 0 && poll_fill(s, st, need, budget) < 0) return -1;
        if (st->end - st->start >= need) return 1;
        blocked_at = now_ns();
    }
    if (PyErr_CheckSignals() < 0) return -1;  /* (one that came while this call ran) */
    while (st->end - st->start < need) {
        int fd = current_fd(s);
        if (fd < 0) return fd == -2 ? -1 : 0;
        Py_ssize_t room = Py_MIN(st->view.len, Py_MAX(st->start + need, st->end + READ_AHEAD));
        ssize_t got;
        Py_BEGIN_ALLOW_THREADS
        got = recv(fd, buf + st->end, (size_t)(room - st->end), 0);
        Py_END_ALLOW_THREADS
        if (got > 0) {
            st->end += got;
        } else if (got == 0) {
            return 0;
        } else if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        } else if (PyErr_CheckSignals() < 0) {
            return -1;
        }
    }
    if (blocked_at) {
        PyObject *done = PyObject_CallFunction(s->blocked, "L", now_ns() - blocked_at);
        if (done == NULL) return -1;
        Py_DECREF(done);
    }
    return 1;
}

/* The frame at the staging start, if its prefix says a header of exactly `size` bytes and no
 * body: 1 (all of it is then here), 0 another frame (or the peer gone), -1 an exception. */
static int fill_frame(Stream *s, Staging *st, Py_ssize_t low, Py_ssize_t high,
                      Py_ssize_t *size) {
    int got = fill(s, st, PREFIX);
    if (got <= 0) return got;
    const unsigned char *at = (const unsigned char *)st->view.buf + st->start;
    uint32_t hlen = (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16
        | (uint32_t)at[3] << 24;
    uint32_t blen = (uint32_t)at[4] | (uint32_t)at[5] << 8 | (uint32_t)at[6] << 16
        | (uint32_t)at[7] << 24;
    if (blen != 0 || hlen < (uint32_t)low || hlen > (uint32_t)high) return 0;
    *size = (Py_ssize_t)hlen;
    return fill(s, st, PREFIX + (Py_ssize_t)hlen);
}

static void put_prefix(char *at, Py_ssize_t hlen) {
    for (int i = 0; i < 4; i++) at[i] = (char)((uint64_t)hlen >> (8 * i));
    memset(at + 4, 0, 4);
}

/* `value`'s low `n` bytes at `at`, big-endian (msgpack's order). */
static void put_big_endian(char *at, uint64_t value, int n) {
    for (int i = 0; i < n; i++) at[i] = (char)(value >> (8 * (n - 1 - i)));
}

/* The shortest msgpack form of an unsigned int, as msgpack.packb writes it (and a request
 * id, StepFrames' _rid_bytes): its size. */
static Py_ssize_t put_uint(char *at, uint64_t value) {
    if (value < 0x80) {
        at[0] = (char)value;
        return 1;
    }
    int n = value < 0x100 ? 1 : value < 0x10000 ? 2 : value < 0x100000000ULL ? 4 : 8;
    at[0] = (char)(n == 1 ? 0xcc : n == 2 ? 0xcd : n == 4 ? 0xce : 0xcf);
    put_big_endian(at + 1, value, n);
    return 1 + n;
}

/* A request id of a fixed frame (below 2**32, as a Python int), or 0. */
static int frame_rid(PyObject *rid, uint64_t *id) {
    return rid_of(rid, id) && *id <= 0xffffffffULL;
}

static uint64_t big_endian(const unsigned char *at, int n) {
    uint64_t value = 0;
    for (int i = 0; i < n; i++) value = value << 8 | at[i];
    return value;
}

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
        if (field_init(field, PyTuple_GET_ITEM(rewards, i), 0) < 0) return -1;
        PyObject *item = PySequence_GetItem(field->scratch, 0);
        if (item == NULL) return -1;
        side->reward_types[i] = (PyObject *)Py_TYPE(item);
        Py_INCREF(side->reward_types[i]);
        int exact = PyFloat_CheckExact(item);  /* (a Python float is the float form's) */
        Py_DECREF(item);
        if (field->layout.nbytes != field->bytes.len || exact) {
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
        side->reply_size += prefix_len(&side->replies[i]) + side->replies[i].layout.nbytes;
    }
    return side_rewards(side, rewards);
}

/* A NumPy scalar's field at `at`: its prefix and the scalar's bytes; the bytes written, 0
 * if `value` is not one of the field's layout. */
static Py_ssize_t scalar_write(Field *field, PyObject *value, char *at) {
    Py_buffer b;
    if (PyObject_GetBuffer(value, &b, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t k = prefix_len(field), n = 0;
    if (b.len == field->layout.nbytes) {
        memcpy(at, prefix_of(field), (size_t)k);
        memcpy(at + k, b.buf, (size_t)b.len);
        n = k + b.len;
    }
    PyBuffer_Release(&b);
    return n;
}

/* The type object of NAME's functions (NAME##_drop, _traverse, _init and _methods, defined
 * before FRAMES_TYPE). */
#define FRAMES_TYPE(NAME, TYPE, DOC)                                                        \
    GC_FREE(NAME, TYPE)                                                                     \
    GC_TYPE("_fastframes", NAME, TYPE, DOC, NULL)

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
    put_prefix(out, hlen);
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
        at += prefix_len(&side->replies[i]) + side->replies[i].layout.nbytes;
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
    for (int i = 0; i < side->fields; i++) {
        if ((item = PyObject_CallNoArgs(side->replies[i].copy)) == NULL) goto fail;
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
    if (send_all(s, s->out, size) < 0) return NULL;
    /* sent: from here on the Python path can only go on, never start over */
    Staging st;
    if (staging_open(s, &st) < 0) return NULL;
    Py_ssize_t rid_bytes = id < 0x80 ? 1 : id < 0x100 ? 2 : id < 0x10000 ? 3 : 5;
    Py_ssize_t want = self->side.reply_size - 1 + rid_bytes, got_size = 0;
    int got = fill_frame(s, &st, want, want + self->side.reply_extra, &got_size);
    if (got <= 0) return staging_close(s, &st, got < 0 ? NULL : code(RECEIVE));
    PyObject *reply = decode_reply(self, (const char *)st.view.buf + st.start + PREFIX,
                                   got_size, s->out + PREFIX, rid_bytes, args[0]);
    if (reply == Py_None) {  /* (another reply: left in the buffer for the Python path) */
        Py_DECREF(reply);
        return staging_close(s, &st, code(RECEIVE));
    }
    if (reply != NULL) st.start += PREFIX + got_size;
    return staging_close(s, &st, reply);
}

static PyMethodDef client_methods[] = {
    {"step", (PyCFunction)(void (*)(void))client_step, METH_FASTCALL,
     "step(rid, action): the reply list, or the code handed to the Python path."},
    {NULL, NULL, 0, NULL},
};

FRAMES_TYPE(client, ClientFrames,
            "The client's fixed-frame steps over one connection, compiled (see the module).");

/* -- the server ---------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Side side;
    Py_ssize_t request_min, request_max;  /* a fixed request's header sizes */
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
    int got = fill_frame(s, &st, self->request_min, self->request_max, &size);
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
        Py_ssize_t n = field_write(&self->side.replies[0], s->ndarray, args[1], at);
        if (n == 0) return code(DECLINED);
        at += n;
        if (form != NULL) {
            if ((n = scalar_write(form, reward, at)) == 0) return code(DECLINED);
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
            Py_ssize_t n = field_write(&self->side.replies[i], s->ndarray, args[1 + i], at);
            if (n == 0) return code(DECLINED);
            at += n;
        }
    }
    *at++ = (char)0x80;
    put_prefix(out, at - out - PREFIX);
    if (send_all(s, out, at - out) < 0) return NULL;
    return code(DONE);
}

static PyMethodDef server_methods[] = {
    {"take", (PyCFunction)server_take, METH_NOARGS,
     "take(): the next fixed STEP request's (rid, action), or RECEIVE."},
    {"put", (PyCFunction)(void (*)(void))server_put, METH_FASTCALL,
     "put(rid, obs, reward, terminated, truncated, info): DONE (sent) or DECLINED."},
    {NULL, NULL, 0, NULL},
};

FRAMES_TYPE(server, ServerFrames,
            "The server's fixed-frame steps over one connection, compiled (see the module).");

/* -- the module ------------------------------------------------------------------------------ */

static struct PyModuleDef fastframes_module = {
    PyModuleDef_HEAD_INIT, "_fastframes",
    "Fixed-shape step frames over a socket, compiled (see rlmesh.transport.fastframes).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastframes(void) {
    if (PyType_Ready(&ClientFramesType) < 0 || PyType_Ready(&ServerFramesType) < 0)
        return NULL;
    s_buf = PyUnicode_InternFromString("_buf");
    s_start = PyUnicode_InternFromString("_start");
    s_end = PyUnicode_InternFromString("_end");
    s_spin = PyUnicode_InternFromString("spin");
    s_stolen = PyUnicode_InternFromString("stolen");
    zero = PyLong_FromLong(0);
    if (s_buf == NULL || s_start == NULL || s_end == NULL || s_spin == NULL || s_stolen == NULL
            || zero == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&fastframes_module);
    if (module == NULL) return NULL;
    if (add_type(module, "ClientFrames", &ClientFramesType) < 0
            || add_type(module, "ServerFrames", &ServerFramesType) < 0
            || PyModule_AddIntConstant(module, "DECLINED", DECLINED) < 0
            || PyModule_AddIntConstant(module, "DONE", DONE) < 0
            || PyModule_AddIntConstant(module, "RECEIVE", RECEIVE) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
