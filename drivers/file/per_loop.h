// PerLoop<T>: one shared instance of T per event loop (the libaio context
// and the io_uring ring, as QEMU keeps one per AioContext), alive while some
// node of that loop holds it.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "coroutine/event_loop.h"
#include "formats/result.h"

namespace coblock {

// Instances die with their last holder, so a loop destroyed after its
// nodes leaves nothing behind; a new loop that reuses the address finds an
// expired entry and gets a fresh instance.
template <class T>
class PerLoop {
  public:
    // The instance of `loop`, or a new one from `create()` (which returns
    // Result<std::shared_ptr<T>>). Failures are not cached: the next open
    // tries again.
    template <class Create>
    Result<std::shared_ptr<T>> acquire(EventLoop& loop, Create&& create) {
        std::lock_guard<std::mutex> guard(mutex_);
        auto it = instances_.find(&loop);
        if (it != instances_.end()) {
            if (std::shared_ptr<T> existing = it->second.lock()) return existing;
        }
        ASSIGN_OR_RETURN(std::shared_ptr<T> made, create());
        instances_[&loop] = made;
        return made;
    }

    // Called from T's destructor: drops the loop's entry if it is this
    // (now expired) instance's.
    void forget(EventLoop& loop) {
        std::lock_guard<std::mutex> guard(mutex_);
        auto it = instances_.find(&loop);
        if (it != instances_.end() && it->second.expired()) instances_.erase(it);
    }

  private:
    std::mutex mutex_;
    std::map<EventLoop*, std::weak_ptr<T>> instances_;
};

}  // namespace coblock
