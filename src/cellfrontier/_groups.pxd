# cython: language_level=3
"""Declarations of the row-group table (see ``_groups.pyx``), for the cores built on it."""

cimport cython
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdint cimport int64_t

from cellfrontier._bits cimport Graph, RowGroup


cdef extern from "_lock.h":
    ctypedef struct cf_lock:
        pass
    int cf_lock_acquire(cf_lock* lock)
    void cf_lock_release(cf_lock* lock)


@cython.final
cdef class Group:
    cdef RowGroup s                 # the view the kernels work on
    cdef readonly object row_group
    cdef object words               # uint64[(2C + 1) * nw]: done | ready | dropped
    cdef object counts              # int32[4C]: n_done | n_resolved | n_ready | ready_from
    cdef object flags               # uint8[3C]: batch_done | full_ready | roots_added
    cdef bint in_heap               # its id is in the hand-out heap
    cdef bint attached              # registered in the core's groups
    cdef bint birth_due             # a zero-row group whose first event must admit it


@cython.final
cdef class CompactedGroups:
    cdef dict entries               # row group id -> (size, dropped rows packed little-endian)
    cdef object completed           # int64[C]: cells completed in compacted groups
    cdef object dropped             # int64[C]: rows dropped (and not completed) there
    cdef int64_t* completed_p       # their data, for additions that cannot fail
    cdef int64_t* dropped_p
    cdef int64_t packed_bytes
    cdef int add(self, object key, object size, bytes packed) except -1
    cdef void add_totals(self, Group g, int num_columns) noexcept


cdef class GroupTable:
    cdef Graph graph
    cdef cf_lock lock
    cdef object _arrays             # keeps the graph's arrays alive
    cdef readonly tuple names       # column names in topological order
    cdef readonly dict index        # name -> column id
    cdef readonly object plan
    cdef dict groups                # row group id -> Group
    cdef CompactedGroups compacted

    # The lock and the fast paths of the argument checks are inline: every call runs them.
    cdef inline int _enter(self) except -1:
        if cf_lock_acquire(&self.lock) < 0:
            raise RuntimeError(
                "a cellfrontier tracker was called by the thread already inside one of its calls "
                "(from a finalizer or a callback that the call ran?)"
            )
        return 0

    cdef inline void _exit(self) noexcept:
        cf_lock_release(&self.lock)

    cdef inline Group _active(self, object row_group):
        """The active group *row_group* when it is a plain int, else None (then use _group)."""
        if type(row_group) is int:
            return <Group>self.groups.get(row_group)
        return None

    cdef inline Group _group(self, object row_group, str method):
        """The group a mutation lands in, created (not yet registered) on first touch."""
        cdef Group g = self._active(row_group)
        return g if g is not None else self._lookup(row_group, method, True)

    cdef inline Group _existing_group(self, object row_group, str method):
        """The active group for a query, or None when the (valid) group holds no state."""
        cdef Group g = self._active(row_group)
        return g if g is not None else self._lookup(row_group, method, False)

    cdef inline int _column(self, object column, str method) except -1:
        """The id of column *column* (UnknownColumnError naming *method* if there is none)."""
        cdef object cid
        if type(column) is str:
            cid = self.index.get(column)
            if cid is not None:
                return <int>cid
        return column_id(self.index, self.names, column, method)

    cdef object _plan_size(self, object key, str method)
    cdef Group _new_group(self, object key, str method)
    cdef Group _lookup(self, object row_group, str method, bint create)
    cdef Group _commit(self, Group g)
    cdef int _release(self, Group g) except -1
    cdef int _check_untouched_row(self, object key, object row_index, str method) except -1
    cdef object _is_done(self, object column, object row_group, object row_index)


cdef int column_id(dict index, tuple names, object column, str method) except -1
cdef object row_group_key(object plan, object row_group, str method)
cdef int64_t checked_row(Group g, object row_index, str method) except -1


cdef inline int64_t row_of(Group g, object row_index, str method) except -1:
    """Row *row_index* of *g*, checked (RowIndexError or IndexTypeError naming *method*)."""
    cdef int overflow = 0
    cdef long long r
    if type(row_index) is int:
        r = PyLong_AsLongLongAndOverflow(row_index, &overflow)
        if not overflow and 0 <= r < g.s.n:
            return r
    return checked_row(g, row_index, method)

cdef object checked_rows(Group g, object rows, str method)
cdef int check_size(Group g, object size, str method) except -1
cdef list column_list(dict index, tuple names, object columns, str method)
cdef Group new_group(object key, int64_t n, int num_columns, object words=*, object flags=*)
cdef Group group_from_state(object key, int64_t n, int num_columns, object words, object flags)
