// Runtime micro-benchmarks (not timed tests): enter+yield round trip, pooled
// spawn-run-finish, uncontended CoMutex, bottom half schedule+dispatch, and
// post() from another thread. Run with `meson test -C build --benchmark`.
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>

#include "coroutine/co_mutex.h"
#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"

namespace coblock {
namespace {

void BM_EnterYieldRoundTrip(benchmark::State& state) {
    bool stop = false;
    Coroutine* co = Coroutine::create([&] {
        while (!stop)
            yield();
    });
    enter(co);
    for (auto _ : state)
        enter(co);
    stop = true;
    enter(co);
}
BENCHMARK(BM_EnterYieldRoundTrip);

void BM_PooledSpawnRunFinish(benchmark::State& state) {
    int counter = 0;
    for (auto _ : state)
        spawn([&counter] { ++counter; });
    benchmark::DoNotOptimize(counter);
}
BENCHMARK(BM_PooledSpawnRunFinish);

void BM_CoMutexUncontended(benchmark::State& state) {
    CoMutex mutex;
    bool stop = false;
    Coroutine* co = Coroutine::create([&] {
        while (!stop) {
            mutex.co_lock();
            mutex.unlock();
            yield();
        }
    });
    // Measure lock+unlock pairs inside one coroutine entry per batch to keep
    // the switch cost out of the figure.
    spawn([&] {
        for (auto _ : state) {
            mutex.co_lock();
            mutex.unlock();
        }
    });
    stop = true;
    enter(co);
}
BENCHMARK(BM_CoMutexUncontended);

void BM_BottomHalfScheduleDispatch(benchmark::State& state) {
    EventLoop loop;
    int runs = 0;
    BottomHalf bh(loop, [&runs] { ++runs; });
    for (auto _ : state) {
        bh.schedule();
        loop.poll(false);
    }
    benchmark::DoNotOptimize(runs);
}
BENCHMARK(BM_BottomHalfScheduleDispatch);

// Throughput of post() from a second thread into a loop polled here: the
// figure is per posted function, including the eventfd wake-ups the batching
// leaves.
void BM_PostFromOtherThread(benchmark::State& state) {
    EventLoop loop;
    constexpr int kBatch = 1000;
    std::atomic<long> ran{0};
    long expected = 0;
    for (auto _ : state) {
        std::thread producer([&] {
            for (int i = 0; i < kBatch; ++i)
                loop.post([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
        });
        expected += kBatch;
        loop.run_until([&] { return ran.load(std::memory_order_relaxed) == expected; });
        producer.join();
    }
    state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_PostFromOtherThread)->UseRealTime();

}  // namespace
}  // namespace coblock

BENCHMARK_MAIN();
