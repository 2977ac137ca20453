// A bounded pool of worker threads for blocking syscalls (fsync, fallocate,
// buffered I/O). co_run() parks the calling coroutine while a worker runs the
// function, then re-enters it in its own loop, as QEMU's thread-pool.c does.
//
// Unlike QEMU's pool, it does not wake a worker for every job. Waking a
// sleeping thread costs a futex call on each side and two context switches,
// several microseconds; a buffered read served from the page cache takes one
// or two. While jobs are that short, one awake worker drains the queue
// faster than more workers could be woken (on two cores, 200k page-cache
// reads at queue depth 32 took 0.65 s with one worker and 1.8 s with a
// wake-up per job). Jobs that block keep the pool from stalling twice over:
// their run time moves the pool back to one wake-up per job, and a timer in
// the loop wakes more workers when queued jobs made no progress for
// kStallNs, as Linux's workqueues do when a worker sleeps.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"

namespace coblock {

class ThreadPool {
  public:
    // QEMU's default max-worker count for the block layer's pool.
    static constexpr size_t kDefaultMaxWorkers = 64;
    // Jobs averaging less than this are served from memory: the pool then
    // keeps few workers awake instead of waking one per job.
    static constexpr int64_t kShortJobNs = 20'000;
    // Queued jobs a single awake worker may have ahead of it in that mode
    // before another one is woken.
    static constexpr size_t kShortJobBacklog = 64;
    // Queued jobs that saw no completion for this long wake more workers.
    static constexpr int64_t kStallNs = 100'000;

    // A unit of work. Lives wherever the submitter keeps it (co_run keeps it
    // on the coroutine stack) until `done` has been posted to the loop.
    struct Job {
        virtual void run() = 0;   // on a worker thread
        virtual void done() = 0;  // in the owning loop afterwards
        Job* next = nullptr;

      protected:
        ~Job() = default;
    };

    explicit ThreadPool(EventLoop& loop, size_t max_workers = kDefaultMaxWorkers,
                        int64_t stall_ns = kStallNs);
    ~ThreadPool();  // waits for running jobs; unstarted ones never run
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // Queues `job`, waking or starting a worker (up to the limit) when the
    // awake ones are not enough. Loop thread only.
    void submit(Job* job);
    size_t worker_count();

  private:
    void worker_main();
    // Makes one more worker pick up jobs: a sleeping one if any, else a new
    // one below the limit. Returns false when none is left. Needs mutex_.
    bool wake_worker_locked();
    void check_stall();

    EventLoop& loop_;
    const size_t max_workers_;
    const int64_t stall_ns_;
    std::mutex mutex_;
    std::condition_variable cond_;
    Job* queue_head_ = nullptr;
    Job* queue_tail_ = nullptr;
    size_t queued_ = 0;
    size_t awake_workers_ = 0;    // not sleeping, or granted a wake-up
    size_t running_workers_ = 0;  // inside Job::run()
    size_t sleeping_workers_ = 0;
    size_t wakeups_ = 0;          // granted to sleeping workers, not yet taken
    int64_t average_run_ns_ = 0;  // moving average over the last ~8 jobs
    uint64_t completed_ = 0;
    uint64_t completed_at_stall_check_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
    Timer stall_timer_;  // loop thread
};

// Runs `fn()` on a worker of the current loop's pool and returns its result
// (or rethrows its exception) in the calling coroutine.
template <class F>
auto co_run(F&& fn) -> std::invoke_result_t<F&> {
    using R = std::invoke_result_t<F&>;
    struct CallJob final : ThreadPool::Job {
        F& fn;
        Coroutine* waiter;
        std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
        std::exception_ptr error;
        explicit CallJob(F& f) : fn(f), waiter(Coroutine::self()) {}
        void run() override {
            try {
                if constexpr (std::is_void_v<R>)
                    fn();
                else
                    result.emplace(fn());
            } catch (...) {
                error = std::current_exception();
            }
        }
        void done() override { wake(waiter); }
    } job(fn);
    if (!job.waiter) {
        std::fprintf(stderr, "coblock: co_run() called outside a coroutine\n");
        std::abort();
    }
    EventLoop::current().thread_pool().submit(&job);
    yield();
    if (job.error) std::rethrow_exception(job.error);
    if constexpr (!std::is_void_v<R>) return std::move(*job.result);
}

}  // namespace coblock
