// CoMutex and CoQueue: hand-off locking and FIFO wait queues.
#include "coroutine/co_mutex.h"

#include <cstdio>
#include <cstdlib>

#include "coroutine/co_queue.h"

namespace coblock {

namespace {
[[noreturn]] void fatal(const char* message) {
    std::fprintf(stderr, "coblock: %s\n", message);
    std::abort();
}
}  // namespace

void CoMutex::co_lock() {
    Coroutine* self = Coroutine::self();
    if (!self) fatal("CoMutex::co_lock() called outside a coroutine");
    if (owner_ == self) fatal("CoMutex locked twice by the same coroutine");
    if (owner_ == nullptr) {
        owner_ = self;
    } else {
        waiters_.push_back(self);
        // unlock() makes us the owner before waking us.
        yield();
    }
    self->lock_acquired();
}

bool CoMutex::try_lock() {
    Coroutine* self = Coroutine::self();
    if (!self) fatal("CoMutex::try_lock() called outside a coroutine");
    if (owner_ != nullptr) return false;
    owner_ = self;
    self->lock_acquired();
    return true;
}

void CoMutex::unlock() {
    Coroutine* self = Coroutine::self();
    if (owner_ == nullptr || owner_ != self)
        fatal("CoMutex unlocked by a coroutine that does not own it");
    self->lock_released();
    owner_ = waiters_.pop_front();
    if (owner_) wake(owner_);
}

void CoQueue::co_wait(CoMutex* mutex) {
    Coroutine* self = Coroutine::self();
    if (!self) fatal("CoQueue::co_wait() called outside a coroutine");
    waiters_.push_back(self);
    if (mutex) mutex->unlock();
    yield();
    if (mutex) mutex->co_lock();
}

bool CoQueue::wake_one() {
    Coroutine* co = waiters_.pop_front();
    if (!co) return false;
    wake(co);
    return true;
}

void CoQueue::wake_all() {
    while (wake_one()) {
    }
}

}  // namespace coblock
