/* The per-tracker lock that every entry point of a compiled core holds.
 *
 * Python 3.13 and later (with or without the GIL): a PyMutex, one atomic operation when
 * uncontended; a blocked caller parks without holding the GIL or its thread state.
 *
 * Earlier versions always run with the GIL, and every access to the lock happens with the GIL
 * held, so a plain flag is race-free.  A caller that finds the flag set releases the GIL and
 * yields until the holder (who needs the GIL to finish) clears it.  Measured here, the
 * alternatives on these versions (Cython's `pymutex`, which falls back to a
 * `PyThread_type_lock` there, or a `PyThread_type_lock` directly) cost about 60 ns per
 * uncontended acquire and release, a quarter of a whole event; the flag costs about 1 ns.
 *
 * Either way the lock is not re-entrant: a thread that calls a core again while inside it
 * (a garbage-collector finalizer run by an allocation in the core, say) would wait for
 * itself forever, so cf_lock_acquire refuses such a call (returns -1) instead.
 */
#ifndef CELLFRONTIER_LOCK_H
#define CELLFRONTIER_LOCK_H

#include <Python.h>
#include <pythread.h>

#if PY_VERSION_HEX >= 0x030D0000

typedef struct {
    PyMutex mutex;
    unsigned long owner; /* thread holding the mutex, 0 when free */
} cf_lock;

static inline int cf_lock_acquire(cf_lock *lock)
{
    unsigned long me = PyThread_get_thread_ident();
    if (__atomic_load_n(&lock->owner, __ATOMIC_RELAXED) == me) {
        return -1;
    }
    PyMutex_Lock(&lock->mutex);
    __atomic_store_n(&lock->owner, me, __ATOMIC_RELAXED);
    return 0;
}

static inline void cf_lock_release(cf_lock *lock)
{
    __atomic_store_n(&lock->owner, 0, __ATOMIC_RELAXED);
    PyMutex_Unlock(&lock->mutex);
}

#else

#if defined(_WIN32)
#include <windows.h>
#define cf_yield() SwitchToThread()
#else
#include <sched.h>
#define cf_yield() sched_yield()
#endif

typedef struct {
    int held;
    unsigned long owner;
} cf_lock;

static inline int cf_lock_acquire(cf_lock *lock)
{
    unsigned long me;
    if (!lock->held) {
        lock->held = 1;
        lock->owner = PyThread_get_thread_ident();
        return 0;
    }
    me = PyThread_get_thread_ident();
    if (lock->owner == me) {
        return -1;
    }
    while (lock->held) {
        Py_BEGIN_ALLOW_THREADS
        cf_yield();
        Py_END_ALLOW_THREADS
    }
    lock->held = 1;
    lock->owner = me;
    return 0;
}

static inline void cf_lock_release(cf_lock *lock)
{
    lock->held = 0;
}

#endif

#endif
