# cython: language_level=3
"""The frontier kernels: C functions over :c:type:`Graph`, :c:type:`RowGroup` and
:c:type:`DeltaLog` (``_bits.pxd``), with no Python object anywhere.

They are ``cdef inline`` here, in the ``.pxd``, so that each core that cimports them
(``_core.pyx``, ``integrations/_dd_core.pyx``) compiles them into its own module; there is no
``_kernels`` extension module.  Chosen by measurement against the same kernels in a module of
their own, called through Cython's cross-module function pointers: the same instructions per
event, but the hot path of one event then spans one more shared object, and a simulated L1
instruction cache (cachegrind) missed about 8 to 16 times per ``mark_cell_complete`` instead
of almost never; timed side by side, a single cell event took about 8 to 10% longer.

What makes them safe to run unchecked:

* **They trust their inputs.**  Every column id, row and row-group size was validated by the
  entry point of ``_core.pyx`` (or ``integrations/_dd_core.pyx``) before the first call.
* **They cannot fail.**  ``noexcept nogil``: no allocation, no Python object, no error path.
  The delta log was reserved for the event's worst case beforehand, so recording never
  allocates; a kernel therefore either runs to the end or not at all, and a call that raises
  has changed nothing.
* **They work on words.**  A bulk event touches O(rows / 64) words per column and records one
  delta entry per word; a single event touches one word per column it reaches.
* **Each task enters the frontier at most once**, when its last dependency finishes, so no
  kernel asks whether a task was already handed out.

A ``cell_by_cell`` task (d, r) is ready when every cell upstream of d has row r done, every
``full_column`` upstream has its batch done, r is not dropped and (d, r) is not done.  A
``full_column`` task of d is ready when every batch upstream is done, every cell upstream is
done or dropped on every row, and d's batch is not done.
"""

from libc.stdint cimport int32_t, int64_t, uint64_t

from cellfrontier._bits cimport (
    SLOT_BATCH,
    SLOT_SCRATCH,
    DeltaLog,
    Graph,
    RowGroup,
    cf_ctz,
    cf_popcount,
    clear_ready,
    enter,
    full_bit,
    leave,
    row_bit,
    tail_mask,
    task_key,
)


cdef inline bint batch_ups_done(const Graph* graph, const RowGroup* g, int d) noexcept nogil:
    cdef int32_t k
    for k in range(graph.batch_up_ptr[d], graph.batch_up_ptr[d + 1]):
        if not g.batch_done[graph.batch_up_idx[k]]:
            return False
    return True


cdef inline void leave_cell(RowGroup* g, DeltaLog* log, int c, int64_t r) noexcept nogil:
    """Take cell (c, r) out of the frontier if it is there, recording the removal."""
    cdef uint64_t bit = row_bit(r)
    if g.ready[c * g.nw + (r >> 6)] & bit:
        leave(g, log, c, r, bit)


cdef inline void check_batch(const Graph* graph, RowGroup* g, DeltaLog* log, int d) noexcept nogil:
    """Make the full-column task of *d* ready if every dependency is satisfied."""
    cdef int32_t k
    if g.batch_done[d] or g.full_ready[d] & full_bit(SLOT_BATCH):
        return
    if not batch_ups_done(graph, g, d):
        return
    for k in range(graph.cell_up_ptr[d], graph.cell_up_ptr[d + 1]):
        if g.n_resolved[graph.cell_up_idx[k]] != g.n:
            return
    enter(g, log, d, SLOT_BATCH, 1)


cdef inline void check_cell(const Graph* graph, RowGroup* g, DeltaLog* log, int d, int64_t r) noexcept nogil:
    """Make cell task (d, r) ready if every dependency is satisfied."""
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w = r >> 6
    cdef uint64_t bit = row_bit(r)
    cdef int32_t k
    if (g.done[d * nw + w] | g.ready[d * nw + w] | g.dropped[w]) & bit:
        return
    if not batch_ups_done(graph, g, d):
        return
    for k in range(graph.cell_up_ptr[d], graph.cell_up_ptr[d + 1]):
        if not (g.done[graph.cell_up_idx[k] * nw + w] & bit):
            return
    enter(g, log, d, r, bit)


