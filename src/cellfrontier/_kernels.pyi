"""Type stubs for the frontier kernels (``_kernels.pyx``): C functions only, nothing in Python."""
