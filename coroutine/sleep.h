// co_sleep_ns: suspends the calling coroutine for a time on the monotonic
// clock of its loop.
#pragma once

#include <cstdint>

namespace coblock {

// Returns after at least `ns` nanoseconds; other coroutines and callbacks of
// the loop run meanwhile. Must be called from a coroutine.
void co_sleep_ns(int64_t ns);

}  // namespace coblock
