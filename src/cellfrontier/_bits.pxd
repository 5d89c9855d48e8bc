# cython: language_level=3
"""The C layout of the tracker's state, shared by every compiled module.

* :c:type:`Graph`: the compiled column graph (CSR arrays, column ids in topological order).
* :c:type:`RowGroup`: one active row group with ``n`` rows, ``nw = ceil(n / 64)`` words and
  ``C`` columns::

      done[C * nw] | ready[C * nw] | dropped[nw]          uint64 bitmaps, one bit per row
      n_done[C] | n_resolved[C] | n_ready[C] | ready_from[C]       int32 counters
      batch_done[C] | full_ready[C] | roots_added[C]               uint8 flags

  ``n_resolved`` counts rows done *or* dropped, so "is this column done for the group?" is
  O(1).  ``ready_from`` is a lower bound on the first word of a column holding a ready bit,
  so that handing out tasks one at a time never rescans the words it already emptied.
  ``full_ready`` holds one bit per full-column task slot of a column (see below).
* :c:type:`DeltaLog`: what one event did to the frontier, as ``(key, mask)`` pairs.

**One task-key encoding.**  A task is ``(column, slot)``: a slot ``>= 0`` is a row (a cell
task); ``SLOT_BATCH`` is the column's full-column task, and ``SLOT_SCRATCH`` a second
full-column entry that only DataDesigner-compatible mode uses.  ``task_key`` packs the pair
into one int64 (``column << 32 | slot as uint32``); deltas, hand-out buffers and the
DataDesigner id registry all use it.  A delta entry is ``(task_key(column, slot), mask)``:
for cells *slot* is the first row of a 64-row word and *mask* the rows of that word, so a
bulk event records O(words) entries, never one per cell; for a full-column task the mask is 1.

**One place for the frontier invariant.**  "A ready bit is set <=> it is counted in
``n_ready[column]`` <=> it is counted in ``total_ready``": :func:`set_ready` and
:func:`clear_ready` are the only functions that change a ready bit, and they move the
counters with it (``recount`` in the kernels re-establishes the invariant for state read
from a checkpoint, recomputing every counter from the bits).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline int cf_popcount(unsigned long long x) { return (int)__popcnt64(x); }
    static inline int cf_ctz(unsigned long long x) {
        unsigned long i; _BitScanForward64(&i, x); return (int)i;
    }
    #else
    static inline int cf_popcount(unsigned long long x) { return __builtin_popcountll(x); }
    static inline int cf_ctz(unsigned long long x) { return __builtin_ctzll(x); }
    #endif
    /* Row groups hold fewer than CF_MAX_ROWS rows: counters are int32 and a slot is a uint32. */
    #define CF_MAX_ROWS ((long long)2147483648LL)
    """
    const long long CF_MAX_ROWS
    int cf_popcount(unsigned long long x) noexcept nogil
    int cf_ctz(unsigned long long x) noexcept nogil  # x must not be 0

cdef enum:
    SLOT_BATCH = -1    # the column's full-column task ("batch", or "from_scratch" for a root)
    SLOT_SCRATCH = -2  # DataDesigner's distinct "from_scratch" entry of a full-column column


ctypedef struct Graph:
    int num_columns
    const uint8_t* is_batch
    const uint8_t* is_root
    const int32_t* down_ptr
    const int32_t* down_idx
    const int32_t* cell_up_ptr
    const int32_t* cell_up_idx
    const int32_t* batch_up_ptr
    const int32_t* batch_up_idx


ctypedef struct RowGroup:
    int64_t n
    Py_ssize_t nw
    uint64_t* done
    uint64_t* ready
    uint64_t* dropped
    int32_t* n_done
    int32_t* n_resolved
    int32_t* n_ready
    int32_t* ready_from
    uint8_t* batch_done
    uint8_t* full_ready
    uint8_t* roots_added
    int64_t n_dropped
    int64_t total_ready


ctypedef struct DeltaLog:
    int64_t* added          # (key, mask) pairs, in the order the kernels found them
    Py_ssize_t n_added      # pairs
    Py_ssize_t tasks_added  # tasks (bits over every mask)
    Py_ssize_t cap_added    # pairs
    int64_t* removed
    Py_ssize_t n_removed
    Py_ssize_t tasks_removed
    Py_ssize_t cap_removed


# -- task keys --------------------------------------------------------------------------

