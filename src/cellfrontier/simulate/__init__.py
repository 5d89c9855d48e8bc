"""Simulation and benchmark tooling: reference workloads, the drivers and the ``simulate`` command.

Nothing here is part of the tracker or the job runner; it drives them (and the alternatives
they are compared with) through their public APIs only.
"""
