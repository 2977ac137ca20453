// io_uring in coroutines (QEMU's block/io_uring.c): an SQE per request, on
// the submitting coroutine's stack, submitted at once; the ring's eventfd
// wakes the loop, which hands each CQE back to its coroutine.
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
    // Every SQE is submitted right away and in_flight_ < depth, so the
    // submission queue always has room here.
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return -EAGAIN;

    Request req;
    req.waiter = Coroutine::self();
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
    if (int ret = io_uring_submit(&ring_); ret < 0) {
        // The kernel did not take the SQE, but it stays in the queue and a
        // later submit would pass it on: make it a no-op nobody waits for
        // (its CQE is still counted), since `req` dies with this frame.
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, nullptr);
        return ret;
    }
    while (!req.done)
        yield();
    return req.result;
}

void IoUring::process_completions() {
    // A woken coroutine may close the last node using this ring.
    std::shared_ptr<IoUring> keep = shared_from_this();
    uint64_t count;
    (void)!read(event_fd_, &count, sizeof count);  // clears the counter (nonblocking)

    struct io_uring_cqe* cqe;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
        auto* req = static_cast<Request*>(io_uring_cqe_get_data(cqe));
        const int res = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);  // before waking: the CQ slot is ours to free
        --in_flight_;
        if (req != nullptr) {
            req->result = res;
            req->done = true;
            wake(req->waiter);
        }
        if (!slot_waiters_.empty() && in_flight_ < kQueueDepth) wake(slot_waiters_.pop_front());
    }
}

}  // namespace coblock

#endif  // COBLOCK_HAVE_IO_URING
