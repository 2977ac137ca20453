// Linux native AIO (libaio) for the file driver, QEMU's block/linux-aio.c:
// one io context per event loop, completions signalled through an eventfd
// that the loop watches, each completion re-entering its coroutine.
#pragma once

#include <libaio.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>

#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"
#include "formats/result.h"

namespace coblock {

class LinuxAio : public std::enable_shared_from_this<LinuxAio> {
  public:
    // Events per context. Small on purpose: fs.aio-max-nr (65536) is shared
    // by every process on the machine and tests run in parallel. Requests
    // beyond this many in flight wait for a slot.
    static constexpr unsigned kQueueDepth = 128;
    // Rounds of reaping and resubmitting per eventfd wake-up.
    static constexpr int kMaxRoundsPerWakeup = 64;

    // The context of `loop`, shared by all nodes using aio=native in it.
    // Fails with the io_setup errno (EAGAIN: the machine-wide aio-max-nr is
    // exhausted; the caller then falls back to the thread pool).
    static Result<std::shared_ptr<LinuxAio>> acquire(EventLoop& loop);

    ~LinuxAio();
    LinuxAio(const LinuxAio&) = delete;
    LinuxAio& operator=(const LinuxAio&) = delete;

    // Submits one vectored read or write (while completions are being
    // handed out: after them, in one io_submit with the others queued
    // meanwhile) and parks the calling coroutine until it completes.
    // `iov` must stay valid until then; the request itself lives on the
    // caller's stack, so this allocates nothing. `rw_flags` are RWF_* bits
    // (RWF_DSYNC for FUA). Returns the bytes transferred or -errno, raw, for
    // the caller to convert once. -EAGAIN means the kernel refused the
    // submission with nothing in flight to wait for: use another path.
    // Must run in a coroutine of this context's loop.
    long co_submit(bool is_write, int fd, const iovec* iov, int iovcnt, uint64_t offset,
                   int rw_flags);

    unsigned in_flight() const { return in_flight_; }

  private:
    struct Request;

    LinuxAio(EventLoop& loop, io_context_t ctx, int event_fd);
    // Parks the caller until a completion frees a slot.
    void co_wait_for_slot();
    // Hands the queued requests to the kernel.
    void submit_queued();
    Request* pop_queued();
    // The eventfd handler: reaps until the ring is empty.
    void process_completions();

    EventLoop& loop_;
    io_context_t ctx_;
    int event_fd_;
    unsigned in_flight_ = 0;  // submitted, not yet reaped
    unsigned queued_ = 0;     // waiting for submit_queued()
    Request* queue_head_ = nullptr;
    Request* queue_tail_ = nullptr;
    bool completing_ = false;     // inside process_completions()
    CoroutineList slot_waiters_;  // intrusive: waiting costs no allocation
};

}  // namespace coblock
