#!/bin/sh
# Serve corridor:make_env on RLMESH_ADDRESS with the keywords in RLMESH_MAKE_KWARGS (JSON)
# and RLMESH_NUM_ENVS copies. An rlmesh sandbox sets all three when it runs this image.
set -e
KWARGS=${RLMESH_MAKE_KWARGS:-'{}'}
exec python3 -m rlmesh serve corridor:make_env \
    --address "${RLMESH_ADDRESS:-0.0.0.0:50051}" \
    --kwargs "$KWARGS" \
    --num-envs "${RLMESH_NUM_ENVS:-1}"
