// CoSequencer: coroutines take numbered tickets in one order and then run a
// section in that same order, whatever order they reach it in. The format
// drivers use it for compressed writes: clusters compress in parallel on the
// thread pool, but are placed in the file in the order the writes arrived,
// so a writer issuing clusters in guest order (qemu-img convert -c) gets the
// same layout as QEMU's one-at-a-time compression.
#pragma once

#include <cstdint>

#include "coroutine/co_queue.h"

namespace coblock {

class CoSequencer {
  public:
    // Holds the turn; passes it to the next ticket when released or
    // destroyed.
    class Turn {
      public:
        explicit Turn(CoSequencer* seq) : seq_(seq) {}
        Turn(const Turn&) = delete;
        Turn& operator=(const Turn&) = delete;
        ~Turn() { release(); }
        void release() {
            if (!seq_) return;
            ++seq_->turn_;
            seq_->waiters_.wake_all();
            seq_ = nullptr;
        }

      private:
        CoSequencer* seq_;
    };

    CoSequencer() = default;
    CoSequencer(const CoSequencer&) = delete;
    CoSequencer& operator=(const CoSequencer&) = delete;

    uint64_t take_ticket() { return next_ticket_++; }
    // Suspends until every earlier ticket's turn has been released. Every
    // ticket taken must come here, or later tickets wait forever.
    Turn wait_turn(uint64_t ticket) {
        while (turn_ != ticket)
            waiters_.co_wait();
        return Turn(this);
    }

  private:
    uint64_t next_ticket_ = 0;
    uint64_t turn_ = 0;
    CoQueue waiters_;
};

}  // namespace coblock
