"""The backend layer's shared pieces: the protocol, the one LayerCache, backend options."""

import inspect

import pytest

from numrnn.backends import Backend, LayerCache, backend_options, get_backend
from numrnn.backends.base import current_options
from numrnn.backends.cpu import CPUBackend


def test_cpu_backend_implements_the_protocol():
    # every call the network makes exists on the CPU backend with the protocol's arguments
    for name, member in inspect.getmembers(Backend, inspect.isfunction):
        if name.startswith("_"):
            continue
        theirs = inspect.signature(getattr(CPUBackend, name)).parameters
        assert list(theirs)[: len(inspect.signature(member).parameters)] == list(
            inspect.signature(member).parameters
        ), name


def test_layer_cache_is_shared():
    # both backends build the one LayerCache (the CUDA module is checked by test_cuda)
    from numrnn.backends import cpu

    assert cpu.LayerCache is LayerCache


def test_backend_options_nest_and_reset():
    assert current_options("cuda") == {}
    with backend_options(cuda={"tile": 4, "rows": 2}):
        with backend_options(cuda={"rows": 1}):
            assert current_options("cuda") == {"tile": 4, "rows": 1}
        assert current_options("cuda") == {"tile": 4, "rows": 2}
    assert current_options("cuda") == {}


def test_backend_options_errors_name_the_fix():
    with pytest.raises(TypeError, match="expects a dict"):
        with backend_options(cuda=4):
            pass
    with backend_options(cpu={"tile": 4}), pytest.raises(TypeError, match="takes no options"):
        get_backend("cpu")
    # options of another backend do not reach the CPU one
    with backend_options(cuda={"tile": 4}):
        assert isinstance(get_backend("cpu"), CPUBackend)
