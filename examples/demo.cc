// coblock-demo: a tour of the runtime that the quick start runs until the
// coblock-io shell exists. Three "requests" share one metadata lock, sleep
// on the loop's timers and hand a blocking call to the thread pool, and the
// timeline shows them interleave on one thread.
#include <unistd.h>
#include <cstdio>
#include <string>

#include "coroutine/co_mutex.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"
#include "coroutine/run_sync.h"
#include "coroutine/sleep.h"
#include "coroutine/thread_pool.h"

using namespace coblock;

int main() {
    EventLoop& loop = EventLoop::current();
    const int64_t start = EventLoop::now_ns();
    auto stamp = [start](const std::string& what) {
        std::printf("%7.3f ms  %s\n", (EventLoop::now_ns() - start) / 1e6, what.c_str());
    };

    CoMutex metadata_lock;
    run_sync(loop, [&] {
        int running = 0;
        for (int id = 1; id <= 3; ++id) {
            ++running;
            spawn([&, id] {
                std::string name = "request " + std::to_string(id);
                stamp(name + ": start");
                {
                    CoMutexGuard guard(metadata_lock);
                    stamp(name + ": holds the metadata lock");
                    co_sleep_ns(2'000'000);  // a metadata read
                }
                long pid = co_run([] { return static_cast<long>(getpid()); });  // a blocking call
                stamp(name + ": thread pool call returned (pid " + std::to_string(pid) + ")");
                co_sleep_ns(id * 1'000'000);  // data I/O, outside the lock
                stamp(name + ": done");
                --running;
            });
        }
        while (running > 0)
            co_sleep_ns(500'000);
    });
    std::printf("all 3 requests finished on one thread\n");
    return 0;
}
