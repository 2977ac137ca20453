// CoSequencer: turns follow ticket order, not the order coroutines arrive in;
// a released turn passes on at once.
#include "coroutine/co_sequencer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coroutine/coroutine.h"

namespace coblock {
namespace {

using Events = std::vector<std::string>;

TEST(CoSequencer, TurnsFollowTicketOrderNotArrivalOrder) {
    CoSequencer seq;
    CoQueue work_done[3];  // stands for compression finishing
    Events ev;
    for (int i = 0; i < 3; ++i) {
        spawn([&, i] {
            const uint64_t ticket = seq.take_ticket();
            work_done[i].co_wait();
            CoSequencer::Turn turn = seq.wait_turn(ticket);
            ev.push_back(std::to_string(i));
        });
    }
    work_done[2].wake_all();  // the last ticket arrives first and must wait
    EXPECT_TRUE(ev.empty());
    work_done[1].wake_all();
    EXPECT_TRUE(ev.empty());
    work_done[0].wake_all();
    EXPECT_EQ(ev, (Events{"0", "1", "2"}));
}

TEST(CoSequencer, ReleasePassesTheTurnBeforeTheHolderEnds) {
    CoSequencer seq;
    CoQueue hold;
    Events ev;
    spawn([&] {
        CoSequencer::Turn turn = seq.wait_turn(seq.take_ticket());
        ev.push_back("first");
        turn.release();
        hold.co_wait();
        ev.push_back("first done");
    });
    spawn([&] {
        CoSequencer::Turn turn = seq.wait_turn(seq.take_ticket());
        ev.push_back("second");
    });
    EXPECT_EQ(ev, (Events{"first", "second"}));
    hold.wake_all();
    EXPECT_EQ(ev, (Events{"first", "second", "first done"}));
}

}  // namespace
}  // namespace coblock
