// A bounded pool of worker threads for blocking syscalls (fsync, fallocate,
// buffered I/O). co_run() parks the calling coroutine while a worker runs the
// function, then re-enters it in its own loop, as QEMU's thread-pool.c does.
#pragma once

#include <condition_variable>
#include <cstddef>
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

    // A unit of work. Lives wherever the submitter keeps it (co_run keeps it
    // on the coroutine stack) until `done` has been posted to the loop.
    struct Job {
        virtual void run() = 0;   // on a worker thread
        virtual void done() = 0;  // in the owning loop afterwards
        Job* next = nullptr;

      protected:
        ~Job() = default;
    };

    explicit ThreadPool(EventLoop& loop, size_t max_workers = kDefaultMaxWorkers);
    ~ThreadPool();  // waits for running jobs; unstarted ones never run
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // Queues `job`; workers are started on demand up to the limit.
    void submit(Job* job);
    size_t worker_count();

  private:
    void worker_main();

    EventLoop& loop_;
    const size_t max_workers_;
    std::mutex mutex_;
    std::condition_variable cond_;
    Job* queue_head_ = nullptr;
    Job* queue_tail_ = nullptr;
    size_t idle_workers_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
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
