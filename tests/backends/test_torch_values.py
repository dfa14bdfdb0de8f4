"""``rlmesh.torch``'s conversions between torch tensors and ``rlmesh.Tensor``, from the docs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from tests.support.deps import need

torch = need("torch")
import rlmesh.torch as rt  # noqa: E402 - after the skip above

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
          "float16", "float32", "float64"]


def sample(dtype: str) -> Any:
    return torch.from_numpy((np.arange(6) % 2).astype(dtype).reshape(2, 3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_keeps_dtype_shape_and_elements(dtype: str) -> None:
    source = sample(dtype)
    t = rt.from_tensor(source)
    assert isinstance(t, rlmesh.Tensor) and (t.shape, t.dtype) == ([2, 3], dtype)
    back = rt.as_tensor(t)
    assert back.dtype == source.dtype and torch.equal(back, source)


def test_as_tensor_shares_memory_and_copy_does_not() -> None:
    t = rlmesh.numpy.from_array(np.arange(4, dtype=np.float32))
    assert isinstance(t, rlmesh.Tensor)
    shared = rt.as_tensor(t)
    assert shared.data_ptr() == np.asarray(t).ctypes.data
    own = rt.as_tensor(t, copy=True)
    own.div_(2)  # in place, on memory of its own
    assert np.asarray(t).tolist() == [0.0, 1.0, 2.0, 3.0]
    assert own.data_ptr() != shared.data_ptr()


def test_as_tensor_of_a_python_scalar() -> None:
    assert rt.as_tensor(3).item() == 3 and rt.as_tensor(2.5, copy=True).dtype == torch.float32
    assert rt.as_tensor(True).dtype == torch.bool


def test_from_tensor_detaches_copies_and_makes_contiguous() -> None:
    source = torch.arange(6.0, requires_grad=True).reshape(2, 3).t()
    t = rt.from_tensor(source)
    assert isinstance(t, rlmesh.Tensor) and t.shape == [3, 2] and t.is_contiguous()
    np.testing.assert_array_equal(np.asarray(t), source.detach().numpy())
    with torch.no_grad():
        source.zero_()
    assert np.asarray(t).sum() == 15


def test_from_tensor_gives_a_zero_dimensional_tensor_as_a_python_scalar() -> None:
    assert rt.from_tensor(torch.tensor(7)) == 7 and type(rt.from_tensor(torch.tensor(1.5))) is float


def test_from_tensor_result_still_reads_as_a_numpy_array() -> None:
    """Code that took ``from_tensor``'s numpy result keeps working through ``__array__``."""
    array = np.asarray(rt.from_tensor(torch.ones(2, 2)))
    assert isinstance(array, np.ndarray) and array.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert rt.from_tensor("not a tensor") == "not a tensor"


def test_bfloat16_round_trips_without_dlpack() -> None:
    source = torch.tensor([1.0, -2.5, 0.5], dtype=torch.bfloat16)
    t = rt.from_tensor(source)
    assert isinstance(t, rlmesh.Tensor) and t.dtype == "bfloat16" and t.nbytes == 6
    assert torch.equal(rt.as_tensor(t), source)
    assert torch.equal(rt.as_tensor(t, copy=True), source)


def test_torch_reads_a_tensor_over_dlpack_directly() -> None:
    t = rlmesh.Tensor.from_dlpack(torch.arange(5, dtype=torch.int32))
    assert torch.equal(torch.from_dlpack(t), torch.arange(5, dtype=torch.int32))


def test_the_remote_env_takes_rlmesh_tensors_as_actions(serve: Any) -> None:
    import gymnasium as gym

    server = serve(gym.make("Pendulum-v1"))
    env = rt.RemoteEnv(server.address)
    try:
        env.reset(seed=0)
        action = rt.from_tensor(torch.tensor([0.5]))
        obs, *_ = env.step(action)
        assert isinstance(obs, torch.Tensor)
    finally:
        env.close()


def test_ensure_available_and_the_value_alias() -> None:
    assert rt.ensure_available() is None
    assert "Tensor" in str(rt.TorchValue)
