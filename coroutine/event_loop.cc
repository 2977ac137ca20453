// The event loop: epoll for fds, an intrusive list for bottom halves, a
// binary heap for timers, an eventfd for cross-thread post().
#include "coroutine/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "coroutine/thread_pool.h"

namespace coblock {

namespace detail {
constinit thread_local EventLoop* tls_current_loop = nullptr;
}  // namespace detail

namespace {

constexpr int kMaxEventsPerPoll = 128;

[[noreturn]] void fatal_errno(const char* what) {
    std::fprintf(stderr, "coblock: %s: %s\n", what, std::strerror(errno));
    std::abort();
}

// epoll_pwait2 takes a timespec (ns resolution); kernels before 5.11 lack it,
// and then the timeout is rounded up to whole milliseconds.
int wait_events(int epoll_fd, epoll_event* events, int max, int64_t timeout_ns) {
    static bool have_pwait2 = true;
    if (have_pwait2) {
        timespec ts{};
        timespec* tsp = nullptr;
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / 1000000000;
            ts.tv_nsec = timeout_ns % 1000000000;
            tsp = &ts;
        }
        int n = epoll_pwait2(epoll_fd, events, max, tsp, nullptr);
        if (n >= 0 || errno != ENOSYS) return n;
        have_pwait2 = false;
    }
    int timeout_ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999999) / 1000000);
    return epoll_wait(epoll_fd, events, max, timeout_ms);
}

}  // namespace

// ---- BottomHalf ------------------------------------------------------------

BottomHalf::BottomHalf(EventLoop& loop, std::function<void()> fn)
    : loop_(&loop), fn_(std::move(fn)) {}

BottomHalf::~BottomHalf() {
    cancel();
}

void BottomHalf::schedule() {
    if (scheduled_) return;
    scheduled_ = true;
    loop_->bh_link(this);
}

void BottomHalf::cancel() {
    if (!scheduled_) return;
    scheduled_ = false;
    loop_->bh_unlink(this);
}

void EventLoop::bh_link(BottomHalf* bh) {
    bh->next_ = nullptr;
    bh->prev_ = bh_tail_;
    if (bh_tail_)
        bh_tail_->next_ = bh;
    else
        bh_head_ = bh;
    bh_tail_ = bh;
}

void EventLoop::bh_unlink(BottomHalf* bh) {
    if (bh->prev_)
        bh->prev_->next_ = bh->next_;
    else
        bh_head_ = bh->next_;
    if (bh->next_)
        bh->next_->prev_ = bh->prev_;
    else
        bh_tail_ = bh->prev_;
    bh->prev_ = bh->next_ = nullptr;
}

void EventLoop::schedule_oneshot(std::function<void()> fn) {
    auto* bh = new BottomHalf(*this, std::move(fn));
    bh->oneshot_ = true;
    bh->schedule();
}

// Runs the bottom halves scheduled before this call. Ones scheduled by the
// callbacks land behind a sentinel and wait for the next round, so a BH that
// reschedules itself cannot starve fds and timers.
bool EventLoop::run_bottom_halves() {
    if (!bh_head_) return false;
    BottomHalf sentinel;
    sentinel.loop_ = this;
    sentinel.scheduled_ = true;
    bh_link(&sentinel);
    bool progress = false;
    for (;;) {
        BottomHalf* bh = bh_head_;
        bh_unlink(bh);
        if (bh == &sentinel) break;
        bh->scheduled_ = false;
        progress = true;
        if (bh->oneshot_) {
            std::unique_ptr<BottomHalf> owned(bh);
            owned->fn_();
        } else {
            bh->fn_();
        }
    }
    sentinel.scheduled_ = false;
    return progress;
}

// ---- Timer -----------------------------------------------------------------

Timer::Timer(EventLoop& loop, std::function<void()> fn) : loop_(loop), fn_(std::move(fn)) {}

Timer::~Timer() {
    cancel();
}

