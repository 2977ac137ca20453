// CoMutex fairness, ownership and try_lock; CoQueue wait/wake order.
#include "coroutine/co_mutex.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coroutine/co_queue.h"

namespace coblock {
namespace {

using Events = std::vector<std::string>;

TEST(CoMutex, UncontendedLockUnlock) {
    CoMutex m;
    spawn([&] {
        m.co_lock();
        EXPECT_TRUE(m.locked());
        EXPECT_EQ(m.owner(), Coroutine::self());
        EXPECT_EQ(Coroutine::self()->locks_held(), 1);
        m.unlock();
        EXPECT_EQ(Coroutine::self()->locks_held(), 0);
    });
    EXPECT_FALSE(m.locked());
}

TEST(CoMutex, WaitersAreServedInFifoOrder) {
    CoMutex m;
    Events ev;
    Coroutine* holder = Coroutine::create([&] {
        m.co_lock();
        ev.push_back("holder:locked");
        yield();
        ev.push_back("holder:unlock");
        m.unlock();
    });
    enter(holder);
    for (const char* name : {"w1", "w2", "w3"}) {
        spawn([&, name] {
            ev.push_back(std::string(name) + ":wait");
            m.co_lock();
            ev.push_back(std::string(name) + ":locked");
            m.unlock();
        });
    }
    enter(holder);
    EXPECT_EQ(ev, (Events{"holder:locked", "w1:wait", "w2:wait", "w3:wait", "holder:unlock",
                          "w1:locked", "w2:locked", "w3:locked"}));
    EXPECT_FALSE(m.locked());
}

TEST(CoMutex, UnlockHandsOffSoNewcomersCannotBarge) {
    CoMutex m;
    Events ev;
    Coroutine* holder = Coroutine::create([&] {
        m.co_lock();
        yield();
        m.unlock();  // hands to `waiter`, queued behind us
        // `waiter` has not run yet, but it already owns the lock:
        ev.push_back(m.try_lock() ? "barged" : "newcomer-refused");
    });
    enter(holder);
    spawn([&] {
        m.co_lock();
        ev.push_back("waiter:locked");
        m.unlock();
    });
    enter(holder);
    EXPECT_EQ(ev, (Events{"newcomer-refused", "waiter:locked"}));
}

TEST(CoMutex, TryLockFailsWhenHeld) {
    CoMutex m;
    spawn([&] {
        EXPECT_TRUE(m.try_lock());
        spawn([&] { EXPECT_FALSE(m.try_lock()); });
        m.unlock();
    });
}

TEST(CoMutex, GuardUnlocksAtScopeEnd) {
    CoMutex m;
    spawn([&] {
        {
            CoMutexGuard guard(m);
            EXPECT_TRUE(m.locked());
        }
        EXPECT_FALSE(m.locked());
        CoMutexGuard guard(m);
        guard.unlock();
        EXPECT_FALSE(m.locked());
    });
}

TEST(CoMutexDeathTest, UnlockByNonOwnerAborts) {
    EXPECT_DEATH(
        {
            CoMutex m;
            Coroutine* owner = Coroutine::create([&] {
                m.co_lock();
                yield();
            });
            enter(owner);
            spawn([&] { m.unlock(); });
        },
        "does not own it");
}

TEST(CoMutexDeathTest, TerminatingWithLockHeldAborts) {
    EXPECT_DEATH(
        {
            CoMutex m;
            spawn([&] { m.co_lock(); });
        },
        "holding a lock");
}

TEST(CoQueue, WakeOneServesOldestWaiter) {
    CoQueue q;
    Events ev;
    for (const char* name : {"a", "b", "c"}) {
        spawn([&, name] {
            q.co_wait();
            ev.push_back(name);
        });
    }
    EXPECT_FALSE(q.empty());
    EXPECT_TRUE(q.wake_one());
    EXPECT_EQ(ev, (Events{"a"}));
    q.wake_all();
    EXPECT_EQ(ev, (Events{"a", "b", "c"}));
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.wake_one());
}

TEST(CoQueue, WakeAllFromCoroutineRunsWaitersAfterItYields) {
    CoQueue q;
    Events ev;
    for (const char* name : {"a", "b"}) {
        spawn([&, name] {
            q.co_wait();
            ev.push_back(name);
        });
    }
    spawn([&] {
        q.wake_all();
        ev.push_back("waker");
    });
    EXPECT_EQ(ev, (Events{"waker", "a", "b"}));
}

TEST(CoQueue, WaitReleasesAndRetakesMutex) {
    CoMutex m;
    CoQueue q;
    bool ready = false;
    Events ev;
    spawn([&] {
        m.co_lock();
        while (!ready)
            q.co_wait(&m);
        ev.push_back("consumer:ready");
        EXPECT_EQ(m.owner(), Coroutine::self());
        m.unlock();
    });
    spawn([&] {
        m.co_lock();  // free: the consumer released it while waiting
        ready = true;
        q.wake_one();
        ev.push_back("producer:signalled");
        m.unlock();
    });
    EXPECT_EQ(ev, (Events{"producer:signalled", "consumer:ready"}));
}

}  // namespace
}  // namespace coblock
