// Coroutine semantics: enter/yield order, queued wake-ups, nesting,
// exceptions, the stack pool and many live coroutines.
#include "coroutine/coroutine.h"

#include <gtest/gtest.h>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

namespace coblock {

size_t coroutine_pool_size();

namespace {

using Events = std::vector<std::string>;

TEST(Coroutine, EnterRunsUntilYieldThenResumes) {
    Events ev;
    Coroutine* co = Coroutine::create([&] {
        ev.push_back("co:1");
        yield();
        ev.push_back("co:2");
    });
    EXPECT_FALSE(in_coroutine());
    ev.push_back("main:enter");
    enter(co);
    ev.push_back("main:after-yield");
    enter(co);
    ev.push_back("main:after-end");
    EXPECT_EQ(ev, (Events{"main:enter", "co:1", "main:after-yield", "co:2", "main:after-end"}));
}

TEST(Coroutine, SelfAndInCoroutine) {
    Coroutine* seen = nullptr;
    bool inside = false;
    Coroutine* co = Coroutine::create([&] {
        seen = Coroutine::self();
        inside = in_coroutine();
    });
    enter(co);
    EXPECT_EQ(seen, co);
    EXPECT_TRUE(inside);
    EXPECT_EQ(Coroutine::self(), nullptr);
}

TEST(Coroutine, NestedEnterReturnsToParentOnYield) {
    Events ev;
    Coroutine* child = Coroutine::create([&] {
        ev.push_back("child:1");
        yield();
        ev.push_back("child:2");
    });
    spawn([&] {
        ev.push_back("parent:1");
        enter(child);
        ev.push_back("parent:2");
        enter(child);
        ev.push_back("parent:3");
    });
    EXPECT_EQ(ev, (Events{"parent:1", "child:1", "parent:2", "child:2", "parent:3"}));
}

TEST(Coroutine, WakeFromCoroutineIsQueuedUntilItYields) {
    Events ev;
    Coroutine* sleeper = Coroutine::create([&] {
        ev.push_back("sleeper:1");
        yield();
        ev.push_back("sleeper:2");
    });
    enter(sleeper);
    Coroutine* waker = Coroutine::create([&] {
        ev.push_back("waker:wake");
        wake(sleeper);  // must not run sleeper now
        ev.push_back("waker:after-wake");
        yield();
        ev.push_back("waker:resumed");
    });
    enter(waker);
    EXPECT_EQ(ev, (Events{"sleeper:1", "waker:wake", "waker:after-wake", "sleeper:2"}));
    enter(waker);
}

TEST(Coroutine, QueuedWakeupsRunDepthFirst) {
    // A wakes B and C; B wakes D. QEMU's order: B, D, C.
    Events ev;
    Coroutine *b, *c, *d;
    d = Coroutine::create([&] { ev.push_back("D"); });
    b = Coroutine::create([&] {
        ev.push_back("B");
        wake(d);
    });
    c = Coroutine::create([&] { ev.push_back("C"); });
    spawn([&] {
        ev.push_back("A");
        wake(b);
        wake(c);
    });
    EXPECT_EQ(ev, (Events{"A", "B", "D", "C"}));
}

TEST(Coroutine, WakeFromPlainCodeEntersImmediately) {
    Events ev;
    Coroutine* co = Coroutine::create([&] {
        ev.push_back("co:1");
        yield();
        ev.push_back("co:2");
    });
    enter(co);
    wake(co);
    ev.push_back("main");
    EXPECT_EQ(ev, (Events{"co:1", "co:2", "main"}));
}

TEST(Coroutine, ExceptionSurfacesToCaller) {
    Coroutine* co = Coroutine::create([] { throw std::runtime_error("boom"); });
    try {
        enter(co);
        FAIL() << "expected an exception";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "boom");
    }
    // The runtime is still usable afterwards.
    int x = 0;
    spawn([&] { x = 1; });
    EXPECT_EQ(x, 1);
}

TEST(Coroutine, ExceptionAfterYieldSurfacesToResumer) {
    Coroutine* co = Coroutine::create([] {
        yield();
        throw std::logic_error("late");
    });
    enter(co);
    EXPECT_THROW(enter(co), std::logic_error);
}

TEST(Coroutine, ExceptionCaughtInsideStaysInside) {
    std::string caught;
    Coroutine* co = Coroutine::create([&] {
        try {
            throw std::runtime_error("inner");
        } catch (const std::exception& e) {
            caught = e.what();
        }
        yield();
    });
    enter(co);
    EXPECT_EQ(caught, "inner");
    EXPECT_NO_THROW(enter(co));
}

TEST(Coroutine, TenThousandAliveAtOnce) {
    constexpr int kCount = 10000;
    std::vector<Coroutine*> cos;
    cos.reserve(kCount);
    int started = 0, finished = 0;
    for (int i = 0; i < kCount; ++i) {
        Coroutine* co = Coroutine::create([&, i] {
            ++started;
            volatile int on_stack = i;  // each has its own stack
            yield();
            EXPECT_EQ(on_stack, i);
            ++finished;
        });
        cos.push_back(co);
        enter(co);
    }
    EXPECT_EQ(started, kCount);
    EXPECT_EQ(finished, 0);
    for (Coroutine* co : cos)
        enter(co);
    EXPECT_EQ(finished, kCount);
    EXPECT_LE(coroutine_pool_size(), 256u);
}

TEST(Coroutine, StacksAreReusedFromThePool) {
    Coroutine* first = Coroutine::create([] {});
    enter(first);
    Coroutine* second = Coroutine::create([] {});
    // The finished coroutine (and its stack) is handed out again.
    EXPECT_EQ(first, second);
    enter(second);
}

TEST(Coroutine, LargeFunctorLivesOnTheStack) {
    std::array<char, 2000> payload{};
    payload[1999] = 'z';
    char seen = 0;
    spawn([payload, &seen] { seen = payload[1999]; });
    EXPECT_EQ(seen, 'z');
}

TEST(CoroutineDeathTest, RecursiveEnterAborts) {
    EXPECT_DEATH(
        {
            Coroutine* co = nullptr;
            co = Coroutine::create([&] { enter(co); });
            enter(co);
        },
        "re-entered recursively");
}

TEST(CoroutineDeathTest, YieldOutsideCoroutineAborts) {
    EXPECT_DEATH(yield(), "outside a coroutine");
}

}  // namespace
}  // namespace coblock
