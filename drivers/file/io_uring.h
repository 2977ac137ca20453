// io_uring for the file driver (QEMU's block/io_uring.c): one ring per event
// loop whose completions signal an eventfd registered with the ring and
// watched by the loop; each completion re-enters its coroutine. Built only
// when COBLOCK_HAVE_IO_URING is defined (liburing found).
#pragma once

#ifdef COBLOCK_HAVE_IO_URING

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>

#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"
#include "formats/result.h"

namespace coblock {

class IoUring : public std::enable_shared_from_this<IoUring> {
  public:
    // Submission queue entries per ring; the completion queue is twice
    // that, and in-flight requests are capped here so it cannot overflow.
    static constexpr unsigned kQueueDepth = 128;
    // Rounds of reaping and resubmitting per eventfd wake-up.
    static constexpr int kMaxRoundsPerWakeup = 64;

    enum class Op { kRead, kWrite, kFdatasync };

    // The ring of `loop`, shared by all nodes using aio=io_uring in it.
    // Fails with the io_uring_queue_init errno (ENOSYS/EPERM where the
    // kernel or a seccomp policy forbids io_uring; the caller falls back).
    static Result<std::shared_ptr<IoUring>> acquire(EventLoop& loop);

    ~IoUring();
    IoUring(const IoUring&) = delete;
    IoUring& operator=(const IoUring&) = delete;

    // Submits one operation (while completions are being handed out: after
    // them, with the others queued meanwhile) and parks the calling
    // coroutine until it completes; the request lives on the
    // caller's stack (no allocation). kRead/kWrite use `iov`, which must stay valid until then;
    // kFdatasync ignores iov and offset. `rw_flags` are RWF_* bits. Returns the bytes transferred
    // (0 for kFdatasync) or -errno, raw. -EAGAIN means the kernel refused the submission: use
    // another path.
    long co_submit(Op op, int fd, const iovec* iov, int iovcnt, uint64_t offset, int rw_flags);

    unsigned in_flight() const { return in_flight_; }

  private:
    struct Request;

    IoUring(EventLoop& loop, int event_fd);
    void submit_queued();
    void process_completions();

    EventLoop& loop_;
    struct io_uring ring_;
    int event_fd_;
    unsigned in_flight_ = 0;               // SQEs handed out whose CQE has not been seen
    Request* unsubmitted_head_ = nullptr;  // queued SQEs, in queue order
    Request* unsubmitted_tail_ = nullptr;
    bool completing_ = false;  // inside process_completions()
    CoroutineList slot_waiters_;
};

}  // namespace coblock

#endif  // COBLOCK_HAVE_IO_URING