cdef inline void release_cells(
    const Graph* graph, RowGroup* g, DeltaLog* log, int d, const uint64_t* candidates
) noexcept nogil:
    """Make ready every cell of *d* flagged in *candidates* whose dependencies are done."""
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef int32_t k
    cdef uint64_t cand
    if not batch_ups_done(graph, g, d):
        return
    for w in range(nw):
        cand = candidates[w] & ~g.dropped[w] & ~g.done[d * nw + w] & ~g.ready[d * nw + w]
        if not cand:
            continue
        for k in range(graph.cell_up_ptr[d], graph.cell_up_ptr[d + 1]):
            cand &= g.done[graph.cell_up_idx[k] * nw + w]
        if cand:
            enter(g, log, d, 64 * w, cand)


cdef inline void visit_downstream(
    const Graph* graph, RowGroup* g, DeltaLog* log, int c, int64_t r, const uint64_t* rows, bint batches
) noexcept nogil:
    """Re-check the tasks downstream of column *c* after an event on it.

    Cell tasks: of row *r* when *rows* is NULL (none when *r* is negative as well), else of
    every row flagged in *rows*.  Full-column tasks: only when *batches* (the caller knows
    whether the event can have resolved *c* for the whole group).
    """
    cdef int32_t k
    cdef int d
    for k in range(graph.down_ptr[c], graph.down_ptr[c + 1]):
        d = graph.down_idx[k]
        if graph.is_batch[d]:
            if batches:
                check_batch(graph, g, log, d)
        elif rows != NULL:
            release_cells(graph, g, log, d, rows)
        elif r >= 0:
            check_cell(graph, g, log, d, r)


# -- events -------------------------------------------------------------------------------


cdef inline void mark_cell(const Graph* graph, RowGroup* g, DeltaLog* log, int c, int64_t r) noexcept nogil:
    """Cell (c, r) is done: O(fan-out of c), touching one word per downstream column."""
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w = r >> 6
    cdef uint64_t bit = row_bit(r)
    if g.done[c * nw + w] & bit:
        # Done already; a copy put back with add_ready_tasks() still leaves the frontier.
        leave_cell(g, log, c, r)
        return
    g.done[c * nw + w] |= bit
    g.n_done[c] += 1
    leave_cell(g, log, c, r)
    if g.dropped[w] & bit:
        return  # already counted as resolved; a dropped row unblocks no cell
    g.n_resolved[c] += 1
    visit_downstream(graph, g, log, c, r, NULL, g.n_resolved[c] == g.n)


cdef inline void mark_cells(
    const Graph* graph, RowGroup* g, DeltaLog* log, int c, uint64_t* mask
) noexcept nogil:
    """Bulk form of :func:`mark_cell`: *mask* holds the rows to mark (overwritten)."""
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef uint64_t newly, taken
    cdef int64_t n_new = 0, n_new_live = 0
    for w in range(nw):
        taken = g.ready[c * nw + w] & mask[w]  # every marked row leaves the frontier
        newly = mask[w] & ~g.done[c * nw + w]
        mask[w] = newly
        g.done[c * nw + w] |= newly
        n_new += cf_popcount(newly)
        n_new_live += cf_popcount(newly & ~g.dropped[w])
        if taken:
            leave(g, log, c, 64 * w, taken)
    if n_new == 0:
        return
    g.n_done[c] += n_new
    g.n_resolved[c] += n_new_live
    visit_downstream(graph, g, log, c, -1, mask, n_new_live and g.n_resolved[c] == g.n)


