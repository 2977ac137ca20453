// Event loop: bottom halves, timers, fd handlers, post() and sleep, with the
// order of events recorded and asserted.
#include "coroutine/event_loop.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "coroutine/coroutine.h"
#include "coroutine/run_sync.h"
#include "coroutine/sleep.h"

namespace coblock {
namespace {

using Events = std::vector<std::string>;

TEST(BottomHalf, RunsOnceAtNextIteration) {
    EventLoop loop;
    int runs = 0;
    BottomHalf bh(loop, [&] { ++runs; });
    bh.schedule();
    bh.schedule();  // idempotent while pending
    EXPECT_TRUE(bh.scheduled());
    EXPECT_TRUE(loop.poll(false));
    EXPECT_EQ(runs, 1);
    EXPECT_FALSE(loop.poll(false));
    EXPECT_EQ(runs, 1);
}

TEST(BottomHalf, CancelledNeverRuns) {
    EventLoop loop;
    int runs = 0;
    BottomHalf bh(loop, [&] { ++runs; });
    bh.schedule();
    bh.cancel();
    EXPECT_FALSE(loop.poll(false));
    EXPECT_EQ(runs, 0);
}

TEST(BottomHalf, ScheduledFromBottomHalfRunsNextRound) {
    EventLoop loop;
    Events ev;
    BottomHalf second(loop, [&] { ev.push_back("second"); });
    BottomHalf first(loop, [&] {
        ev.push_back("first");
        second.schedule();
    });
    first.schedule();
    loop.schedule_oneshot([&] { ev.push_back("oneshot"); });
    loop.poll(false);
    // `second` was scheduled by a BH of this round: it runs at the end of
    // poll(), after fds and timers, not inside the first pass.
    EXPECT_EQ(ev, (Events{"first", "oneshot", "second"}));
}

TEST(BottomHalf, CancelFromEarlierBottomHalfInSameRound) {
    EventLoop loop;
    Events ev;
    BottomHalf victim(loop, [&] { ev.push_back("victim"); });
    BottomHalf canceller(loop, [&] {
        ev.push_back("canceller");
        victim.cancel();
    });
    canceller.schedule();
    victim.schedule();
    loop.poll(false);
    EXPECT_EQ(ev, (Events{"canceller"}));
}

TEST(BottomHalf, ScheduledFromFdHandler) {
    EventLoop loop;
    Events ev;
    int efd = eventfd(1, EFD_NONBLOCK);
    BottomHalf bh(loop, [&] { ev.push_back("bh"); });
    loop.set_fd_handler(efd, [&] {
        uint64_t v;
        ASSERT_EQ(read(efd, &v, sizeof v), 8);
        ev.push_back("fd");
        bh.schedule();
    });
    loop.poll(true);
    EXPECT_EQ(ev, (Events{"fd", "bh"}));
    loop.remove_fd_handler(efd);
    close(efd);
}

TEST(Timer, FireInDeadlineOrderThenFifo) {
    EventLoop loop;
    Events ev;
    const int64_t now = EventLoop::now_ns();
    Timer late(loop, [&] { ev.push_back("late"); });
    Timer early(loop, [&] { ev.push_back("early"); });
    Timer tie_a(loop, [&] { ev.push_back("tie_a"); });
    Timer tie_b(loop, [&] { ev.push_back("tie_b"); });
    late.arm_at(now + 3'000'000);
    tie_a.arm_at(now + 2'000'000);
    tie_b.arm_at(now + 2'000'000);
    early.arm_at(now + 1'000'000);
    loop.run_until([&] { return ev.size() == 4; });
    EXPECT_EQ(ev, (Events{"early", "tie_a", "tie_b", "late"}));
    EXPECT_GE(EventLoop::now_ns(), now + 3'000'000);
}

TEST(Timer, CancelAndRearm) {
    EventLoop loop;
    int fired = 0;
    Timer t(loop, [&] { ++fired; });
    t.arm_in(1'000'000);
    EXPECT_TRUE(t.armed());
    t.cancel();
    EXPECT_FALSE(t.armed());
    t.arm_in(500'000);
    t.arm_in(100'000);  // re-arming replaces the deadline
    loop.run_until([&] { return fired > 0; });
    EXPECT_EQ(fired, 1);
    EXPECT_FALSE(t.armed());
}

TEST(Timer, BlockingPollWaitsForDeadlineWithNsResolution) {
    EventLoop loop;
    bool fired = false;
    Timer t(loop, [&] { fired = true; });
    const int64_t start = EventLoop::now_ns();
    t.arm_in(300'000);  // 0.3 ms
    while (!fired)
        loop.poll(true);
    const int64_t elapsed = EventLoop::now_ns() - start;
    EXPECT_GE(elapsed, 300'000);
    EXPECT_LT(elapsed, 200'000'000);
}

TEST(FdHandler, RemovedDuringDispatchIsNotCalled) {
    EventLoop loop;
    int a = eventfd(1, EFD_NONBLOCK);
    int b = eventfd(1, EFD_NONBLOCK);
    Events ev;
    // Whichever runs first removes the other; both are ready in one poll.
    loop.set_fd_handler(a, [&] {
        ev.push_back("a");
        loop.remove_fd_handler(b);
        loop.remove_fd_handler(a);
    });
    loop.set_fd_handler(b, [&] {
        ev.push_back("b");
        loop.remove_fd_handler(a);
        loop.remove_fd_handler(b);
    });
    loop.poll(false);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_FALSE(loop.poll(false));
    close(a);
    close(b);
}

TEST(FdHandler, HandlerReplacingItselfKeepsRunningSafely) {
    EventLoop loop;
    int efd = eventfd(1, EFD_NONBLOCK);
    Events ev;
    loop.set_fd_handler(efd, [&] {
        ev.push_back("first");
        loop.set_fd_handler(efd, [&] {
            uint64_t v;
            ASSERT_EQ(read(efd, &v, sizeof v), 8);
            ev.push_back("second");
        });
        ev.push_back("first:still-alive");
    });
    loop.poll(false);
    loop.poll(false);
    EXPECT_EQ(ev, (Events{"first", "first:still-alive", "second"}));
    loop.remove_fd_handler(efd);
    close(efd);
}

TEST(Post, FromAnotherThreadWakesBlockingPoll) {
    EventLoop loop;
    std::atomic<int> ran{0};
    std::thread other([&] {
        for (int i = 0; i < 100; ++i)
            loop.post([&, i] { EXPECT_EQ(ran.fetch_add(1), i); });
    });
    loop.run_until([&] { return ran.load() == 100; });
    other.join();
    EXPECT_EQ(ran.load(), 100);
}

TEST(Post, CrossThreadWakeOfCoroutineResumesInItsLoop) {
    EventLoop loop;
    EventLoop::Scope scope(loop);
    std::thread::id resumed_on;
    bool done = false;
    Coroutine* co = Coroutine::create([&] {
        yield();
        resumed_on = std::this_thread::get_id();
        done = true;
    });
    enter(co);
    std::thread other([&] { wake(co); });  // posts to `loop`
    loop.run_until([&] { return done; });
    other.join();
    EXPECT_EQ(resumed_on, std::this_thread::get_id());
}

TEST(Loop, EachThreadHasItsOwnCurrentLoop) {
    EventLoop* mine = &EventLoop::current();
    EventLoop* theirs = nullptr;
    std::thread other([&] { theirs = &EventLoop::current(); });
    other.join();
    EXPECT_NE(mine, theirs);
    EXPECT_EQ(mine, &EventLoop::current());
    EventLoop extra;
    {
        EventLoop::Scope scope(extra);
        EXPECT_EQ(&EventLoop::current(), &extra);
    }
    EXPECT_EQ(&EventLoop::current(), mine);
}

TEST(Loop, TimeoutForEmbedding) {
    EventLoop loop;
    EXPECT_EQ(loop.timeout_ns(), -1);
    Timer t(loop, [] {});
    t.arm_in(1'000'000'000);
    EXPECT_GT(loop.timeout_ns(), 0);
    BottomHalf bh(loop, [] {});
    bh.schedule();
    EXPECT_EQ(loop.timeout_ns(), 0);
}

TEST(Sleep, SleepersWakeInDeadlineOrder) {
    EventLoop loop;
    Events ev;
    run_sync(loop, [&] {
        int done = 0;
        for (int ms : {3, 1, 2}) {
            spawn([&, ms] {
                co_sleep_ns(ms * 1'000'000);
                ev.push_back(std::to_string(ms));
                ++done;
            });
        }
        while (done < 3)
            co_sleep_ns(500'000);
    });
    EXPECT_EQ(ev, (Events{"1", "2", "3"}));
}

TEST(RunSync, ReturnsValueAndRethrows) {
    EventLoop loop;
    EXPECT_EQ(run_sync(loop,
                       [] {
                           co_sleep_ns(1000);
                           return 42;
                       }),
              42);
    EXPECT_THROW(run_sync(loop,
                          [] {
                              co_sleep_ns(1000);
                              throw std::runtime_error("from coroutine");
                          }),
                 std::runtime_error);
}

TEST(RunSync, InsideCoroutineCallsDirectly) {
    EventLoop loop;
    int depth =
        run_sync(loop, [&] { return run_sync(loop, [] { return in_coroutine() ? 1 : 0; }); });
    EXPECT_EQ(depth, 1);
}

}  // namespace
}  // namespace coblock
