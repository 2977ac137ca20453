// io_uring in coroutines (QEMU's block/io_uring.c): an SQE per request, on
// the submitting coroutine's stack; the ring's eventfd wakes the loop,
// which hands each CQE back to its coroutine. Requests are submitted at
// once, except those that coroutines woken by completions make: they go to
// the kernel together when the completions are done, in one io_uring_enter.
#ifdef COBLOCK_HAVE_IO_URING

#include "drivers/file/io_uring.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "drivers/file/per_loop.h"

namespace coblock {

namespace {
PerLoop<IoUring>& registry() {
    static PerLoop<IoUring> instances;
    return instances;
}
}  // namespace

struct IoUring::Request {
    Coroutine* waiter = nullptr;
    struct io_uring_sqe* sqe = nullptr;  // while not yet submitted
    Request* next_unsubmitted = nullptr;
    long result = 0;
    bool done = false;
};

Result<std::shared_ptr<IoUring>> IoUring::acquire(EventLoop& loop) {
    return registry().acquire(loop, [&loop]() -> Result<std::shared_ptr<IoUring>> {
        int event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (event_fd < 0) return errno_error(errno, "eventfd");
        std::shared_ptr<IoUring> uring(new IoUring(loop, event_fd));
        if (int ret = io_uring_queue_init(kQueueDepth, &uring->ring_, 0); ret < 0) {
            uring->event_fd_ = -1;  // the destructor must not touch the ring
            close(event_fd);
            return errno_error(-ret, "io_uring_queue_init");
        }
        if (int ret = io_uring_register_eventfd(&uring->ring_, event_fd); ret < 0)
            return errno_error(-ret, "io_uring_register_eventfd");  // destructor cleans up
        loop.set_fd_handler(event_fd, [raw = uring.get()] { raw->process_completions(); });
        return uring;
    });
}

IoUring::IoUring(EventLoop& loop, int event_fd) : loop_(loop), ring_{}, event_fd_(event_fd) {}

IoUring::~IoUring() {
    if (event_fd_ >= 0) {
        loop_.remove_fd_handler(event_fd_);
        io_uring_queue_exit(&ring_);
        close(event_fd_);
    }
    registry().forget(loop_);
}

long IoUring::co_submit(Op op, int fd, const iovec* iov, int iovcnt, uint64_t offset,
                        int rw_flags) {
    while (in_flight_ >= kQueueDepth) {
        slot_waiters_.push_back(Coroutine::self());
        yield();
    }
    // in_flight_ < depth counts every SQE handed out, so the submission
    // queue has room here.
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return -EAGAIN;

    Request req;
    req.waiter = Coroutine::self();
    req.sqe = sqe;
    switch (op) {
        case Op::kRead:
            io_uring_prep_readv2(sqe, fd, iov, static_cast<unsigned>(iovcnt), offset, rw_flags);
            break;
        case Op::kWrite:
            io_uring_prep_writev2(sqe, fd, iov, static_cast<unsigned>(iovcnt), offset, rw_flags);
            break;
        case Op::kFdatasync:
            io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
            break;
    }
    io_uring_sqe_set_data(sqe, &req);
    ++in_flight_;
    if (unsubmitted_tail_)
        unsubmitted_tail_->next_unsubmitted = &req;
    else
        unsubmitted_head_ = &req;
    unsubmitted_tail_ = &req;
    if (!completing_) submit_queued();
    while (!req.done)
        yield();
    return req.result;
}

void IoUring::submit_queued() {
    // A woken coroutine may close the last node using this ring.
    std::shared_ptr<IoUring> keep = shared_from_this();
    const int ret = io_uring_submit(&ring_);
    // The kernel takes SQEs in queue order: the first `ret` are its now.
    for (int taken = 0; taken < ret && unsubmitted_head_; ++taken) {
        Request* req = unsubmitted_head_;
        unsubmitted_head_ = req->next_unsubmitted;
        req->sqe = nullptr;
    }
    if (!unsubmitted_head_) {
        unsubmitted_tail_ = nullptr;
        return;
    }
    // The kernel refused the rest. Their SQEs stay in the queue and a later
    // submit would pass them on: make them no-ops nobody waits for (their
    // CQEs are still counted), since each request dies with its coroutine's
    // frame, and fail the requests (-EAGAIN sends them to the thread pool).
    Request* failed = unsubmitted_head_;
    unsubmitted_head_ = unsubmitted_tail_ = nullptr;
    while (failed) {
        Request* req = failed;
        failed = req->next_unsubmitted;
        io_uring_prep_nop(req->sqe);
        io_uring_sqe_set_data(req->sqe, nullptr);
        req->result = ret < 0 ? ret : -EAGAIN;
        req->done = true;
        // The submitting coroutine (when co_submit called us) sees `done`
        // itself. Others may queue new requests: the list is detached.
        if (req->waiter != Coroutine::self()) wake(req->waiter);
    }
}

void IoUring::process_completions() {
    // A woken coroutine may close the last node using this ring.
    std::shared_ptr<IoUring> keep = shared_from_this();
    uint64_t count;
    (void)!read(event_fd_, &count, sizeof count);  // clears the counter (nonblocking)

    // Coroutines woken in a round queue their next requests, which are
    // submitted together at its end. The next round reaps what completed
    // meanwhile without going back to the loop; the rounds are bounded so
    // that other fds and timers get their turn (the ring signals the
    // eventfd again for CQEs posted after the read above).
    for (int round = 0; round < kMaxRoundsPerWakeup; ++round) {
        completing_ = true;
        unsigned reaped = 0;
        struct io_uring_cqe* cqe;
        while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
            auto* req = static_cast<Request*>(io_uring_cqe_get_data(cqe));
            const int res = cqe->res;
            io_uring_cqe_seen(&ring_, cqe);  // before waking: the CQ slot is ours to free
            --in_flight_;
            ++reaped;
            if (req != nullptr) {
                req->result = res;
                req->done = true;
                wake(req->waiter);
            }
            if (!slot_waiters_.empty() && in_flight_ < kQueueDepth) wake(slot_waiters_.pop_front());
        }
        completing_ = false;
        if (unsubmitted_head_) submit_queued();
        if (reaped == 0) break;
    }
}

}  // namespace coblock

#endif  // COBLOCK_HAVE_IO_URING
