// CoQueue: coroutines waiting for a condition, woken one at a time or all at
// once in FIFO order (QEMU's CoQueue). Loop-thread only.
#pragma once

#include "coroutine/coroutine.h"

namespace coblock {

class CoMutex;

class CoQueue {
  public:
    CoQueue() = default;
    CoQueue(const CoQueue&) = delete;
    CoQueue& operator=(const CoQueue&) = delete;

    // Suspends the calling coroutine until woken. If `mutex` is given it is
    // released while waiting and held again on return, as a condition
    // variable does; the caller re-checks its condition after waking.
    void co_wait(CoMutex* mutex = nullptr);

    // Wakes the oldest waiter (queued behind the running coroutine when
    // called from one). Returns false if nobody waited.
    bool wake_one();
    // Wakes every waiter, in the order they started waiting.
    void wake_all();

    bool empty() const { return waiters_.empty(); }

  private:
    CoroutineList waiters_;
};

}  // namespace coblock