cdef inline void mark_range(
    const Graph* graph, RowGroup* g, DeltaLog* log, int c, uint64_t* all_rows
) noexcept nogil:
    """The batch of full-column *c* is done: every row done, downstreams re-checked.

    *all_rows* is scratch space of ``nw`` words.
    """
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef uint64_t newly
    cdef int64_t n_new = 0, n_new_live = 0
    if g.full_ready[c] & full_bit(SLOT_BATCH):  # even when done already (put back by add_ready_tasks())
        leave(g, log, c, SLOT_BATCH, 1)
    if g.batch_done[c]:
        return
    g.batch_done[c] = 1
    for w in range(nw):
        all_rows[w] = tail_mask(g.n, w, nw)
        newly = all_rows[w] & ~g.done[c * nw + w]
        g.done[c * nw + w] |= newly
        n_new += cf_popcount(newly)
        n_new_live += cf_popcount(newly & ~g.dropped[w])
    g.n_done[c] += n_new
    g.n_resolved[c] += n_new_live
    visit_downstream(graph, g, log, c, -1, all_rows, True)


cdef inline void drop_row(const Graph* graph, RowGroup* g, DeltaLog* log, int64_t r) noexcept nogil:
    """Drop row *r*: O(columns + fan-out), touching only the row's word of each bitmap.

    Same effect as :func:`drop_rows` on a one-row mask, without its walk over every word.
    """
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w = r >> 6
    cdef uint64_t bit = row_bit(r)
    cdef bint newly = not (g.dropped[w] & bit)
    cdef int c
    if newly:
        g.n_dropped += 1
    for c in range(graph.num_columns):
        leave_cell(g, log, c, r)
        if newly and not (g.done[c * nw + w] & bit):
            g.n_resolved[c] += 1
            # Only a column that just became fully resolved can unblock a full-column task.
            if g.n_resolved[c] == g.n:
                visit_downstream(graph, g, log, c, -1, NULL, True)
    g.dropped[w] |= bit


cdef inline void drop_rows(const Graph* graph, RowGroup* g, DeltaLog* log, uint64_t* mask) noexcept nogil:
    """Drop every row flagged in *mask* (overwritten with the newly dropped rows).

    Ready tasks of every flagged row leave the frontier, even of a row dropped before (a task
    put back with ``add_ready_tasks()``); counters move only for newly dropped rows.
    """
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef int c
    cdef int64_t n_new = 0, resolved
    cdef uint64_t taken
    for w in range(nw):
        n_new += cf_popcount(mask[w] & ~g.dropped[w])
    g.n_dropped += n_new
    for c in range(graph.num_columns):
        resolved = 0
        for w in range(nw):
            if not mask[w]:
                continue
            taken = g.ready[c * nw + w] & mask[w]
            if taken:
                leave(g, log, c, 64 * w, taken)
            if n_new:
                resolved += cf_popcount(mask[w] & ~g.dropped[w] & ~g.done[c * nw + w])
        g.n_resolved[c] += resolved
        # Only a column that just became fully resolved can unblock a full-column task.
        if resolved and g.n_resolved[c] == g.n:
            visit_downstream(graph, g, log, c, -1, NULL, True)
    for w in range(nw):
        mask[w] &= ~g.dropped[w]
        g.dropped[w] |= mask[w]


cdef inline void add_roots(const Graph* graph, RowGroup* g, DeltaLog* log, int c) noexcept nogil:
    """Admit root column *c* of the group once: its open tasks become ready."""
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef uint64_t cand
    if g.roots_added[c]:
        return
    g.roots_added[c] = 1
    if graph.is_batch[c]:
        if not g.batch_done[c] and not g.full_ready[c] & full_bit(SLOT_BATCH):
            enter(g, log, c, SLOT_BATCH, 1)
        return
    for w in range(nw):
        cand = tail_mask(g.n, w, nw) & ~g.done[c * nw + w] & ~g.dropped[w] & ~g.ready[c * nw + w]
        if cand:
            enter(g, log, c, 64 * w, cand)


cdef inline void admit_empty_group(const Graph* graph, RowGroup* g, DeltaLog* log) noexcept nogil:
    """First event of a zero-row group: its vacuously ready full-column tasks enter.

    A group of zero rows has every cell column vacuously resolved, so its full-column tasks
    without full-column upstreams are ready from the start: no cell event will ever make them
    ready.  The log is kept in column order (an insertion sort of a handful of entries), since
    these entries join those of the event that touched the group first.
    """
    cdef int c
    cdef Py_ssize_t i, j
    cdef int64_t key, mask
    for c in range(graph.num_columns):
        if graph.is_batch[c] and not graph.is_root[c]:
            check_batch(graph, g, log, c)
    for i in range(1, log.n_added):
        key = log.added[2 * i]
        mask = log.added[2 * i + 1]
        j = i - 1
        while j >= 0 and log.added[2 * j] > key:
            log.added[2 * j + 2] = log.added[2 * j]
            log.added[2 * j + 3] = log.added[2 * j + 1]
            j -= 1
        log.added[2 * j + 2] = key
        log.added[2 * j + 3] = mask


