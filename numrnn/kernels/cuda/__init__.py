"""``numba.cuda`` kernels (and the small launch helpers of single kernels: GEMM, copies,
column sums) for :class:`numrnn.backends.cuda.CUDABackend`, which drives them: the
backend's layer drivers allocate the buffers, plan the launches and run the time loop, as
:class:`numrnn.backends.cpu.CPUBackend` does with :mod:`numrnn.kernels.cpu`.

Per cell (:mod:`~numrnn.kernels.cuda.rnn`, :mod:`~numrnn.kernels.cuda.lstm`,
:mod:`~numrnn.kernels.cuda.gru`) the same math as the CPU kernels, on device arrays in the
same conventions (time-major C-contiguous buffers, PyTorch parameter layout, ``lengths``,
backward overwriting the gate cache with gate gradients): the element math of one hidden
unit, declared as phases of a time step and run by the two time loops written once in
:mod:`~numrnn.kernels.cuda.time_loop`:

- per step ONE fused kernel doing ``h_{t-1} W_hh^T`` and the gate math (two for the GRU
  with ``reset_after=False``, whose ``(r h) W_hn^T`` needs all of a row's r first), each
  block covering several batch rows that share its ``W_hh`` tiles in shared memory;
- ONE persistent cooperative kernel for all steps that keeps each block's slice of
  ``W_hh`` in shared memory and separates steps with ``cuda.cg.this_grid().sync()``.

Around the loop: one tiled shared-memory GEMM for the input projection of all steps
(biases folded in); after BPTT, GEMMs for dX, dW_ih, dW_hh and fixed-order column sums for
the biases (:mod:`~numrnn.kernels.cuda.common`). No atomics: results are bit-identical from
run to run. Tunables (tile, threads per block, rows per block, persistent, chunks) are
launch arguments chosen by the backend.
"""
