/* One env's NumPy scalar rewards in a slot step's reply: its form word (section 10.3).
 *
 * A part of _fastslots.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__SLOTS_REWARDS_H
#define RLMESH__SLOTS_REWARDS_H

/* -- one env's NumPy scalar rewards (reply forms 1 and up, where both sides agreed) ----------- */

#define MAX_REWARDS 2
#define REWARD_BYTES 8  /* the reply slot's reward field */

typedef struct {
    PyObject *scratch[MAX_REWARDS];  /* form i + 1's one-item array: its bytes, its scalar */
    PyObject *types[MAX_REWARDS];    /* the NumPy scalar type of its items */
    Py_buffer bytes[MAX_REWARDS];
    int count;
} Rewards;

static void rewards_drop(Rewards *r) {
    for (int i = 0; i < r->count; i++) PyBuffer_Release(&r->bytes[i]);
    r->count = 0;
    for (int i = 0; i < MAX_REWARDS; i++) {
        Py_CLEAR(r->scratch[i]);
        Py_CLEAR(r->types[i]);
    }
}

static int rewards_traverse(Rewards *r, visitproc visit, void *arg) {
    for (int i = 0; i < MAX_REWARDS; i++) {
        Py_VISIT(r->scratch[i]);
        Py_VISIT(r->types[i]);
    }
    return 0;
}

/* The forms from a tuple of one-item arrays, of the NumPy scalar types of forms 1, 2 (only
 * one env's replies have forms): -1 with an exception. */
static int rewards_init(Rewards *r, PyObject *scratches, int one) {
    Py_ssize_t n = PyTuple_GET_SIZE(scratches);
    if (n > MAX_REWARDS || (n && !one)) {
        PyErr_SetString(PyExc_ValueError, "rewards: at most two, and only for one env");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *scratch = PyTuple_GET_ITEM(scratches, i);
        Py_INCREF(scratch);
        r->scratch[i] = scratch;
        if ((r->types[i] = scalar_type_of(scratch)) == NULL
                || PyObject_GetBuffer(scratch, &r->bytes[i],
                                      PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        r->count = (int)i + 1;
        if (r->bytes[i].len < 1 || r->bytes[i].len > REWARD_BYTES) {
            PyErr_SetString(PyExc_ValueError, "rewards: one item of at most eight bytes");
            return -1;
        }
    }
    return 0;
}

/* A reward into the reply slot's field at `at`, and its form: a Python float's float64
 * (form 0), or a NumPy scalar's own bytes, zero-padded (its form); 0 (nothing written) for
 * a reward of no form. */
static int reward_write(const Rewards *r, PyObject *reward, char *at, uint32_t *form) {
    if (PyFloat_CheckExact(reward)) {
        double value = PyFloat_AS_DOUBLE(reward);
        memcpy(at, &value, REWARD_BYTES);
        *form = 0;
        return 1;
    }
    for (int i = 0; i < r->count; i++) {
        if ((PyObject *)Py_TYPE(reward) != r->types[i]) continue;
        Py_buffer b;
        if (PyObject_GetBuffer(reward, &b, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            return 0;
        }
        int fits = b.len == r->bytes[i].len;
        if (fits) {
            memset(at, 0, REWARD_BYTES);
            memcpy(at, b.buf, (size_t)b.len);
            *form = (uint32_t)i + 1;
        }
        PyBuffer_Release(&b);
        return fits;
    }
    return 0;
}

/* The reward of a reply of `form` (0 or an agreed one) whose field holds `raw`: a new
 * reference, or NULL with an exception. Reads nothing of the slot (`raw` is a copy). */
static PyObject *reward_read(const Rewards *r, uint32_t form, const char *raw) {
    if (form == 0) {
        double value;
        memcpy(&value, raw, REWARD_BYTES);
        return PyFloat_FromDouble(value);
    }
    PyObject *scratch = r->scratch[form - 1];
    memcpy(r->bytes[form - 1].buf, raw, (size_t)r->bytes[form - 1].len);
    Py_INCREF(scratch);  /* (its item is made in a call: the steps may be released meanwhile) */
    PyObject *scalar = PySequence_GetItem(scratch, 0);
    Py_DECREF(scratch);
    return scalar;
}

#endif  /* RLMESH__SLOTS_REWARDS_H */
