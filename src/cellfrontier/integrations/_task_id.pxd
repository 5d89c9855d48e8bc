# cython: language_level=3
"""Declarations of the stable task ids (see ``_task_id.pyx``)."""

cdef str stable_task_id_of(str column, object row_group, object row_index, str task_type)
