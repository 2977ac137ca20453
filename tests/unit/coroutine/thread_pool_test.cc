// Thread pool: work runs on a worker, the coroutine resumes in its own loop.
#include "coroutine/thread_pool.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

#include "coroutine/run_sync.h"

namespace coblock {
namespace {

TEST(ThreadPool, CoRunCompletesIntoTheCallersLoop) {
    EventLoop loop;
    const auto loop_thread = std::this_thread::get_id();
    std::thread::id worker_thread, resumed_thread;
    int result = run_sync(loop, [&] {
        int r = co_run([&] {
            worker_thread = std::this_thread::get_id();
            return 7;
        });
        resumed_thread = std::this_thread::get_id();
        EXPECT_EQ(&EventLoop::current(), &loop);
        return r;
    });
    EXPECT_EQ(result, 7);
    EXPECT_NE(worker_thread, loop_thread);
    EXPECT_EQ(resumed_thread, loop_thread);
}

TEST(ThreadPool, ManyConcurrentJobsAllComplete) {
    EventLoop loop;
    int completed = 0;
    run_sync(loop, [&] {
        int running = 0;
        for (int i = 0; i < 200; ++i) {
            ++running;
            spawn([&, i] {
                int v = co_run([i] { return i * 2; });
                EXPECT_EQ(v, i * 2);
                ++completed;
                --running;
            });
        }
        while (running > 0) {
            Coroutine* self = Coroutine::self();
            loop.schedule_oneshot([self] { wake(self); });
            yield();
        }
    });
    EXPECT_EQ(completed, 200);
    EXPECT_LE(loop.thread_pool().worker_count(), ThreadPool::kDefaultMaxWorkers);
}

TEST(ThreadPool, ExceptionOnWorkerSurfacesInCoroutine) {
    EventLoop loop;
    EXPECT_THROW(run_sync(loop, [] { co_run([] { throw std::runtime_error("worker"); }); }),
                 std::runtime_error);
}

TEST(ThreadPool, VoidJob) {
    EventLoop loop;
    bool ran = false;
    run_sync(loop, [&] { co_run([&] { ran = true; }); });
    EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace coblock
