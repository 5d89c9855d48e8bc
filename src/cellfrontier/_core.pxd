# cython: language_level=3
"""Declarations of the compiled core (see ``_core.pyx``), for cores that extend it."""

from libc.stdint cimport int64_t, uint64_t

from cellfrontier._bits cimport DeltaLog
from cellfrontier._completion cimport CompletionCore, Group
from cellfrontier._values cimport FrontierDelta, TaskFactory


cdef class TrackerCore(CompletionCore):
    cdef DeltaLog log
    cdef TaskFactory factory
    cdef list heap                  # min-heap of ids of groups that may hold ready tasks
    cdef uint64_t* scratch
    cdef Py_ssize_t scratch_words

    cdef int _reserve(self, Py_ssize_t n_added, Py_ssize_t n_removed) except -1
    cdef uint64_t* _scratch(self, Py_ssize_t nw) except NULL
    cdef void _push(self, Group g)
    cdef FrontierDelta _finish(self, Group g)
    cdef int _cell_column(self, object column, str method, str hint) except -1
    cdef int _full_column(self, object column, str method, str hint) except -1
    cdef Py_ssize_t _fanout_entries(self, int c, Group g)
    cdef list _tasks(self, Group g, Py_ssize_t limit, bint take, list out)
    cdef int _prune_heap(self) except -1
    cdef int _load(self, object state) except -1
