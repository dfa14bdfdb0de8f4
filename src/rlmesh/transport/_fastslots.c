/* Slot steps over the same-host link, compiled: each side's step in one call.
 *
 * rlmesh.transport.fastslots is the Python face. The two types here follow the pure-Python
 * path byte for byte (rlmesh.wire.slots.SlotSteps and rlmesh.transport.shmlink.ShmLink:
 * send_written, recv, _spin) and cover only its common case:
 *
 *   ClientSteps.step(rid, action)  writes the request, announces it, polls for the reply and
 *                                  reads it;
 *   ClientSteps.post(rid, action)  its first half, for a pipelined request (write, announce),
 *   ClientSteps.reply(rid)         and its second (poll, read);
 *   ServerSteps.take()             polls for a request and reads it;
 *   ServerSteps.put(rid, *results) writes the reply and announces it;
 *   ServerSteps.serve(env, check, bounds)
 *                                  takes a step, checks its action, steps the env and puts
 *                                  its results (_serve_step.h).
 *
 * Whatever else happens (a value of another layout, a late peer, a frame in the slot, a
 * released view) returns a code and the Python path goes on from there, with the same state:
 * the link's sequence counts (its _out_seq and _in_seq) and its spin policy stay the Python
 * objects' own.
 *
 * Ordering (protocol section 10.2): a slot's data is written before its sequence word (a
 * release store), the peer's sleep flag is read after a full fence, and the peer's data after
 * its sequence word (an acquire load).
 */
#include "_fastcommon.h"

#define HEAD_BYTES 16
#define CHECK_NS 2000   /* polling between two yields (the Python path's 64 checks) */
#define FORM_ARRAY 0
#define FORM_SCALAR 1
#define FORM_INT 2

#include "_slots_side.h"
#include "_slots_rewards.h"
#include "_slots_client.h"
#include "_serve_step.h"
#include "_slots_server.h"

/* -- the module ------------------------------------------------------------------------------ */

static struct PyModuleDef fastslots_module = {
    PyModuleDef_HEAD_INIT, "_fastslots",
    "Slot steps over the same-host link, compiled (see rlmesh.transport.fastslots).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastslots(void) {
    if (PyType_Ready(&ClientStepsType) < 0 || PyType_Ready(&ServerStepsType) < 0) return NULL;
    s_out_seq = PyUnicode_InternFromString("_out_seq");
    s_in_seq = PyUnicode_InternFromString("_in_seq");
    s_stolen = PyUnicode_InternFromString("stolen");
    s_step = PyUnicode_InternFromString("step");
    zero = PyLong_FromLong(0);
    no_index = PyTuple_New(0);
    if (s_out_seq == NULL || s_in_seq == NULL || s_stolen == NULL || s_step == NULL
            || zero == NULL
            || no_index == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&fastslots_module);
    if (module == NULL) return NULL;
    if (add_type(module, "ClientSteps", &ClientStepsType) < 0
            || add_type(module, "ServerSteps", &ServerStepsType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "DECLINED", DECLINED) < 0
            || PyModule_AddIntConstant(module, "DONE", DONE) < 0
            || PyModule_AddIntConstant(module, "WAKE", WAKE) < 0
            || PyModule_AddIntConstant(module, "RECEIVE", RECEIVE) < 0
            || PyModule_AddIntConstant(module, "ASLEEP", ASLEEP) < 0
            || add_policy_constants(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
