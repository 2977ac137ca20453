// co_sleep_ns on a loop timer.
#include "coroutine/sleep.h"

#include <cstdio>
#include <cstdlib>

#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"

namespace coblock {

void co_sleep_ns(int64_t ns) {
    Coroutine* self = Coroutine::self();
    if (!self) {
        std::fprintf(stderr, "coblock: co_sleep_ns() called outside a coroutine\n");
        std::abort();
    }
    Timer timer(EventLoop::current(), [self] { wake(self); });
    timer.arm_in(ns);
    yield();
}

}  // namespace coblock