cdef inline void rebuild_frontier(
    const Graph* graph, RowGroup* g, DeltaLog* log, uint64_t* all_rows
) noexcept nogil:
    """Make ready again every task whose dependencies are satisfied and that is not done.

    Used on state read from a checkpoint: tasks handed out but not completed come back, tasks
    in the frontier stay, root tasks only where the group was admitted.
    """
    cdef int c
    fill_rows(g.n, g.nw, all_rows)
    for c in range(graph.num_columns):
        if graph.is_root[c]:
            if g.roots_added[c]:
                g.roots_added[c] = 0
                add_roots(graph, g, log, c)
        elif graph.is_batch[c]:
            check_batch(graph, g, log, c)
        else:
            release_cells(graph, g, log, c, all_rows)


# -- handing out ----------------------------------------------------------------------------


cdef inline Py_ssize_t first_ready_word(RowGroup* g, int c) noexcept nogil:
    """The first word of cell column *c* holding a ready bit (``nw`` if none).

    Starts at the column's ``ready_from`` bound and moves the bound up past the empty words,
    so that repeated hand-outs do not rescan them.
    """
    cdef Py_ssize_t w = g.ready_from[c]
    cdef Py_ssize_t nw = g.nw
    while w < nw and g.ready[c * nw + w] == 0:
        w += 1
    g.ready_from[c] = <int32_t>w
    return w


cdef inline Py_ssize_t collect_ready(
    const Graph* graph, RowGroup* g, Py_ssize_t limit, int64_t* keys, bint take
) noexcept nogil:
    """Write the task keys of up to *limit* ready tasks of *g*, in (column, row) order.

    With *take* they leave the frontier (without being recorded: they are handed out, not
    invalidated).  Returns how many keys were written.
    """
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w, n = 0
    cdef int c
    cdef int64_t left
    cdef uint64_t word, bit, found
    for c in range(graph.num_columns):
        if n >= limit:
            break
        if g.n_ready[c] == 0:
            continue
        if graph.is_batch[c]:
            if n < limit and g.full_ready[c] & full_bit(SLOT_SCRATCH):
                keys[n] = task_key(c, SLOT_SCRATCH)
                n += 1
                if take:
                    clear_ready(g, c, SLOT_SCRATCH, 1)
            if n < limit and g.full_ready[c] & full_bit(SLOT_BATCH):
                keys[n] = task_key(c, SLOT_BATCH)
                n += 1
                if take:
                    clear_ready(g, c, SLOT_BATCH, 1)
            continue
        left = g.n_ready[c]
        w = first_ready_word(g, c)
        while w < nw and left > 0 and n < limit:
            word = g.ready[c * nw + w]
            found = 0
            while word and n < limit:
                bit = word & (~word + 1)
                keys[n] = task_key(c, 64 * w + cf_ctz(word))
                n += 1
                word ^= bit
                found |= bit
            if found:
                left -= cf_popcount(found)
                if take:
                    clear_ready(g, c, 64 * w, found)
            w += 1
    return n


cdef inline Py_ssize_t copy_ready_rows(RowGroup* g, int c, int64_t* out, bint take) noexcept nogil:
    """Write the ready rows of cell column *c* to *out* (room for ``n_ready[c]``), in order."""
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t count = g.n_ready[c]
    cdef Py_ssize_t w, j = 0
    cdef uint64_t word
    w = first_ready_word(g, c)
    while w < nw and j < count:  # from the first ready word to the last ready row only
        word = g.ready[c * nw + w]
        if take and word:
            clear_ready(g, c, 64 * w, word)
        while word:
            out[j] = 64 * w + cf_ctz(word)
            j += 1
            word &= word - 1
        w += 1
    return j


