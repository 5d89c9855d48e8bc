# cython: language_level=3
"""Declarations of the compiled core (see ``_core.pyx``), for cores that extend it."""

from libc.stdint cimport int64_t, uint64_t

from cellfrontier._bits cimport DeltaLog
from cellfrontier._groups cimport GroupTable, Group
from cellfrontier._values cimport FrontierDelta, TaskFactory


cdef class TrackerCore(GroupTable):
    cdef DeltaLog log
    cdef TaskFactory factory
    cdef list heap                  # min-heap of ids of groups that may hold ready tasks
    cdef uint64_t* scratch
    cdef Py_ssize_t scratch_words

    cdef int _reserve(self, Py_ssize_t n_added, Py_ssize_t n_removed) except -1
    cdef uint64_t* _scratch(self, Py_ssize_t nw) except NULL
    cdef void _push(self, Group g)
    cdef FrontierDelta _finish(self, Group g)
    cdef int _strategy_error(self, int c, str method, str hint) except -1

    cdef inline int _cell_column(self, object column, str method, str hint) except -1:
        """The id of cell-by-cell column *column* (an error naming *method* for anything else)."""
        cdef int c = self._column(column, method)
        if self.graph.is_batch[c]:
            return self._strategy_error(c, method, hint)
        return c

    cdef inline int _full_column(self, object column, str method, str hint) except -1:
        """The id of full-column column *column* (an error naming *method* for anything else)."""
        cdef int c = self._column(column, method)
        if not self.graph.is_batch[c]:
            return self._strategy_error(c, method, hint)
        return c

    cdef Py_ssize_t _fanout_entries(self, int c, Group g)
    cdef list _tasks(self, Group g, Py_ssize_t limit, bint take, list out)
    cdef int _prune_heap(self) except -1
    cdef void _mark_cell(self, Group g, int c, int64_t r) noexcept
    cdef void _mark_range(self, Group g, int c, uint64_t* scratch) noexcept
    cdef void _drop_row(self, Group g, int64_t r) noexcept
    cdef void _admit(self, Group g, int c) noexcept
    cdef int _check_admissible(self, int c) except -1
    cdef object _result(self, Group g)
    cdef int _load(self, object state) except -1
