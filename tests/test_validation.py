"""One parameter table, one exception type, one message format (numrnn._validation)."""

from __future__ import annotations

import numpy as np
import pytest

from numrnn import InvalidParameterError, RNNClassifier, RNNRegressor, nn
from numrnn._validation import CELL_NAMES, PARAMETERS, check_param
from numrnn.cells import CELLS


def test_parameter_error_is_value_and_type_error():
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


def test_cell_names_are_the_registry():
    assert CELL_NAMES == tuple(CELLS)


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_table_entry_rejects_a_wrong_value_in_the_one_format(name):
    with pytest.raises(InvalidParameterError) as info:
        check_param(name, object())
    msg = str(info.value)
    assert msg.startswith(f"{name} must be "), msg
    assert ", got <object object at " in msg and msg.rstrip().endswith("."), msg


@pytest.mark.parametrize("name", sorted(set(PARAMETERS) & set(RNNRegressor._get_param_names())))
def test_estimators_check_every_table_parameter(name):
    X, y = np.zeros((4, 3, 1)), np.array([0, 1, 0, 1])
    for est in (RNNRegressor, RNNClassifier):
        m = est(**{name: object()})
        with pytest.raises(InvalidParameterError, match=f"^{name} must be"):
            m.fit(X, y)
        assert not hasattr(m, "network_")


_FORECASTER_OWN = ("window", "horizon", "strategy", "season_length", "scaler", "n_models", "n_jobs")


@pytest.mark.parametrize("name", _FORECASTER_OWN)
def test_forecaster_checks_its_parameters_on_the_table(name):
    from numrnn import RNNForecaster

    assert name in PARAMETERS
    m = RNNForecaster(**{name: object()})
    with pytest.raises(InvalidParameterError, match=f"^{name} must be"):
        m.fit(np.arange(40.0))
    assert not hasattr(m, "window_")


def test_forecast_horizon_and_windows_say_the_same():
    from numrnn import RNNForecaster
    from numrnn.forecasting import make_windows

    with pytest.raises(InvalidParameterError) as est_err:
        RNNForecaster(horizon=0).fit(np.arange(40.0))
    with pytest.raises(InvalidParameterError) as fn_err:
        make_windows(np.arange(10.0), window=3, horizon=0)
    assert str(est_err.value) == str(fn_err.value)
    with pytest.raises(InvalidParameterError, match="^window must be an integer >= 1, got None"):
        make_windows(np.arange(10.0), window=None)


def test_network_and_estimator_say_the_same():
    """The same bad value gives the same message and type in nn and in the estimators."""
    with pytest.raises(InvalidParameterError) as net_err:
        nn.LSTM(1, 2.5)
    with pytest.raises(InvalidParameterError) as est_err:
        RNNRegressor(hidden_size=2.5).fit(np.zeros((3, 2, 1)), np.zeros(3))
    assert str(net_err.value) == str(est_err.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.LSTM(1, 2, peephole="no"),
        lambda: nn.GRU(1, 2, reset_after="yes"),
        lambda: nn.RNN(1, 2, bidirectional=1),
        lambda: nn.LSTM(1, 2, forget_bias=float("nan")),
        lambda: nn.RNN(1, 2, orthogonal="True"),
    ],
)
def test_network_options_are_not_truthy_stand_ins(make):
    """``peephole="no"`` used to become True (``bool("no")``)."""
    with pytest.raises(InvalidParameterError, match="must be"):
        make()


def test_cells_registry_holds_options_and_every_backends_layers():
    import inspect

    from numrnn.backends.cpu import CPUBackend

    for name, spec in CELLS.items():
        forward, backward = spec.layer(CPUBackend.name)
        assert callable(forward) and callable(backward)
        net_cls = nn.network.NETWORKS[name]
        accepted = inspect.signature(net_cls.__init__).parameters
        for option, default in spec.options:  # the network takes each option, same default
            assert accepted[option].default == default, (name, option)


def test_check_sequences_fast_path_returns_what_the_general_path_does():
    """Issue #18: a float array of the requested dtype takes a short path (the one-step
    forecast's forward); it returns the same copy and lengths, and a NaN still gets the
    general path's message naming the sample, step and feature."""
    from numrnn._validation import check_sequences

    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    fast, lens = check_sequences(x, n_features=4, dtype=np.float32)
    slow, slow_lens = check_sequences(list(x), n_features=4, dtype=np.float32)
    assert fast.dtype == np.float32 and fast is not x and np.array_equal(fast, slow)
    assert np.array_equal(lens, slow_lens) and lens.dtype == np.int64
    x[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="sample 1, step 2, feature 3"):
        check_sequences(x, n_features=4, dtype=np.float32)
    with pytest.raises(ValueError, match="4 features per step, but 5 were expected"):
        check_sequences(x, n_features=5, dtype=np.float32)


def test_check_sequences_fast_path_casts_another_float_dtype():
    """A float64 array into a float32 network (a user's own loop, a forecaster's windows)
    takes the short path too: the same cast as the general path; a value that overflows
    float32 gets the general path's message, and no overflow warning before it."""
    import warnings

    from numrnn._validation import check_sequences

    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)  # float64
    fast, lens = check_sequences(x, n_features=4, dtype=np.float32)
    slow, slow_lens = check_sequences(list(x), n_features=4, dtype=np.float32)
    assert fast.dtype == np.float32 and np.array_equal(fast, slow)
    assert np.array_equal(lens, slow_lens)
    x[0, 1, 2] = 1e39  # finite in float64, inf in float32
    general = None
    try:
        check_sequences(list(x), n_features=4, dtype=np.float32)
    except ValueError as e:
        general = str(e)
    assert general is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError) as err:
            check_sequences(x, n_features=4, dtype=np.float32)
    assert str(err.value) == general
