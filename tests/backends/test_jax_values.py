"""``rlmesh.jax``'s conversions between JAX arrays and ``rlmesh.Tensor``, from the docs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import rlmesh
import rlmesh.numpy
from tests.support.deps import need

jax = need("jax")
import jax.numpy as jnp  # noqa: E402 - after the skip above

import rlmesh.jax as rj  # noqa: E402

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "uint16", "uint32", "float16", "float32"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_keeps_dtype_shape_and_elements(dtype: str) -> None:
    source = jnp.asarray((np.arange(6) % 2).astype(dtype).reshape(2, 3))
    t = rj.from_array(source)
    assert isinstance(t, rlmesh.Tensor) and (t.shape, t.dtype) == ([2, 3], dtype)
    back = rj.asarray(t)
    assert isinstance(back, jax.Array) and back.dtype == source.dtype
    assert bool(jnp.array_equal(back, source))


def test_asarray_is_an_immutable_jax_array() -> None:
    t = rlmesh.numpy.from_array(np.arange(16, dtype=np.float32))
    array = rj.asarray(t)
    with pytest.raises(TypeError):
        array[0] = 1.0
    assert array.tolist() == list(range(16))


def test_from_array_copies_into_a_fresh_tensor() -> None:
    source = jnp.arange(6, dtype=jnp.int32).reshape(3, 2)
    t = rj.from_array(source)
    assert isinstance(t, rlmesh.Tensor) and t.is_contiguous() and t.strides == [8, 4]
    assert np.asarray(t).tolist() == [[0, 1], [2, 3], [4, 5]]


def test_from_array_gives_a_zero_dimensional_array_as_a_python_scalar() -> None:
    assert rj.from_array(jnp.asarray(3)) == 3 and type(rj.from_array(jnp.asarray(0.5))) is float


@pytest.mark.parametrize("value", [np.zeros(2), [1.0], 2])
def test_from_array_refuses_what_is_not_a_jax_array_with_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        rj.from_array(value)


def test_bfloat16_round_trips() -> None:
    source = jnp.asarray([1.0, -2.5, 0.5], dtype=jnp.bfloat16)
    t = rj.from_array(source)
    assert isinstance(t, rlmesh.Tensor) and t.dtype == "bfloat16"
    back = rj.asarray(t)
    assert back.dtype == jnp.bfloat16 and back.tolist() == [1.0, -2.5, 0.5]


def test_64_bit_values_follow_jax_s_own_setting() -> None:
    t = rlmesh.numpy.from_array(np.arange(3, dtype=np.int64))
    array = rj.asarray(t)
    expected = jnp.int64 if jax.config.read("jax_enable_x64") else jnp.int32
    assert array.dtype == expected and array.tolist() == [0, 1, 2]


def test_ensure_available_checks_the_version_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    assert rj.ensure_available() is None
    monkeypatch.setattr(jax, "__version__", "0.4.23")
    with pytest.raises(ImportError, match=r"0\.4\.30"):
        rj.ensure_available()


def test_the_value_alias_names_jax_arrays() -> None:
    assert "Array" in str(rj.JaxValue)
