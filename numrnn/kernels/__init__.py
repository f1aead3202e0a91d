"""Compiled kernels: ``cpu`` (Numba ``@njit``) and ``cuda`` (``numba.cuda``), same names."""
