// libaio in coroutines (QEMU's block/linux-aio.c): requests on the
// submitting coroutine's stack, one eventfd per context in the event loop,
// completions reaped without blocking and handed back to their coroutines.
#include "drivers/file/linux_aio.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "drivers/file/per_loop.h"

namespace coblock {

namespace {
PerLoop<LinuxAio>& registry() {
    static PerLoop<LinuxAio> instances;
    return instances;
}
}  // namespace

struct LinuxAio::Request {
    struct iocb cb;  // first: io_event.obj points here too
    Coroutine* waiter = nullptr;
    Request* next_queued = nullptr;
    long result = 0;
    bool done = false;
};

Result<std::shared_ptr<LinuxAio>> LinuxAio::acquire(EventLoop& loop) {
    return registry().acquire(loop, [&loop]() -> Result<std::shared_ptr<LinuxAio>> {
        io_context_t ctx = nullptr;
        if (int ret = io_setup(kQueueDepth, &ctx); ret < 0) return errno_error(-ret, "io_setup");
        int event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (event_fd < 0) {
            const int err = errno;
            io_destroy(ctx);
            return errno_error(err, "eventfd");
        }
        std::shared_ptr<LinuxAio> aio(new LinuxAio(loop, ctx, event_fd));
        loop.set_fd_handler(event_fd, [raw = aio.get()] { raw->process_completions(); });
        return aio;
    });
}

LinuxAio::LinuxAio(EventLoop& loop, io_context_t ctx, int event_fd)
    : loop_(loop), ctx_(ctx), event_fd_(event_fd) {}

LinuxAio::~LinuxAio() {
    loop_.remove_fd_handler(event_fd_);
    // Nodes drain before they close, so nothing is in flight; io_destroy
    // would wait for stragglers anyway.
    io_destroy(ctx_);
    close(event_fd_);
    registry().forget(loop_);
}

void LinuxAio::co_wait_for_slot() {
    slot_waiters_.push_back(Coroutine::self());
    yield();
}

long LinuxAio::co_submit(bool is_write, int fd, const iovec* iov, int iovcnt, uint64_t offset,
                         int rw_flags) {
    while (in_flight_ + queued_ >= kQueueDepth)
        co_wait_for_slot();

    Request req;
    req.waiter = Coroutine::self();
    if (is_write)
        io_prep_pwritev2(&req.cb, fd, iov, iovcnt, static_cast<long long>(offset), rw_flags);
    else
        io_prep_preadv2(&req.cb, fd, iov, iovcnt, static_cast<long long>(offset), rw_flags);
    io_set_eventfd(&req.cb, event_fd_);
    req.cb.data = &req;

    // Requests that coroutines woken by completions make go to the kernel
    // together, in one io_submit, once the completions are handed out.
    if (queue_tail_)
        queue_tail_->next_queued = &req;
    else
        queue_head_ = &req;
    queue_tail_ = &req;
    ++queued_;
    if (!completing_) submit_queued();
    while (!req.done)
        yield();
    return req.result;
}

void LinuxAio::submit_queued() {
    // A woken coroutine may close the last node using this context.
    std::shared_ptr<LinuxAio> keep = shared_from_this();
    while (queue_head_) {
        struct iocb* batch[kQueueDepth];
        long n = 0;
        for (Request* r = queue_head_; r && n < static_cast<long>(kQueueDepth); r = r->next_queued)
            batch[n++] = &r->cb;
        const int ret = io_submit(ctx_, n, batch);
        if (ret > 0) {
            // The kernel took the first `ret`, in order.
            for (int taken = 0; taken < ret; ++taken)
                pop_queued();
            in_flight_ += static_cast<unsigned>(ret);
            continue;
        }
        // EAGAIN: the kernel is short of resources; completions of our own
        // requests free them, and process_completions() submits again.
        if ((ret == -EAGAIN || ret == 0) && in_flight_ > 0) return;
        // Nothing to wait for (-EAGAIN goes to the thread pool), or the
        // first request is invalid: fail it alone and go on with the rest.
        const bool fail_all = ret == -EAGAIN || ret == 0;
        do {
            Request* req = pop_queued();
            req->result = ret < 0 ? ret : -EIO;
            req->done = true;
            // The submitting coroutine (when co_submit called us) sees
            // `done` itself. Others may queue more; the queue stays
            // consistent.
            if (req->waiter != Coroutine::self()) wake(req->waiter);
        } while (fail_all && queue_head_);
    }
}

LinuxAio::Request* LinuxAio::pop_queued() {
    Request* req = queue_head_;
    queue_head_ = req->next_queued;
    if (!queue_head_) queue_tail_ = nullptr;
    --queued_;
    return req;
}

void LinuxAio::process_completions() {
    // A woken coroutine may close the last node using this context.
    std::shared_ptr<LinuxAio> keep = shared_from_this();
    uint64_t count;
    (void)!read(event_fd_, &count, sizeof count);  // clears the counter (nonblocking)

    struct io_event events[kQueueDepth];
    struct timespec no_wait = {0, 0};
    // Coroutines woken in a round queue their next requests, which are
    // submitted together at its end. Requests that completed inside that
    // io_submit (O_DIRECT on tmpfs does) are reaped by the next round
    // without going back to the loop: a bounded number of rounds, so that
    // other fds and timers get their turn (the eventfd is signalled again
    // for whatever completes after the read above).
    for (int round = 0; round < kMaxRoundsPerWakeup; ++round) {
        completing_ = true;
        const int n = io_getevents(ctx_, 0, kQueueDepth, events, &no_wait);
        for (int i = 0; i < n; ++i) {
            auto* req = static_cast<Request*>(events[i].data);
            // io_event.res is unsigned: errors arrive as -errno cast to it.
            req->result = static_cast<long>(events[i].res);
            req->done = true;
            --in_flight_;
            wake(req->waiter);
        }
        while (!slot_waiters_.empty() && in_flight_ + queued_ < kQueueDepth)
            wake(slot_waiters_.pop_front());
        completing_ = false;
        // Also retries what an EAGAIN left queued for these completions.
        if (queue_head_) submit_queued();
        if (n <= 0) break;
    }
}

}  // namespace coblock
