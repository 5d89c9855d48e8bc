"""Simulation and benchmark tooling: the drivers, the comparison backends and the ``simulate`` command.

Nothing here is part of the tracker or the job runner; it drives them (and the alternatives
they are compared with) through their public APIs only, on the reference workloads of
:mod:`cellfrontier.testing`.  Nothing outside this package imports it.
"""
