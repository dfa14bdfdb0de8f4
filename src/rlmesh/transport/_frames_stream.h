/* One side of one connection: its socket, staging buffer and spin policy (Connection's).
 *
 * A part of _fastframes.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__FRAMES_STREAM_H
#define RLMESH__FRAMES_STREAM_H

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

/* The socket's descriptor for a system call: -1 with an exception (EBADF once closed). */
static int live_fd(Stream *s) {
    int fd = current_fd(s);
    if (fd == -1) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
    }
    return fd < 0 ? -1 : fd;
}

/* After a send or receive failed with errno: 0 to retry it (interrupted, no signal's
 * exception to raise), -1 with the exception. */
static int call_failed(void) {
    if (errno != EINTR) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return PyErr_CheckSignals() < 0 ? -1 : 0;
}

/* Send all of `data`, then all of `extra` (a body; NULL and 0 for none), as socket.sendall
 * does with both joined: 0, or -1 with the exception it raises. */
static int send_all(Stream *s, const char *data, Py_ssize_t size, const char *extra,
                    Py_ssize_t extra_size) {
    Py_ssize_t sent = 0, total = size + extra_size;
    while (sent < total) {
        int fd = live_fd(s);
        if (fd < 0) return -1;
        struct iovec pieces[2];
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = pieces;
        if (sent < size) {
            pieces[msg.msg_iovlen].iov_base = (void *)(data + sent);
            pieces[msg.msg_iovlen++].iov_len = (size_t)(size - sent);
        }
        if (extra_size > 0) {
            Py_ssize_t from = sent < size ? 0 : sent - size;
            pieces[msg.msg_iovlen].iov_base = (void *)(extra + from);
            pieces[msg.msg_iovlen++].iov_len = (size_t)(extra_size - from);
        }
        ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        Py_END_ALLOW_THREADS
        if (n >= 0)
            sent += n;
        else if (call_failed() < 0)
            return -1;
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

/* Whether the socket `ctx` points at has bytes to read (a came_fn). */
static int socket_readable(const void *ctx) {
    char byte;
    return recv(*(const int *)ctx, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
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
        int verdict = poll_verdict(s->stolen_yield, s->missed, started, &mark, budget,
                                   socket_readable, &fd);
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
        long long started = now_ns();
        PyObject *got = PyObject_CallNoArgs(s->start);
        if (got == NULL) return -1;
        long long budget = PyLong_AsLongLong(got);
        Py_DECREF(got);
        if (budget == -1 && PyErr_Occurred()) return -1;
        if (budget > 0 && poll_fill(s, st, need, budget) < 0) return -1;
        if (st->end - st->start >= need) return 1;
        blocked_at = started;  /* (the policy learns how long the peer took, poll included) */
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

/* The frame at the staging start, if its prefix says a header of `low` to `high` bytes and a
 * body of exactly `body` bytes: 1 (its header is then here, its size in `size`), 0 another
 * frame (or the peer gone), -1 an exception. */
static int fill_frame(Stream *s, Staging *st, Py_ssize_t low, Py_ssize_t high, Py_ssize_t body,
                      Py_ssize_t *size) {
    int got = fill(s, st, PREFIX);
    if (got <= 0) return got;
    const unsigned char *at = (const unsigned char *)st->view.buf + st->start;
    uint32_t hlen = (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16
        | (uint32_t)at[3] << 24;
    uint32_t blen = (uint32_t)at[4] | (uint32_t)at[5] << 8 | (uint32_t)at[6] << 16
        | (uint32_t)at[7] << 24;
    if (blen != (uint32_t)body || hlen < (uint32_t)low || hlen > (uint32_t)high) return 0;
    *size = (Py_ssize_t)hlen;
    return fill(s, st, PREFIX + (Py_ssize_t)hlen);
}

/* The `n` bytes of a body, from the staging start (the header before it consumed) on, into
 * `dest`: what is staged is copied, the rest received in place. 0, or -1 with an exception
 * (ConnectionResetError where the peer closes mid-body: the frame is lost either way). */
static int fill_body(Stream *s, Staging *st, char *dest, Py_ssize_t n) {
    Py_ssize_t staged = Py_MIN(n, st->end - st->start), got = staged;
    memcpy(dest, (char *)st->view.buf + st->start, (size_t)staged);
    st->start += staged;
    while (got < n) {
        int fd = live_fd(s);
        if (fd < 0) return -1;
        ssize_t k;
        Py_BEGIN_ALLOW_THREADS
        k = recv(fd, dest + got, (size_t)(n - got), 0);
        Py_END_ALLOW_THREADS
        if (k > 0) {
            got += k;
        } else if (k == 0) {
            PyErr_SetString(PyExc_ConnectionResetError,
                            "the peer closed the connection in the middle of a reply's body");
            return -1;
        } else if (call_failed() < 0) {
            return -1;
        }
    }
    return 0;
}

#endif  /* RLMESH__FRAMES_STREAM_H */
