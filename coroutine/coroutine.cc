// Coroutine switching, the per-thread coroutine pool and wake-up queues.
// Follows QEMU's util/qemu-coroutine.c: entering runs pending wake-ups depth
// first; exceptions are caught in the trampoline and rethrown by enter().
#include "coroutine/coroutine.h"

#include <boost/context/detail/fcontext.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "coroutine/event_loop.h"
#include "coroutine/sanitizer.h"

namespace coblock {

namespace fctx = boost::context::detail;

namespace {

// What the coroutine side tells the enterer when it switches back.
enum class Action : uintptr_t { kYield = 1, kTerminate = 2 };

constinit thread_local Coroutine* tls_current = nullptr;

[[noreturn]] void fatal(const char* message) {
    std::fprintf(stderr, "coblock: %s\n", message);
    std::abort();
}

// ASan leaves the frames that never returned (the trampoline's) poisoned at
// the top of a finished coroutine's stack; the next user builds its functor
// there. Everything deeper was unpoisoned by normal returns or by unwinding.
constexpr size_t kStackTopUnpoison = 64 * 1024;

}  // namespace

void CoroutineList::push_back(Coroutine* co) {
    co->queue_next_ = nullptr;
    if (tail_)
        tail_->queue_next_ = co;
    else
        head_ = co;
    tail_ = co;
}

Coroutine* CoroutineList::pop_front() {
    Coroutine* co = head_;
    if (!co) return nullptr;
    head_ = co->queue_next_;
    if (!head_) tail_ = nullptr;
    co->queue_next_ = nullptr;
    return co;
}

void CoroutineList::prepend(CoroutineList& other) {
    if (other.empty()) return;
    other.tail_->queue_next_ = head_;
    if (!head_) tail_ = other.tail_;
    head_ = other.head_;
    other.head_ = other.tail_ = nullptr;
}

bool CoroutineList::remove(Coroutine* co) {
    Coroutine* prev = nullptr;
    for (Coroutine* it = head_; it; prev = it, it = it->queue_next_) {
        if (it != co) continue;
        if (prev)
            prev->queue_next_ = it->queue_next_;
        else
            head_ = it->queue_next_;
        if (tail_ == it) tail_ = prev;
        it->queue_next_ = nullptr;
        return true;
    }
    return false;
}

// A bounded per-thread free list of finished coroutines with their stacks:
// spawning from the pool costs no mmap and no heap allocation.
class CoroutinePool {
  public:
    static constexpr size_t kMaxPooled = 256;

    ~CoroutinePool() {
        for (Coroutine* co : free_)
            delete co;
    }
    Coroutine* get() {
        if (!free_.empty()) {
            Coroutine* co = free_.back();
            free_.pop_back();
            return co;
        }
        Coroutine* co = new Coroutine();
        co->stack_ = Stack::allocate();
        return co;
    }
    void put(Coroutine* co) {
        if (free_.size() < kMaxPooled) {
            size_t n =
                co->stack_.size() < kStackTopUnpoison ? co->stack_.size() : kStackTopUnpoison;
            sanitizer_unpoison(static_cast<char*>(co->stack_.top()) - n, n);
            free_.push_back(co);
        } else {
            delete co;
        }
    }
    size_t size() const { return free_.size(); }

