# cython: language_level=3
"""Declarations of the compiled value types (see ``_values.pyx``)."""

cimport cython
from libc.stdint cimport int64_t

from cellfrontier._bits cimport DeltaLog


@cython.final
cdef class Task:
    cdef readonly str column
    cdef readonly object row_group
    cdef readonly object row_index
    cdef readonly str task_type


cdef Task new_task(str column, object row_group, object row_index, str task_type)


cdef class TaskFactory:
    cdef readonly tuple names        # column names, by column id
    cdef readonly tuple full_types   # task type of each column's full-column task (SLOT_BATCH)
    cdef object build(self, int column, object row_group, int64_t slot)


@cython.final
cdef class FrontierDelta:
    cdef object _added
    cdef object _removed
    cdef int64_t* _entries           # (key, mask) pairs: the added entries, then the removed
    cdef Py_ssize_t _n_added         # entries
    cdef Py_ssize_t _n_removed
    cdef Py_ssize_t _count_added     # tasks
    cdef Py_ssize_t _count_removed
    cdef TaskFactory _factory
    cdef object _row_group
    cdef tuple _decode(self, Py_ssize_t start, Py_ssize_t stop)


cdef FrontierDelta delta_from_log(const DeltaLog* log, TaskFactory factory, object row_group)