cdef inline bint acknowledge(RowGroup* g, int c, int64_t slot) noexcept nogil:
    """Take a handed-out task out of the frontier without recording a removal.

    *slot* is a row (checked against the group by the caller) or a full-column slot.  Returns
    whether the task was in the frontier.
    """
    cdef uint64_t bit
    if slot < 0:
        if not g.full_ready[c] & full_bit(slot):
            return False
        clear_ready(g, c, slot, 1)
        return True
    bit = row_bit(slot)
    if not g.ready[c * g.nw + (slot >> 6)] & bit:
        return False
    clear_ready(g, c, slot, bit)
    return True


# -- whole groups -----------------------------------------------------------------------------


cdef inline void fill_rows(int64_t n, Py_ssize_t nw, uint64_t* mask) noexcept nogil:
    """Set the bits of every row of a group of *n* rows in *mask* (``nw`` words)."""
    cdef Py_ssize_t w
    for w in range(nw):
        mask[w] = tail_mask(n, w, nw)


cdef inline void rows_to_mask(const int64_t* rows, Py_ssize_t count, uint64_t* mask) noexcept nogil:
    """Set the bits of the given (validated) rows in *mask*."""
    cdef Py_ssize_t i
    for i in range(count):
        mask[rows[i] >> 6] |= row_bit(rows[i])


cdef inline int64_t open_rows(const Graph* graph, const RowGroup* g, uint64_t* mask) noexcept nogil:
    """Rows neither dropped nor done in every column (written to *mask* when not NULL)."""
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef int c
    cdef uint64_t open_word, all_done
    cdef int64_t n_open = 0
    for c in range(graph.num_columns):
        if g.n_resolved[c] != g.n:
            break
    else:
        return 0  # O(columns) when the group is complete
    for w in range(nw):
        all_done = tail_mask(g.n, w, nw)
        for c in range(graph.num_columns):
            all_done &= g.done[c * nw + w]
        open_word = tail_mask(g.n, w, nw) & ~g.dropped[w] & ~all_done
        n_open += cf_popcount(open_word)
        if mask != NULL:
            mask[w] = open_word
    return n_open


cdef inline void recount(const Graph* graph, RowGroup* g) noexcept nogil:
    """Make state read from outside consistent, then recompute every counter from the bits.

    Nothing in the input is trusted: bits past the end of the group are cleared, cell-ready
    bits of full-column columns and full-column flags of cell columns are cleared, flags are
    0 or 1, and ``n_done``, ``n_resolved``, ``n_ready``, ``n_dropped`` and ``total_ready``
    are counted afresh.  This establishes the frontier invariant of ``_bits.pxd``.
    """
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef int c
    cdef uint64_t tail
    for w in range(nw):
        tail = tail_mask(g.n, w, nw)
        g.dropped[w] &= tail
        for c in range(graph.num_columns):
            g.done[c * nw + w] &= tail
            g.ready[c * nw + w] &= tail if not graph.is_batch[c] else 0
    g.n_dropped = 0
    g.total_ready = 0
    for w in range(nw):
        g.n_dropped += cf_popcount(g.dropped[w])
    for c in range(graph.num_columns):
        g.batch_done[c] = 1 if g.batch_done[c] else 0
        g.roots_added[c] = 1 if g.roots_added[c] else 0
        if graph.is_batch[c]:
            g.full_ready[c] &= full_bit(SLOT_BATCH) | full_bit(SLOT_SCRATCH)
        else:
            g.full_ready[c] = 0
        g.n_done[c] = 0
        g.n_resolved[c] = 0
        g.n_ready[c] = cf_popcount(g.full_ready[c])
        g.ready_from[c] = 0
        for w in range(nw):
            g.n_done[c] += cf_popcount(g.done[c * nw + w])
            g.n_resolved[c] += cf_popcount(g.done[c * nw + w] | g.dropped[w])
            g.n_ready[c] += cf_popcount(g.ready[c * nw + w])
        g.total_ready += g.n_ready[c]
