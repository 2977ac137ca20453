// BlockBackend: what a device model holds (QEMU's BlockBackend). It owns the
// root edge of a graph and offers three ways to submit I/O: coroutine calls
// (co_*), synchronous calls that run the loop until done, and callback-style
// asynchronous calls (aio_*) whose completion runs in the loop, so an
// emulator written around callbacks can submit without knowing coroutines.
// Drive the loop on the emulator's thread (loop().poll) or add loop().fd()
// to the emulator's own epoll and call loop().poll(false) when it fires.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block/graph.h"
#include "block/iovec.h"
#include "block/node.h"
#include "coroutine/event_loop.h"
#include "formats/result.h"
#include "qapi/options_tree.h"

namespace coblock {

class BlockBackend {
  public:
    // Opens `filename`/`options` as co_open_node does and attaches a root
    // edge: read, plus write and resize unless read-only; shares only reads
    // unless flags.force_share. Runs the loop until done (plain code) or
    // directly (in a coroutine).
    static Result<std::unique_ptr<BlockBackend>> open(const std::string& filename,
                                                      qapi::OptionsTree options,
                                                      const OpenFlags& flags,
                                                      std::vector<std::string>* warnings = nullptr);
    // Attaches to an existing node.
    static Result<std::unique_ptr<BlockBackend>> attach(BlockNode* node, uint32_t perm,
                                                        uint32_t shared);
    ~BlockBackend();  // drains, then drops the root (closing the graph if last)
    BlockBackend(const BlockBackend&) = delete;
    BlockBackend& operator=(const BlockBackend&) = delete;

    BlockNode* root() const;
    BdrvChild* root_edge() const { return root_.get(); }
    uint64_t length() const;
    EventLoop& loop() const { return *loop_; }
    // Every write is followed by a flush (cache=writethrough at the device).
    void set_writethrough(bool on) { writethrough_ = on; }

    // ---- Coroutine calls ---------------------------------------------------
    Status co_preadv(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags = 0);
    Status co_pwritev(uint64_t offset, uint64_t bytes, IoVector& qiov, uint32_t flags = 0);
    Status co_pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags = 0);
    Status co_pdiscard(uint64_t offset, uint64_t bytes);
    Status co_flush();
    Status co_truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok = false);

    // ---- Synchronous calls (plain code; run the loop until done) -------------
    Status pread(uint64_t offset, void* buf, size_t bytes);
    Status pwrite(uint64_t offset, const void* buf, size_t bytes, uint32_t flags = 0);
    Status pwrite_zeroes(uint64_t offset, uint64_t bytes, uint32_t flags = 0);
    Status pdiscard(uint64_t offset, uint64_t bytes);
    Status flush();
    Status truncate(uint64_t size, bool exact, Prealloc prealloc, bool shrink_ok = false);

    // ---- Callback calls ------------------------------------------------------
    // `done(opaque, ret)` runs in the loop with ret = 0 or -errno. The
    // IoVector and its buffers must stay valid until then. Submitting costs
    // no heap allocation (the request lives on a pooled coroutine stack).
    using Completion = void (*)(void* opaque, int ret);
    void aio_preadv(uint64_t offset, IoVector* qiov, Completion done, void* opaque);
    void aio_pwritev(uint64_t offset, IoVector* qiov, Completion done, void* opaque,
                     uint32_t flags = 0);
    void aio_flush(Completion done, void* opaque);
    void aio_pdiscard(uint64_t offset, uint64_t bytes, Completion done, void* opaque);
    void aio_pwrite_zeroes(uint64_t offset, uint64_t bytes, Completion done, void* opaque,
                           uint32_t flags = 0);

    // Requests submitted and not yet completed.
    int in_flight() const { return in_flight_; }
    // Runs the loop until no request is in flight.
    void drain();

  private:
    explicit BlockBackend(std::unique_ptr<BdrvChild> root);
    template <class Fn>
    void submit(Completion done, void* opaque, Fn&& fn);

    std::unique_ptr<BdrvChild> root_;
    EventLoop* loop_;
    bool writethrough_ = false;
    int in_flight_ = 0;
};

}  // namespace coblock
