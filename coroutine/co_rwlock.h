// CoRwLock: a fair reader/writer lock for coroutines with QEMU's semantics
// (util/qemu-coroutine-lock.c): waiters queue in arrival order; a reader
// arriving while anyone waits queues too, so writers do not starve; upgrade
// and downgrade as qemu_co_rwlock_upgrade/downgrade. Loop-thread only.
#pragma once

#include "coroutine/coroutine.h"

namespace coblock {

class CoRwLock {
  public:
    CoRwLock() = default;
    CoRwLock(const CoRwLock&) = delete;
    CoRwLock& operator=(const CoRwLock&) = delete;

    // Shared: runs alongside other readers unless a writer holds or waits.
    void co_rdlock();
    // Exclusive.
    void co_wrlock();
    // Releases whichever mode the caller holds.
    void unlock();
    // Reader to writer. Immediate if the caller is the only holder and no
    // one waits; otherwise it gives up its read lock, queues as a writer and
    // returns once it holds the lock exclusively (others may run between).
    void co_upgrade();
    // Writer to reader, waking readers that queued behind it.
    void downgrade();

    // > 0: that many readers; -1: a writer; 0: free.
    int holders() const { return holders_; }

  private:
    struct Ticket {
        bool writer;
        Coroutine* co;
        Ticket* next;
    };
    void enqueue_and_wait(bool writer);
    void wake_eligible();

    int holders_ = 0;
    Ticket* head_ = nullptr;  // tickets live on the waiters' stacks
    Ticket* tail_ = nullptr;
};

}  // namespace coblock
