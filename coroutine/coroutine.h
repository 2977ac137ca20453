// Stackful coroutines on Boost.Context's raw fcontext, with QEMU's semantics
// (util/qemu-coroutine.c): entering runs the callee until it yields or ends;
// a coroutine woken while another runs is queued on the running one and
// entered after it yields, depth first, never recursively.
#pragma once

#include <cstddef>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "coroutine/stack.h"

namespace coblock {

class EventLoop;
class Coroutine;

// An intrusive FIFO of coroutines threaded through Coroutine::queue_next_. A
// coroutine sits in at most one such queue at a time (a lock's waiters, a
// CoQueue, or a wake-up list), which is what lets every wait be allocation
// free.
class CoroutineList {
  public:
    bool empty() const { return head_ == nullptr; }
    Coroutine* front() const { return head_; }
    void push_back(Coroutine* co);
    Coroutine* pop_front();
    // Moves every element of `other` in front of this list's elements.
    void prepend(CoroutineList& other);
    bool remove(Coroutine* co);

  private:
    Coroutine* head_ = nullptr;
    Coroutine* tail_ = nullptr;
};

class Coroutine {
  public:
    Coroutine(const Coroutine&) = delete;
    Coroutine& operator=(const Coroutine&) = delete;

    // Creates a coroutine that will run `fn()` when first entered. The
    // callable is moved onto the top of the coroutine's own stack, so
    // creating one costs no heap allocation when the pool has a stack ready.
    // The coroutine is recycled automatically when `fn` returns.
    template <class F>
    static Coroutine* create(F&& fn);

    // The coroutine running on this thread, or nullptr in plain code.
    static Coroutine* self();

    // The event loop this coroutine was last entered from; wake-ups from
    // other threads are posted there.
    EventLoop* loop() const { return loop_; }

    // Number of CoMutex/CoRwLock locks this coroutine holds. A coroutine
    // that ends with locks held is a bug of ours and aborts.
    int locks_held() const { return locks_held_; }
    void lock_acquired() { ++locks_held_; }
    void lock_released() { --locks_held_; }

  private:
    friend class CoroutineList;
    friend class CoroutinePool;
    friend void enter(Coroutine* co);
    friend void yield();
    friend void wake(Coroutine* co);
    struct Trampoline;

    Coroutine() = default;
    ~Coroutine() = default;
    static Coroutine* allocate();
    void prepare(size_t functor_size, size_t functor_align);

    void* ctx_ = nullptr;          // where this coroutine resumes
    void* caller_ctx_ = nullptr;   // where yield returns to
    Coroutine* caller_ = nullptr;  // the coroutine that entered us, if any
    Coroutine* queue_next_ = nullptr;
    CoroutineList wakeup_;  // woken while we ran; entered after we yield
    EventLoop* loop_ = nullptr;
    Stack stack_;
    void* functor_ = nullptr;  // lives at the top of stack_
    void (*invoke_and_destroy_)(void*) = nullptr;
    std::exception_ptr exception_;
    int locks_held_ = 0;
    bool running_ = false;       // entered and not yet yielded (maybe nested)
    bool wake_pending_ = false;  // sits in some coroutine's wake-up list
    // AddressSanitizer bookkeeping for stack switches (see sanitizer.h).
    void* asan_fake_stack_ = nullptr;
    const void* caller_stack_bottom_ = nullptr;
    size_t caller_stack_size_ = 0;
};

// True when called from inside a coroutine.
inline bool in_coroutine() {
    return Coroutine::self() != nullptr;
}

// Runs `co` until it yields or finishes, then enters, in order, every
// coroutine it woke meanwhile. From a coroutine this nests: the callee's
// yield returns here. Entering a coroutine that is already running aborts
// (an invariant of ours). If a coroutine ends with an exception, the first
// such exception is rethrown here once the pending coroutines have run.
void enter(Coroutine* co);

// Suspends the calling coroutine and returns to whoever entered it. Must be
// called from a coroutine.
void yield();

// Makes `co` runnable: from plain code it is entered now; from a coroutine it
// is queued and entered after the current coroutine yields; from another
// thread than the coroutine's loop it is posted to that loop.
void wake(Coroutine* co);

// create + enter. Returns nothing: the coroutine may have finished and been
// recycled by the time spawn returns.
template <class F>
void spawn(F&& fn) {
    enter(Coroutine::create(std::forward<F>(fn)));
}

template <class F>
Coroutine* Coroutine::create(F&& fn) {
    using Fn = std::decay_t<F>;
    static_assert(sizeof(Fn) <= 4096, "coroutine entry functor is too large for the stack top");
    Coroutine* co = allocate();
    co->prepare(sizeof(Fn), alignof(Fn));
    ::new (co->functor_) Fn(std::forward<F>(fn));
    co->invoke_and_destroy_ = [](void* p) {
        Fn* f = static_cast<Fn*>(p);
        struct Destroy {
            Fn* f;
            ~Destroy() { f->~Fn(); }
        } destroy{f};
        (*f)();
    };
    return co;
}

}  // namespace coblock