  private:
    std::vector<Coroutine*> free_;
};

namespace {
CoroutinePool& pool() {
    static thread_local CoroutinePool instance;
    return instance;
}
}  // namespace

size_t coroutine_pool_size() {
    return pool().size();
}

struct Coroutine::Trampoline {
    [[noreturn]] static void entry(fctx::transfer_t from) {
        Coroutine* co = static_cast<Coroutine*>(from.data);
        co->caller_ctx_ = from.fctx;
        sanitizer_finish_switch(nullptr, &co->caller_stack_bottom_, &co->caller_stack_size_);
        try {
            co->invoke_and_destroy_(co->functor_);
        } catch (...) {
            // Never let an exception unwind across the switch: park it for
            // enter() to rethrow on the enterer's stack.
            co->exception_ = std::current_exception();
        }
        co->functor_ = nullptr;
        // This stack is abandoned now: no fake stack to save.
        sanitizer_start_switch(nullptr, co->caller_stack_bottom_, co->caller_stack_size_);
        fctx::jump_fcontext(co->caller_ctx_, reinterpret_cast<void*>(Action::kTerminate));
        fatal("a terminated coroutine was resumed");
    }
};

Coroutine* Coroutine::self() {
    return tls_current;
}

Coroutine* Coroutine::allocate() {
    return pool().get();
}

void Coroutine::prepare(size_t functor_size, size_t functor_align) {
    auto top = reinterpret_cast<uintptr_t>(stack_.top());
    const uintptr_t align = functor_align > 16 ? functor_align : 16;
    top = (top - functor_size) & ~(align - 1);
    functor_ = reinterpret_cast<void*>(top);
    const auto bottom = reinterpret_cast<uintptr_t>(stack_.bottom());
    ctx_ = fctx::make_fcontext(reinterpret_cast<void*>(top), top - bottom, &Trampoline::entry);
    caller_ctx_ = nullptr;
    caller_ = nullptr;
    queue_next_ = nullptr;
    loop_ = nullptr;
    exception_ = nullptr;
    locks_held_ = 0;
    running_ = false;
    wake_pending_ = false;
    asan_fake_stack_ = nullptr;
    caller_stack_bottom_ = nullptr;
    caller_stack_size_ = 0;
}

void enter(Coroutine* co) {
    Coroutine* const from = tls_current;
    EventLoop* const loop = detail::tls_current_loop;
    // Coroutines woken meanwhile; the common case never touches it.
    CoroutineList pending;
    std::exception_ptr first_exception;

    for (Coroutine* to = co; to != nullptr; to = pending.empty() ? nullptr : pending.pop_front()) {
        if (to->running_) fatal("coroutine re-entered recursively");
        to->running_ = true;
        to->wake_pending_ = false;
        to->caller_ = from;
        to->loop_ = loop;
        tls_current = to;

        void* fake_stack = nullptr;
        sanitizer_start_switch(&fake_stack, to->stack_.bottom(), to->stack_.size());
        fctx::transfer_t back = fctx::jump_fcontext(to->ctx_, to);
        sanitizer_finish_switch(fake_stack, nullptr, nullptr);

        tls_current = from;
        to->ctx_ = back.fctx;
        to->running_ = false;
        to->caller_ = nullptr;
        // Coroutines woken by `to` run next, before older pending ones
        // (depth first, as QEMU does).
        if (!to->wakeup_.empty()) pending.prepend(to->wakeup_);

        if (static_cast<Action>(reinterpret_cast<uintptr_t>(back.data)) == Action::kTerminate) {
            if (to->locks_held_ != 0) fatal("coroutine terminated while holding a lock");
            if (to->exception_ && !first_exception) first_exception = to->exception_;
            to->exception_ = nullptr;
            pool().put(to);
        }
    }
    if (first_exception) std::rethrow_exception(first_exception);
}

void yield() {
    Coroutine* self = tls_current;
    if (!self) fatal("yield() called outside a coroutine");
    sanitizer_start_switch(&self->asan_fake_stack_, self->caller_stack_bottom_,
                           self->caller_stack_size_);
    fctx::transfer_t back =
        fctx::jump_fcontext(self->caller_ctx_, reinterpret_cast<void*>(Action::kYield));
    sanitizer_finish_switch(self->asan_fake_stack_, &self->caller_stack_bottom_,
                            &self->caller_stack_size_);
    self->caller_ctx_ = back.fctx;
}

void wake(Coroutine* co) {
    EventLoop* home = co->loop_;
    if (home != nullptr && home != detail::tls_current_loop) {
        home->post([co] { wake(co); });
        return;
    }
    if (Coroutine* self = tls_current) {
        if (co->running_) fatal("woke a running coroutine");
        if (co->wake_pending_) fatal("coroutine woken twice before it ran");
        co->wake_pending_ = true;
        self->wakeup_.push_back(co);
        return;
    }
    enter(co);
}

}  // namespace coblock
