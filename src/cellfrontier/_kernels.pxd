# cython: language_level=3
"""Declarations of the frontier kernels (see ``_kernels.pyx``)."""

from libc.stdint cimport int64_t, uint64_t

from cellfrontier._bits cimport DeltaLog, Graph, RowGroup

# Readiness checks, shared with the DataDesigner-compatible kernels.
cdef void check_batch(const Graph* graph, RowGroup* g, DeltaLog* log, int d) noexcept nogil
cdef void check_cell(const Graph* graph, RowGroup* g, DeltaLog* log, int d, int64_t r) noexcept nogil
cdef void release_cells(
    const Graph* graph, RowGroup* g, DeltaLog* log, int d, const uint64_t* candidates
) noexcept nogil
cdef void leave_cell(RowGroup* g, DeltaLog* log, int c, int64_t r) noexcept nogil
cdef void visit_downstream(
    const Graph* graph, RowGroup* g, DeltaLog* log, int c, int64_t r, const uint64_t* rows, bint batches
) noexcept nogil

# Events.
cdef void mark_cell(const Graph* graph, RowGroup* g, DeltaLog* log, int c, int64_t r) noexcept nogil
cdef void mark_cells(const Graph* graph, RowGroup* g, DeltaLog* log, int c, uint64_t* mask) noexcept nogil
cdef void mark_range(const Graph* graph, RowGroup* g, DeltaLog* log, int c, uint64_t* all_rows) noexcept nogil
cdef void drop_row(const Graph* graph, RowGroup* g, DeltaLog* log, int64_t r) noexcept nogil
cdef void drop_rows(const Graph* graph, RowGroup* g, DeltaLog* log, uint64_t* mask) noexcept nogil
cdef void add_roots(const Graph* graph, RowGroup* g, DeltaLog* log, int c) noexcept nogil
cdef void admit_empty_group(const Graph* graph, RowGroup* g, DeltaLog* log) noexcept nogil
cdef void rebuild_frontier(const Graph* graph, RowGroup* g, DeltaLog* log, uint64_t* all_rows) noexcept nogil

# Handing out and reading the frontier.
cdef Py_ssize_t collect_ready(
    const Graph* graph, RowGroup* g, Py_ssize_t limit, int64_t* keys, bint take
) noexcept nogil
cdef Py_ssize_t copy_ready_rows(RowGroup* g, int c, int64_t* out, bint take) noexcept nogil
cdef Py_ssize_t first_ready_word(RowGroup* g, int c) noexcept nogil
cdef bint acknowledge(RowGroup* g, int c, int64_t slot) noexcept nogil

# Whole-group helpers.
cdef void fill_rows(int64_t n, Py_ssize_t nw, uint64_t* mask) noexcept nogil
cdef void rows_to_mask(const int64_t* rows, Py_ssize_t count, uint64_t* mask) noexcept nogil
cdef int64_t open_rows(const Graph* graph, const RowGroup* g, uint64_t* mask) noexcept nogil
cdef void recount(const Graph* graph, RowGroup* g) noexcept nogil