void Timer::arm_at(int64_t deadline_ns) {
    cancel();
    deadline_ns_ = deadline_ns;
    sequence_ = loop_.timer_sequence_++;
    loop_.timer_insert(this);
}

void Timer::arm_in(int64_t delay_ns) {
    arm_at(EventLoop::now_ns() + delay_ns);
}

void Timer::cancel() {
    if (armed()) loop_.timer_remove(this);
}

bool EventLoop::timer_less(size_t a, size_t b) const {
    const Timer* x = timers_[a];
    const Timer* y = timers_[b];
    if (x->deadline_ns_ != y->deadline_ns_) return x->deadline_ns_ < y->deadline_ns_;
    return x->sequence_ < y->sequence_;
}

void EventLoop::timer_swap(size_t a, size_t b) {
    std::swap(timers_[a], timers_[b]);
    timers_[a]->heap_index_ = a;
    timers_[b]->heap_index_ = b;
}

void EventLoop::timer_sift_up(size_t i) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(i, parent)) break;
        timer_swap(i, parent);
        i = parent;
    }
}

void EventLoop::timer_sift_down(size_t i) {
    for (;;) {
        size_t smallest = i;
        size_t left = 2 * i + 1;
        size_t right = left + 1;
        if (left < timers_.size() && timer_less(left, smallest)) smallest = left;
        if (right < timers_.size() && timer_less(right, smallest)) smallest = right;
        if (smallest == i) break;
        timer_swap(i, smallest);
        i = smallest;
    }
}

void EventLoop::timer_insert(Timer* t) {
    t->heap_index_ = timers_.size();
    timers_.push_back(t);
    timer_sift_up(t->heap_index_);
}

void EventLoop::timer_remove(Timer* t) {
    size_t i = t->heap_index_;
    size_t last = timers_.size() - 1;
    if (i != last) timer_swap(i, last);
    timers_.pop_back();
    t->heap_index_ = Timer::kNotArmed;
    if (i < timers_.size()) {
        timer_sift_up(i);
        timer_sift_down(i);
    }
}

bool EventLoop::run_timers() {
    if (timers_.empty()) return false;
    const int64_t now = now_ns();
    bool progress = false;
    // A callback may re-arm its own timer for `now` or earlier; it then runs
    // in the next poll, not in this loop, since its sequence number is newer
    // than this pass started with.
    const uint64_t pass_end = timer_sequence_;
    while (!timers_.empty() && timers_[0]->deadline_ns_ <= now &&
           timers_[0]->sequence_ < pass_end) {
        Timer* t = timers_[0];
        timer_remove(t);
        progress = true;
        t->fn_();
    }
    return progress;
}

// ---- EventLoop -------------------------------------------------------------

EventLoop::EventLoop() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) fatal_errno("epoll_create1");
    notify_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (notify_fd_ < 0) fatal_errno("eventfd");
    set_fd_handler(notify_fd_, [this] { drain_posted(); });
}

EventLoop::~EventLoop() {
    // Workers may still post completions: stop them first.
    thread_pool_.reset();
    while (bh_head_) {
        BottomHalf* bh = bh_head_;
        bh_unlink(bh);
        bh->scheduled_ = false;
        if (bh->oneshot_) delete bh;
    }
    for (Timer* t : timers_)
        t->heap_index_ = Timer::kNotArmed;
    timers_.clear();
    for (auto& [fd, handler] : handlers_)
        delete handler;
    for (FdHandler* handler : deferred_free_)
        delete handler;
    close(notify_fd_);
    close(epoll_fd_);
    if (detail::tls_current_loop == this) detail::tls_current_loop = nullptr;
}

EventLoop& EventLoop::current() {
    if (detail::tls_current_loop) return *detail::tls_current_loop;
    static thread_local std::unique_ptr<EventLoop> owned;
    if (!owned) owned = std::make_unique<EventLoop>();
    detail::tls_current_loop = owned.get();
    return *owned;
}

