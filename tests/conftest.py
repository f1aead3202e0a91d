import numpy as np
import pytest

from numrnn.kernels.cpu.parallel import set_eager_drivers

# Threaded calls go through the parallel driver from the first one, so the tests exercise
# it on small data (a fit compiles it only after DRIVER_COMPILE_AFTER_S of one-thread time);
# test_driver_compiles_once_it_pays checks that policy with this off.
set_eager_drivers(True)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