cdef inline int64_t task_key(int column, int64_t slot) noexcept nogil:
    return ((<int64_t>column) << 32) | <int64_t><uint32_t>slot


cdef inline int key_column(int64_t key) noexcept nogil:
    return <int>(key >> 32)


cdef inline int64_t key_slot(int64_t key) noexcept nogil:
    return <int64_t><int32_t><uint32_t>key


cdef inline uint8_t full_bit(int64_t slot) noexcept nogil:
    """The ``full_ready`` bit of a full-column slot (``SLOT_BATCH`` or ``SLOT_SCRATCH``)."""
    return <uint8_t>(1 << (-slot - 1))


# -- bits ---------------------------------------------------------------------------------

cdef inline uint64_t row_bit(int64_t row) noexcept nogil:
    return (<uint64_t>1) << (row & 63)


cdef inline uint64_t tail_mask(int64_t n, Py_ssize_t w, Py_ssize_t nw) noexcept nogil:
    """Valid-row mask of word *w* (the last word of a group may be partial)."""
    cdef int64_t rem
    if w + 1 < nw:
        return ~(<uint64_t>0)
    rem = n - 64 * w
    if rem >= 64:
        return ~(<uint64_t>0)
    return ((<uint64_t>1) << rem) - 1


# -- the frontier invariant ---------------------------------------------------------------

cdef inline void set_ready(RowGroup* g, int c, int64_t slot, uint64_t bits) noexcept nogil:
    """Put tasks of column *c* into the frontier and count them.

    ``slot >= 0``: the cells flagged in *bits* within the word that holds row *slot*; none of
    them may be ready already.  ``slot < 0``: that full-column task (*bits* is 1), not ready.
    """
    cdef Py_ssize_t w
    cdef int count
    if slot >= 0:
        w = slot >> 6
        g.ready[c * g.nw + w] |= bits
        if w < g.ready_from[c]:
            g.ready_from[c] = <int32_t>w
        count = cf_popcount(bits)
    else:
        g.full_ready[c] |= full_bit(slot)
        count = 1
    g.n_ready[c] += count
    g.total_ready += count


cdef inline void clear_ready(RowGroup* g, int c, int64_t slot, uint64_t bits) noexcept nogil:
    """Take tasks of column *c* out of the frontier and uncount them (all must be ready)."""
    cdef int count
    if slot >= 0:
        g.ready[c * g.nw + (slot >> 6)] &= ~bits
        count = cf_popcount(bits)
    else:
        g.full_ready[c] &= ~full_bit(slot)
        count = 1
    g.n_ready[c] -= count
    g.total_ready -= count


cdef inline uint64_t ready_bits(const RowGroup* g, int c, int64_t slot) noexcept nogil:
    """The ready bits of the word holding row *slot*, or 1 / 0 for a full-column slot."""
    if slot >= 0:
        return g.ready[c * g.nw + (slot >> 6)]
    return 1 if g.full_ready[c] & full_bit(slot) else 0


# -- recording deltas ----------------------------------------------------------------------
# The log's buffers are reserved for the worst case of an event before the event's first
# state change (TrackerCore._reserve), so recording never allocates and never fails.

cdef inline void log_added(DeltaLog* log, int c, int64_t slot, uint64_t mask) noexcept nogil:
    log.added[2 * log.n_added] = task_key(c, slot)
    log.added[2 * log.n_added + 1] = <int64_t>mask
    log.n_added += 1
    log.tasks_added += cf_popcount(mask)


cdef inline void log_removed(DeltaLog* log, int c, int64_t slot, uint64_t mask) noexcept nogil:
    log.removed[2 * log.n_removed] = task_key(c, slot)
    log.removed[2 * log.n_removed + 1] = <int64_t>mask
    log.n_removed += 1
    log.tasks_removed += cf_popcount(mask)


cdef inline void enter(RowGroup* g, DeltaLog* log, int c, int64_t slot, uint64_t bits) noexcept nogil:
    """:func:`set_ready` and record the tasks as added."""
    set_ready(g, c, slot, bits)
    log_added(log, c, slot, bits)


cdef inline void leave(RowGroup* g, DeltaLog* log, int c, int64_t slot, uint64_t bits) noexcept nogil:
    """:func:`clear_ready` and record the tasks as removed."""
    clear_ready(g, c, slot, bits)
    log_removed(log, c, slot, bits)
