/* One env's NumPy scalar rewards in a slot step's reply: its form word (section 10.3).
 *
 * A part of _fastslots.c, which includes it once (one translation unit: what is static
 * here is the module's own). */
#ifndef RLMESH__SLOTS_REWARDS_H
#define RLMESH__SLOTS_REWARDS_H

/* -- one env's NumPy scalar rewards (reply forms 1 and up, where both sides agreed) ----------- */

#define MAX_REWARDS 2

typedef struct {
    PyObject *types[MAX_REWARDS];  /* the NumPy scalar type of form i + 1 */
    int count;
} Rewards;

static void rewards_drop(Rewards *r) {
    for (int i = 0; i < MAX_REWARDS; i++) Py_CLEAR(r->types[i]);
    r->count = 0;
}

static int rewards_traverse(Rewards *r, visitproc visit, void *arg) {
    for (int i = 0; i < MAX_REWARDS; i++) Py_VISIT(r->types[i]);
    return 0;
}

/* The forms' types from a tuple of types (only one env's replies have forms): -1 with an
 * exception. */
static int rewards_init(Rewards *r, PyObject *types, int one) {
    Py_ssize_t n = PyTuple_GET_SIZE(types);
    if (n > MAX_REWARDS || (n && !one)) {
        PyErr_SetString(PyExc_ValueError, "rewards: at most two types, and only for one env");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *type = PyTuple_GET_ITEM(types, i);
        if (!PyType_Check(type) || type == (PyObject *)&PyFloat_Type) {
            PyErr_SetString(PyExc_TypeError, "rewards: NumPy scalar types");
            return -1;
        }
        Py_INCREF(type);
        r->types[i] = type;
        r->count = (int)i + 1;
    }
    return 0;
}

/* A reward's form and its value as a float64: 0 (declined) if it has none. */
static int reward_form(const Rewards *r, PyObject *reward, uint32_t *form, double *value) {
    if (PyFloat_CheckExact(reward)) {
        *form = 0;
        *value = PyFloat_AS_DOUBLE(reward);
        return 1;
    }
    for (int i = 0; i < r->count; i++) {
        if ((PyObject *)Py_TYPE(reward) == r->types[i]) {
            *value = PyFloat_AsDouble(reward);  /* (a float32's value, exactly) */
            if (*value == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                return 0;
            }
            *form = (uint32_t)i + 1;
            return 1;
        }
    }
    return 0;
}

/* The reward of a reply of `form` (0 or an agreed one) whose float64 is `value`: a new
 * reference, or NULL with an exception. */
static PyObject *reward_of(const Rewards *r, uint32_t form, double value) {
    PyObject *number = PyFloat_FromDouble(value);
    if (number == NULL || form == 0) return number;
    PyObject *scalar = PyObject_CallOneArg(r->types[form - 1], number);
    Py_DECREF(number);
    return scalar;
}

#endif  /* RLMESH__SLOTS_REWARDS_H */