EventLoop::Scope::Scope(EventLoop& loop) : previous_(detail::tls_current_loop) {
    detail::tls_current_loop = &loop;
}

EventLoop::Scope::~Scope() {
    detail::tls_current_loop = previous_;
}

int64_t EventLoop::now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void EventLoop::set_fd_handler(int fd, std::function<void()> on_readable,
                               std::function<void()> on_writable) {
    if (!on_readable && !on_writable) {
        remove_fd_handler(fd);
        return;
    }
    // Always a fresh node: the old one may be executing right now.
    auto* handler = new FdHandler{fd, std::move(on_readable), std::move(on_writable)};
    epoll_event ev{};
    ev.events = (handler->on_readable ? EPOLLIN : 0u) | (handler->on_writable ? EPOLLOUT : 0u);
    ev.data.ptr = handler;
    auto it = handlers_.find(fd);
    if (it != handlers_.end()) {
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) fatal_errno("epoll_ctl(MOD)");
        release_handler(it->second);
        it->second = handler;
    } else {
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) fatal_errno("epoll_ctl(ADD)");
        handlers_.emplace(fd, handler);
    }
}

void EventLoop::remove_fd_handler(int fd) {
    auto it = handlers_.find(fd);
    if (it == handlers_.end()) return;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    release_handler(it->second);
    handlers_.erase(it);
}

void EventLoop::release_handler(FdHandler* handler) {
    handler->deleted = true;
    if (dispatch_depth_ > 0)
        deferred_free_.push_back(handler);
    else
        delete handler;
}

void EventLoop::post(std::function<void()> fn) {
    bool wake;
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        posted_.push_back(std::move(fn));
        wake = !notified_;
        notified_ = true;
    }
    if (wake) {
        uint64_t one = 1;
        // EAGAIN means the counter is already non-zero: the loop will wake.
        ssize_t r = write(notify_fd_, &one, sizeof one);
        (void)r;
    }
}

void EventLoop::drain_posted() {
    uint64_t count;
    ssize_t r = read(notify_fd_, &count, sizeof count);
    (void)r;
    std::vector<std::function<void()>> batch;
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        batch.swap(posted_);
        notified_ = false;
    }
    for (auto& fn : batch)
        fn();
}

int64_t EventLoop::timeout_ns() const {
    if (bh_head_) return 0;
    if (timers_.empty()) return -1;
    int64_t delta = timers_[0]->deadline_ns_ - now_ns();
    return delta > 0 ? delta : 0;
}

bool EventLoop::poll(bool blocking) {
    bool progress = run_bottom_halves();

    epoll_event events[kMaxEventsPerPoll];
    const int64_t timeout = (blocking && !progress) ? timeout_ns() : 0;
    int n = wait_events(epoll_fd_, events, kMaxEventsPerPoll, timeout);
    if (n < 0 && errno != EINTR) fatal_errno("epoll_wait");

    ++dispatch_depth_;
    for (int i = 0; i < n; ++i) {
        auto* handler = static_cast<FdHandler*>(events[i].data.ptr);
        const uint32_t ev = events[i].events;
        // Errors and hang-ups go to whichever handler exists, as poll() does.
        if (!handler->deleted && handler->on_readable && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
            progress = true;
            handler->on_readable();
        }
        if (!handler->deleted && handler->on_writable && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            progress = true;
            handler->on_writable();
        }
    }
    if (--dispatch_depth_ == 0 && !deferred_free_.empty()) {
        for (FdHandler* handler : deferred_free_)
            delete handler;
        deferred_free_.clear();
    }

    progress |= run_timers();
    progress |= run_bottom_halves();
    return progress;
}

ThreadPool& EventLoop::thread_pool() {
    if (!thread_pool_) thread_pool_ = std::make_unique<ThreadPool>(*this);
    return *thread_pool_;
}

}  // namespace coblock
