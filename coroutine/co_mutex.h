// CoMutex: a fair FIFO mutex for coroutines (QEMU's CoMutex). Unlocking hands
// the lock straight to the oldest waiter, so a newcomer can never overtake a
// waiting coroutine. Used by coroutines of one loop; the owner is checked on
// unlock.
#pragma once

#include "coroutine/coroutine.h"

namespace coblock {

class CoMutex {
  public:
    CoMutex() = default;
    CoMutex(const CoMutex&) = delete;
    CoMutex& operator=(const CoMutex&) = delete;

    // Takes the lock, waiting in FIFO order behind earlier lockers.
    void co_lock();
    // Takes the lock only if it is free and nobody waits; never yields.
    bool try_lock();
    // Releases the lock; aborts unless the calling coroutine owns it.
    void unlock();

    bool locked() const { return owner_ != nullptr; }
    Coroutine* owner() const { return owner_; }

  private:
    Coroutine* owner_ = nullptr;
    CoroutineList waiters_;
};

// RAII: locks in the constructor (may yield), unlocks in the destructor.
class CoMutexGuard {
  public:
    explicit CoMutexGuard(CoMutex& mutex) : mutex_(&mutex) { mutex_->co_lock(); }
    ~CoMutexGuard() {
        if (mutex_) mutex_->unlock();
    }
    CoMutexGuard(const CoMutexGuard&) = delete;
    CoMutexGuard& operator=(const CoMutexGuard&) = delete;
    // Releases early; the destructor then does nothing.
    void unlock() {
        mutex_->unlock();
        mutex_ = nullptr;
    }

  private:
    CoMutex* mutex_;
};

}  // namespace coblock
