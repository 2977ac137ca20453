// Worker threads for blocking calls; completions are posted to the loop.
#include "coroutine/thread_pool.h"

namespace coblock {

ThreadPool::ThreadPool(EventLoop& loop, size_t max_workers)
    : loop_(loop), max_workers_(max_workers ? max_workers : 1) {}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    cond_.notify_all();
    for (std::thread& t : workers_)
        t.join();
}

void ThreadPool::submit(Job* job) {
    std::unique_lock<std::mutex> lock(mutex_);
    job->next = nullptr;
    if (queue_tail_)
        queue_tail_->next = job;
    else
        queue_head_ = job;
    queue_tail_ = job;
    if (idle_workers_ == 0 && workers_.size() < max_workers_) {
        workers_.emplace_back([this] { worker_main(); });
    } else {
        lock.unlock();
        cond_.notify_one();
    }
}

size_t ThreadPool::worker_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return workers_.size();
}

void ThreadPool::worker_main() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        while (!queue_head_ && !stopping_) {
            ++idle_workers_;
            cond_.wait(lock);
            --idle_workers_;
        }
        if (stopping_) return;
        Job* job = queue_head_;
        queue_head_ = job->next;
        if (!queue_head_) queue_tail_ = nullptr;
        lock.unlock();
        job->run();
        loop_.post([job] { job->done(); });
        lock.lock();
    }
}

}  // namespace coblock
