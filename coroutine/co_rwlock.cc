// CoRwLock: a ticket queue of readers and writers, served in order.
#include "coroutine/co_rwlock.h"

#include <cstdio>
#include <cstdlib>

namespace coblock {

namespace {
[[noreturn]] void fatal(const char* message) {
    std::fprintf(stderr, "coblock: %s\n", message);
    std::abort();
}
Coroutine* require_self(const char* what) {
    Coroutine* self = Coroutine::self();
    if (!self) fatal(what);
    return self;
}
}  // namespace

// The waker grants the lock before waking, so a waiter owns it on return.
void CoRwLock::enqueue_and_wait(bool writer) {
    Ticket ticket{writer, Coroutine::self(), nullptr};
    if (tail_)
        tail_->next = &ticket;
    else
        head_ = &ticket;
    tail_ = &ticket;
    yield();
}

// Grants the lock to the head of the queue while it is compatible: a run of
// readers while no writer holds, or one writer when the lock is free.
void CoRwLock::wake_eligible() {
    while (head_) {
        Ticket* t = head_;
        if (t->writer) {
            if (holders_ != 0) return;
            holders_ = -1;
        } else {
            if (holders_ < 0) return;
            ++holders_;
        }
        head_ = t->next;
        if (!head_) tail_ = nullptr;
        Coroutine* co = t->co;  // the ticket dies once `co` runs
        wake(co);
        if (holders_ < 0) return;
    }
}

void CoRwLock::co_rdlock() {
    Coroutine* self = require_self("CoRwLock::co_rdlock() called outside a coroutine");
    if (holders_ >= 0 && !head_)
        ++holders_;
    else
        enqueue_and_wait(false);
    self->lock_acquired();
}

void CoRwLock::co_wrlock() {
    Coroutine* self = require_self("CoRwLock::co_wrlock() called outside a coroutine");
    if (holders_ == 0 && !head_)
        holders_ = -1;
    else
        enqueue_and_wait(true);
    self->lock_acquired();
}

void CoRwLock::unlock() {
    Coroutine* self = require_self("CoRwLock::unlock() called outside a coroutine");
    if (holders_ == 0) fatal("CoRwLock unlocked while not held");
    self->lock_released();
    if (holders_ < 0)
        holders_ = 0;
    else
        --holders_;
    wake_eligible();
}

void CoRwLock::co_upgrade() {
    require_self("CoRwLock::co_upgrade() called outside a coroutine");
    if (holders_ <= 0) fatal("CoRwLock upgraded without a read lock");
    if (holders_ == 1 && !head_) {
        holders_ = -1;
        return;
    }
    // For fairness wait like any writer, after giving up our read lock (which
    // may let a queued writer in first). We are never granted synchronously
    // here: a non-empty queue starts with a writer while readers hold.
    --holders_;
    wake_eligible();
    enqueue_and_wait(true);
}

void CoRwLock::downgrade() {
    if (holders_ != -1) fatal("CoRwLock downgraded without the write lock");
    holders_ = 1;
    wake_eligible();
}

}  // namespace coblock
