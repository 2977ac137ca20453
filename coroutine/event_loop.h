// The event loop, QEMU's AioContext: epoll fd handlers, one-shot and reusable
// bottom halves, monotonic timers with ns resolution, and a thread-safe post()
// woken through an eventfd. One loop is current per thread; a graph belongs
// to one loop at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace coblock {

class EventLoop;
class ThreadPool;

namespace detail {
// The loop attached to this thread, or nullptr before the first use.
extern thread_local constinit EventLoop* tls_current_loop;
}  // namespace detail

// A callback the loop runs once, at its next iteration, per schedule(). Owned
// by the caller; destroying it cancels it. Loop-thread only.
class BottomHalf {
  public:
    BottomHalf(EventLoop& loop, std::function<void()> fn);
    ~BottomHalf();
    BottomHalf(const BottomHalf&) = delete;
    BottomHalf& operator=(const BottomHalf&) = delete;

    // Idempotent while pending: scheduling twice runs the callback once.
    void schedule();
    void cancel();
    bool scheduled() const { return scheduled_; }

  private:
    friend class EventLoop;
    BottomHalf() = default;  // the loop's dispatch sentinel

    EventLoop* loop_ = nullptr;
    std::function<void()> fn_;
    BottomHalf* prev_ = nullptr;
    BottomHalf* next_ = nullptr;
    bool scheduled_ = false;
    bool oneshot_ = false;  // owned by the loop, deleted after running
};

// A one-shot timer on the monotonic clock. Owned by the caller; destroying it
// cancels it. Loop-thread only.
class Timer {
  public:
    Timer(EventLoop& loop, std::function<void()> fn);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // (Re)arms the timer for an absolute CLOCK_MONOTONIC time in ns.
    void arm_at(int64_t deadline_ns);
    void arm_in(int64_t delay_ns);
    void cancel();
    bool armed() const { return heap_index_ != kNotArmed; }
    int64_t deadline() const { return deadline_ns_; }

  private:
    friend class EventLoop;
    static constexpr size_t kNotArmed = SIZE_MAX;

    EventLoop& loop_;
    std::function<void()> fn_;
    int64_t deadline_ns_ = 0;
    uint64_t sequence_ = 0;  // FIFO among equal deadlines
    size_t heap_index_ = kNotArmed;
};

class EventLoop {
  public:
    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // The calling thread's loop: the one attached with Scope, else a loop
    // owned by the thread and created on first use.
    static EventLoop& current();

    // Attaches `loop` as the current loop of this thread for a scope.
    class Scope {
      public:
        explicit Scope(EventLoop& loop);
        ~Scope();
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

      private:
        EventLoop* previous_;
    };

    // CLOCK_MONOTONIC in nanoseconds.
    static int64_t now_ns();

    // Registers level-triggered handlers for `fd`, replacing earlier ones.
    // Either may be empty. Safe to call from inside any handler, including
    // the fd's own: a removed handler is never called again, even for events
    // already fetched in the current iteration.
    void set_fd_handler(int fd, std::function<void()> on_readable,
                        std::function<void()> on_writable = {});
    void remove_fd_handler(int fd);

    // Runs `fn` once at the next iteration (QEMU's aio_bh_schedule_oneshot).
    void schedule_oneshot(std::function<void()> fn);

    // Thread-safe: queues `fn` to run in this loop and wakes it. Functions
    // posted from one thread run in the order they were posted.
    void post(std::function<void()> fn);

    // One iteration: runs pending bottom halves, waits for fds (blocking
    // only if `blocking` and nothing is pending, until the next timer
    // deadline), dispatches fd handlers, expired timers and the bottom halves
    // they scheduled. Returns whether any callback ran.
    bool poll(bool blocking);

    template <class Pred>
    void run_until(Pred&& done) {
        while (!done())
            poll(true);
    }

    // For embedding in a foreign epoll: this fd becomes readable when the
    // loop has fd events; call poll(false) then. timeout_ns() says how long
    // the foreign loop may sleep: 0 when work is pending, -1 for no limit.
    int fd() const { return epoll_fd_; }
    int64_t timeout_ns() const;

    // The pool of worker threads whose completions come back to this loop.
    ThreadPool& thread_pool();

  private:
    friend class BottomHalf;
    friend class Timer;
    struct FdHandler {
        int fd;
        std::function<void()> on_readable;
        std::function<void()> on_writable;
        bool deleted = false;
    };

    void bh_link(BottomHalf* bh);
    void bh_unlink(BottomHalf* bh);
    bool run_bottom_halves();
    void timer_insert(Timer* t);
    void timer_remove(Timer* t);
    void timer_sift_up(size_t i);
    void timer_sift_down(size_t i);
    bool timer_less(size_t a, size_t b) const;
    void timer_swap(size_t a, size_t b);
    bool run_timers();
    void drain_posted();
    void release_handler(FdHandler* handler);

    int epoll_fd_ = -1;
    int notify_fd_ = -1;  // eventfd for post()

    std::unordered_map<int, FdHandler*> handlers_;
    std::vector<FdHandler*> deferred_free_;  // removed while dispatching
    int dispatch_depth_ = 0;

    BottomHalf* bh_head_ = nullptr;
    BottomHalf* bh_tail_ = nullptr;

    std::vector<Timer*> timers_;  // binary min-heap on (deadline, sequence)
    uint64_t timer_sequence_ = 0;

    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    bool notified_ = false;  // guarded by posted_mutex_

    std::unique_ptr<ThreadPool> thread_pool_;
};

}  // namespace coblock
