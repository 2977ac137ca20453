// CoRwLock: parallel readers, writer exclusion, FIFO fairness, upgrade and
// downgrade.
#include "coroutine/co_rwlock.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace coblock {
namespace {

using Events = std::vector<std::string>;

// A coroutine that takes the lock in `mode`, records, waits for one more
// enter, and releases.
Coroutine* holder(CoRwLock& l, Events& ev, std::string name, bool writer) {
    return Coroutine::create([&l, &ev, name, writer] {
        ev.push_back(name + ":want");
        if (writer)
            l.co_wrlock();
        else
            l.co_rdlock();
        ev.push_back(name + ":got");
        yield();
        ev.push_back(name + ":release");
        l.unlock();
    });
}

TEST(CoRwLock, ReadersRunInParallel) {
    CoRwLock l;
    Events ev;
    Coroutine* r1 = holder(l, ev, "r1", false);
    Coroutine* r2 = holder(l, ev, "r2", false);
    enter(r1);
    enter(r2);
    EXPECT_EQ(l.holders(), 2);
    enter(r1);
    enter(r2);
    EXPECT_EQ(l.holders(), 0);
    EXPECT_EQ(ev, (Events{"r1:want", "r1:got", "r2:want", "r2:got", "r1:release", "r2:release"}));
}

TEST(CoRwLock, WriterExcludesReadersAndWriters) {
    CoRwLock l;
    Events ev;
    Coroutine* w1 = holder(l, ev, "w1", true);
    Coroutine* r1 = holder(l, ev, "r1", false);
    Coroutine* w2 = holder(l, ev, "w2", true);
    enter(w1);
    enter(r1);
    enter(w2);
    EXPECT_EQ(l.holders(), -1);
    enter(w1);  // release: r1 is next, w2 waits behind it
    EXPECT_EQ(l.holders(), 1);
    enter(r1);
    EXPECT_EQ(l.holders(), -1);
    enter(w2);
    EXPECT_EQ(ev, (Events{"w1:want", "w1:got", "r1:want", "w2:want", "w1:release", "r1:got",
                          "r1:release", "w2:got", "w2:release"}));
}

TEST(CoRwLock, ReaderQueuesBehindWaitingWriter) {
    // Fairness: r2 arrives while w waits for r1, so r2 must wait for w.
    CoRwLock l;
    Events ev;
    Coroutine* r1 = holder(l, ev, "r1", false);
    Coroutine* w = holder(l, ev, "w", true);
    Coroutine* r2 = holder(l, ev, "r2", false);
    enter(r1);
    enter(w);
    enter(r2);
    EXPECT_EQ(l.holders(), 1);
    enter(r1);
    enter(w);
    enter(r2);
    EXPECT_EQ(ev, (Events{"r1:want", "r1:got", "w:want", "r2:want", "r1:release", "w:got",
                          "w:release", "r2:got", "r2:release"}));
}

TEST(CoRwLock, ConsecutiveReadersAreWokenTogether) {
    CoRwLock l;
    Events ev;
    Coroutine* w = holder(l, ev, "w", true);
    Coroutine* r1 = holder(l, ev, "r1", false);
    Coroutine* r2 = holder(l, ev, "r2", false);
    enter(w);
    enter(r1);
    enter(r2);
    enter(w);
    EXPECT_EQ(l.holders(), 2);
    enter(r1);
    enter(r2);
}

TEST(CoRwLock, UpgradeImmediateWhenSoleReader) {
    CoRwLock l;
    spawn([&] {
        l.co_rdlock();
        l.co_upgrade();
        EXPECT_EQ(l.holders(), -1);
        l.downgrade();
        EXPECT_EQ(l.holders(), 1);
        l.unlock();
    });
    EXPECT_EQ(l.holders(), 0);
}

TEST(CoRwLock, UpgradeWaitsForOtherReaders) {
    CoRwLock l;
    Events ev;
    Coroutine* other = holder(l, ev, "other", false);
    enter(other);
    Coroutine* upgrader = Coroutine::create([&] {
        l.co_rdlock();
        ev.push_back("up:read");
        l.co_upgrade();
        ev.push_back("up:write");
        EXPECT_EQ(l.holders(), -1);
        l.unlock();
    });
    enter(upgrader);
    EXPECT_EQ(l.holders(), 1);  // its read lock was given up while waiting
    enter(other);
    EXPECT_EQ(ev, (Events{"other:want", "other:got", "up:read", "other:release", "up:write"}));
    EXPECT_EQ(l.holders(), 0);
}

TEST(CoRwLock, DowngradeWakesQueuedReaders) {
    CoRwLock l;
    Events ev;
    Coroutine* w = Coroutine::create([&] {
        l.co_wrlock();
        yield();
        l.downgrade();
        ev.push_back("w:downgraded");
        yield();
        l.unlock();
    });
    enter(w);
    Coroutine* r = holder(l, ev, "r", false);
    enter(r);
    enter(w);
    EXPECT_EQ(l.holders(), 2);
    enter(w);
    enter(r);
    EXPECT_EQ(ev, (Events{"r:want", "w:downgraded", "r:got", "r:release"}));
}

}  // namespace
}  // namespace coblock
