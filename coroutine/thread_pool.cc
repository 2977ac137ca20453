// Worker threads for blocking calls; completions are posted to the loop.
#include "coroutine/thread_pool.h"

namespace coblock {

ThreadPool::ThreadPool(EventLoop& loop, size_t max_workers, int64_t stall_ns)
    : loop_(loop),
      max_workers_(max_workers ? max_workers : 1),
      stall_ns_(stall_ns),
      stall_timer_(loop, [this] { check_stall(); }) {}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    cond_.notify_all();
    for (std::thread& t : workers_)
        t.join();
}

bool ThreadPool::wake_worker_locked() {
    if (sleeping_workers_ > wakeups_) {
        ++wakeups_;
        ++awake_workers_;
        cond_.notify_one();
        return true;
    }
    if (workers_.size() < max_workers_) {
        ++awake_workers_;
        workers_.emplace_back([this] { worker_main(); });
        return true;
    }
    return false;
}

void ThreadPool::submit(Job* job) {
    std::lock_guard<std::mutex> lock(mutex_);
    job->next = nullptr;
    if (queue_tail_)
        queue_tail_->next = job;
    else
        queue_head_ = job;
    queue_tail_ = job;
    ++queued_;
    // Awake workers that are not running a job take queued ones without a
    // wake-up. Beyond them, short jobs wait for the awake workers while the
    // backlog is small; anything else gets a worker of its own.
    const size_t free_workers = awake_workers_ - running_workers_;
    if (queued_ <= free_workers) return;
    const bool short_jobs = average_run_ns_ < kShortJobNs;
    if (!short_jobs || awake_workers_ == 0 || queued_ > kShortJobBacklog * awake_workers_) {
        wake_worker_locked();
        return;
    }
    if (!stall_timer_.armed()) {
        completed_at_stall_check_ = completed_;
        stall_timer_.arm_in(stall_ns_);
    }
}

// Runs in the loop stall_ns_ after a job was queued without a wake-up. If no
// job completed since, the awake workers are blocked: every queued job gets
// a worker, and the slow runs they report end the short-job mode.
void ThreadPool::check_stall() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queued_ == 0) return;
    if (completed_ == completed_at_stall_check_) {
        const size_t free_workers = awake_workers_ - running_workers_;
        for (size_t need = queued_ > free_workers ? queued_ - free_workers : 0; need > 0; --need)
            if (!wake_worker_locked()) break;
    }
    completed_at_stall_check_ = completed_;
    stall_timer_.arm_in(stall_ns_);
}

size_t ThreadPool::worker_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return workers_.size();
}

void ThreadPool::worker_main() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        while (!queue_head_ && !stopping_) {
            --awake_workers_;
            ++sleeping_workers_;
            cond_.wait(lock, [this] { return wakeups_ > 0 || stopping_; });
            --sleeping_workers_;
            if (wakeups_ > 0)
                --wakeups_;  // submit() counted us awake already
            else
                ++awake_workers_;
        }
        if (stopping_) return;
        Job* job = queue_head_;
        queue_head_ = job->next;
        if (!queue_head_) queue_tail_ = nullptr;
        --queued_;
        ++running_workers_;
        lock.unlock();
        const int64_t start = EventLoop::now_ns();
        job->run();
        const int64_t run_ns = EventLoop::now_ns() - start;
        loop_.post([job] { job->done(); });
        lock.lock();
        --running_workers_;
        ++completed_;
        average_run_ns_ += (run_ns - average_run_ns_) / 8;
    }
}

}  // namespace coblock
