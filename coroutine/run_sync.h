// run_sync: runs coroutine code from plain code. It spawns a coroutine for
// `fn` in `loop` and polls the loop until the coroutine is done, like QEMU's
// generated bdrv_* wrappers (BDRV_POLL_WHILE). From inside a coroutine it just
// calls `fn`.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"

namespace coblock {

// Returns what `fn` returns; an exception thrown by `fn` is rethrown here.
template <class F>
auto run_sync(EventLoop& loop, F&& fn) -> std::invoke_result_t<F&> {
    using R = std::invoke_result_t<F&>;
    if (in_coroutine()) return fn();
    EventLoop::Scope scope(loop);
    std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
    bool done = false;
    std::exception_ptr error;
    spawn([&] {
        try {
            if constexpr (std::is_void_v<R>)
                fn();
            else
                result.emplace(fn());
        } catch (...) {
            error = std::current_exception();
        }
        done = true;
    });
    loop.run_until([&] { return done; });
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<R>) return std::move(*result);
}

template <class F>
auto run_sync(F&& fn) -> std::invoke_result_t<F&> {
    return run_sync(EventLoop::current(), std::forward<F>(fn));
}

}  // namespace coblock
