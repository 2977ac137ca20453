// Thread pool: work runs on a worker, the coroutine resumes in its own loop.
#include "coroutine/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

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

// A job submitted straight to a pool; counts its completions in the loop.
struct CountingJob final : ThreadPool::Job {
    std::function<void()> work;
    int* completed = nullptr;
    void run() override {
        if (work) work();
    }
    void done() override { ++*completed; }
};

// Keeps `depth` short jobs in flight until `total` have completed.
void run_short_jobs(EventLoop& loop, ThreadPool& pool, int total, int depth) {
    std::vector<CountingJob> jobs(depth);
    int completed = 0, submitted = 0;
    int expected_done = 0;
    while (completed < total) {
        for (; submitted - completed < depth && submitted < total; ++submitted) {
            CountingJob& job = jobs[submitted % depth];
            job.completed = &completed;
            pool.submit(&job);
        }
        expected_done = completed;
        while (completed == expected_done)
            loop.poll(true);
    }
}

// Short jobs (page-cache reads) are drained by the awake worker instead of
// waking one worker per job, which would start `depth` of them. The stall
// interval is long so that a preempted worker on a loaded machine does not
// count as blocked.
TEST(ThreadPool, ShortJobsAreDrainedByFewWorkers) {
    EventLoop loop;
    EventLoop::Scope scope(loop);
    ThreadPool pool(loop, ThreadPool::kDefaultMaxWorkers, 2'000'000'000);
    run_short_jobs(loop, pool, 3200, 32);
    EXPECT_LT(pool.worker_count(), 16u);
}

// A queued job behind one that blocks gets a worker of its own once the
// pool sees no progress, even while the pool believes jobs are short: here
// the blocked job waits for the one behind it.
TEST(ThreadPool, JobQueuedBehindABlockedOneStillRuns) {
    EventLoop loop;
    EventLoop::Scope scope(loop);
    ThreadPool pool(loop);
    run_short_jobs(loop, pool, 1000, 32);
    std::atomic<bool> second_ran{false}, give_up{false};
    int completed = 0;
    CountingJob first, second;
    first.completed = second.completed = &completed;
    first.work = [&] {
        while (!second_ran && !give_up)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    };
    second.work = [&] { second_ran = true; };
    pool.submit(&first);
    pool.submit(&second);
    const auto start = std::chrono::steady_clock::now();
    while (completed < 2 && std::chrono::steady_clock::now() - start < std::chrono::seconds(20))
        loop.poll(false);
    EXPECT_TRUE(second_ran);
    give_up = true;  // lets the pool shut down if the test failed
    while (completed < 2)
        loop.poll(true);
    EXPECT_EQ(completed, 2);
}

// Jobs that block run in parallel after a long run of short ones: the
// pool must leave its short-job mode rather than queue them on one worker.
TEST(ThreadPool, BlockingJobsRunInParallelAfterShortOnes) {
    EventLoop loop;
    EventLoop::Scope scope(loop);
    ThreadPool pool(loop);
    run_short_jobs(loop, pool, 2000, 32);
    constexpr int kJobs = 8;
    std::vector<CountingJob> jobs(kJobs);
    int completed = 0;
    const auto start = std::chrono::steady_clock::now();
    for (CountingJob& job : jobs) {
        job.completed = &completed;
        job.work = [] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); };
        pool.submit(&job);
    }
    while (completed < kJobs)
        loop.poll(true);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    // One after another they would take 2.4 s.
    EXPECT_LT(elapsed, std::chrono::milliseconds(1200));
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
