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
 *   ServerFrames.put(rid, *results) encodes the reply and sends it;
 *   ServerFrames.serve(env, check, bounds)
 *                                   takes a step, checks its action, steps the env and puts
 *                                   its results (_serve_step.h).
 *
 * An observation too large to travel inline travels as the reply's body, as the general
 * encoder sends it: the server sends it from the env's array (header and body in one
 * sendmsg), the client receives it into a new array of its own.
 *
 * Whatever else comes (a value of another layout, a frame of another kind, the peer gone)
 * returns a code and the Python path goes on from there, with the same state: the
 * connection's staging buffer (its _buf, _start and _end) and spin policy stay the Python
 * objects' own. A failing system call raises what the socket module raises for it (an
 * expired SO_RCVTIMEO or SO_SNDTIMEO: BlockingIOError), after the staging state is stored.
 */
#include "_fastcommon.h"

#include <errno.h>
#include <sys/uio.h>

#define PREFIX 8          /* rlmesh.transport.stream.PREFIX: "<II", header and body lengths */
#define READ_AHEAD 8192   /* stream._READ: how far past a frame one read may go */
#define MAX_RID_BYTES 5   /* 0xce and a u32: the longest request id of a fixed frame */
#define MAX_INT_BYTES 9   /* 0xcf or 0xd3 and eight bytes */

static PyObject *s_buf, *s_start, *s_end, *s_spin, *s_stolen, *zero;

#include "_frames_fields.h"
#include "_frames_stream.h"
#include "_frames_side.h"
#include "_frames_client.h"
#include "_serve_step.h"
#include "_frames_server.h"

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
    s_step = PyUnicode_InternFromString("step");
    zero = PyLong_FromLong(0);
    if (s_buf == NULL || s_start == NULL || s_end == NULL || s_spin == NULL || s_stolen == NULL
            || s_step == NULL || zero == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&fastframes_module);
    if (module == NULL) return NULL;
    if (add_type(module, "ClientFrames", &ClientFramesType) < 0
            || add_type(module, "ServerFrames", &ServerFramesType) < 0
            || PyModule_AddIntConstant(module, "DECLINED", DECLINED) < 0
            || PyModule_AddIntConstant(module, "DONE", DONE) < 0
            || PyModule_AddIntConstant(module, "RECEIVE", RECEIVE) < 0
            || add_policy_constants(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
