/* The fields of a fixed frame: arrays, NumPy scalars and msgpack's big-endian ints.
 *
 * An array field's values travel after its prefix in the header, or, for a field in the
 * body (an observation too large to travel inline), as the message body: its prefix then
 * names its place there, and the header holds none of its bytes.
 *
 * A part of _fastframes.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__FRAMES_FIELDS_H
#define RLMESH__FRAMES_FIELDS_H

/* -- one array field of a frame ------------------------------------------------------------- */

typedef struct {
    PyObject *prefix;   /* the msgpack ext prefix the general encoder writes (bytes) */
    PyObject *scratch;  /* an array of the field's layout, overwritten with each value */
    PyObject *copy;     /* its bound copy (NULL where the field is never read) */
    PyObject *make;     /* in the body: makes a new array of the layout (NULL: inline) */
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
    Py_CLEAR(field->make);
}

static int field_traverse(Field *field, visitproc visit, void *arg) {
    Py_VISIT(field->prefix);
    Py_VISIT(field->scratch);
    Py_VISIT(field->copy);
    Py_VISIT(field->make);
    return 0;
}

/* A field from (prefix, scratch), or (prefix, scratch, make) for a field in the body;
 * `copied`: bind the scratch's copy. -1 with an exception. */
static int field_init(Field *field, PyObject *pair, int copied) {
    PyObject *prefix, *scratch, *make = NULL;
    if (!PyTuple_Check(pair)
            || !PyArg_ParseTuple(pair, "O!O|O", &PyBytes_Type, &prefix, &scratch, &make)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a field is (prefix, scratch[, make])");
        return -1;
    }
    if (make != NULL) {
        if (!PyCallable_Check(make)) {
            PyErr_SetString(PyExc_TypeError, "a field's make is callable");
            return -1;
        }
        Py_INCREF(make);
        field->make = make;
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

/* The bytes the field takes in a header: its prefix, and its values unless in the body. */
static inline Py_ssize_t field_size(const Field *field) {
    return prefix_len(field) + (field->make != NULL ? 0 : field->layout.nbytes);
}

/* Whether `at` holds the field's prefix; its bytes (unless in the body) then go into the
 * scratch array. */
static int field_read(Field *field, const char *at) {
    Py_ssize_t n = prefix_len(field);
    if (memcmp(at, prefix_of(field), (size_t)n) != 0) return 0;
    if (field->make == NULL) memcpy(field->bytes.buf, at + n, (size_t)field->layout.nbytes);
    return 1;
}

/* The field's prefix and `value`'s bytes at `at`: the bytes written, 0 if not of the layout. */
static Py_ssize_t field_write(Field *field, PyObject *ndarray, PyObject *value, char *at) {
    Py_ssize_t n = prefix_len(field);
    if (!copy_array(ndarray, &field->layout, value, at + n)) return 0;
    memcpy(at, prefix_of(field), (size_t)n);
    return n + field->layout.nbytes;
}

/* A frame's prefix: its header's and its body's sizes (u32, little-endian). */
static void put_prefix(char *at, Py_ssize_t hlen, Py_ssize_t blen) {
    for (int i = 0; i < 4; i++) {
        at[i] = (char)((uint64_t)hlen >> (8 * i));
        at[4 + i] = (char)((uint64_t)blen >> (8 * i));
    }
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

#endif  /* RLMESH__FRAMES_FIELDS_H */
