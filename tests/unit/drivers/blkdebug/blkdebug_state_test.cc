// blkdebug's rule engine: event processing (state snapshot, active-list
// reset, competing set-state), request checks (first match, sector by
// first byte, once, errno 0) and breakpoints suspending a coroutine
// (blkdebug.md §6-§8).
#include <gtest/gtest.h>

#include "coroutine/coroutine.h"
#include "drivers/blkdebug/blkdebug_state.h"

namespace coblock::blkdebug {
namespace {

RuleSpecs rules_from(const std::string& text) {
    RuleSections sections;
    EXPECT_TRUE(parse_config_text(text, sections).ok());
    Result<RuleSpecs> specs = make_rules(sections);
    EXPECT_TRUE(specs.ok());
    return specs.ok() ? *specs : RuleSpecs{};
}

int check(RuleState& state, uint64_t offset, uint64_t bytes, IoType type) {
    Status s = state.co_check(offset, bytes, type);  // outside a coroutine: no yield
    return s.ok() ? 0 : s.error().as_errno();
}

TEST(BlkdebugState, StateSnapshotFailsOnlyTheSecondEvent) {
    RuleState state;
    state.load(
        rules_from("[set-state]\nevent = \"write_aio\"\nstate = \"1\"\nnew_state = \"2\"\n"
                   "[inject-error]\nevent = \"write_aio\"\nstate = \"2\"\nerrno = \"5\"\n"));
    EXPECT_EQ(state.state(), 1);
    state.co_event(BlkdebugEvent::kWriteAio);
    EXPECT_EQ(state.state(), 2);
    EXPECT_EQ(check(state, 0, 512, IoType::kWrite), 0);
    state.co_event(BlkdebugEvent::kWriteAio);
    EXPECT_EQ(check(state, 0, 512, IoType::kWrite), 5);
    EXPECT_EQ(check(state, 0, 512, IoType::kRead), 5);  // stays armed
}

TEST(BlkdebugState, CompetingSetStateFirstDefinedWins) {
    RuleState a;
    a.load(
        rules_from("[set-state]\nevent = \"none\"\nnew_state = \"2\"\n"
                   "[set-state]\nevent = \"none\"\nnew_state = \"3\"\n"));
    a.co_event(BlkdebugEvent::kNone);
    EXPECT_EQ(a.state(), 2);
    RuleState b;
    b.load(
        rules_from("[set-state]\nevent = \"none\"\nnew_state = \"3\"\n"
                   "[set-state]\nevent = \"none\"\nnew_state = \"2\"\n"));
    b.co_event(BlkdebugEvent::kNone);
    EXPECT_EQ(b.state(), 3);
}

TEST(BlkdebugState, ArmingReplacesTheActiveList) {
    RuleState state;
    state.load(rules_from(
        "[inject-error]\nevent = \"none\"\niotype = \"read\"\n"
        "[inject-error]\nevent = \"write_aio\"\niotype = \"write\"\nerrno = \"28\"\nonce = "
        "\"on\"\n"));
    state.co_event(BlkdebugEvent::kNone);
    EXPECT_EQ(check(state, 0, 512, IoType::kRead), 5);
    EXPECT_EQ(check(state, 0, 512, IoType::kWrite), 0);
    state.co_event(BlkdebugEvent::kWriteAio);
    EXPECT_EQ(check(state, 0, 512, IoType::kRead), 0);  // disarmed
    EXPECT_EQ(check(state, 0, 512, IoType::kWrite), 28);
    EXPECT_EQ(check(state, 0, 512, IoType::kWrite), 0);  // once: gone
    EXPECT_EQ(state.rule_count(BlkdebugEvent::kWriteAio), 0u);
    state.co_event(BlkdebugEvent::kWriteAio);  // does not come back
    EXPECT_EQ(check(state, 0, 512, IoType::kWrite), 0);
    // An event that arms nothing leaves the active list alone.
    state.co_event(BlkdebugEvent::kNone);
    state.co_event(BlkdebugEvent::kL2Load);
    EXPECT_EQ(check(state, 0, 512, IoType::kRead), 5);
}

TEST(BlkdebugState, FirstMatchInDefinitionOrder) {
    RuleState state;
    state.load(
        rules_from("[inject-error]\nevent = \"none\"\nerrno = \"5\"\nsector = \"0\"\n"
                   "[inject-error]\nevent = \"none\"\nerrno = \"28\"\n"));
    state.co_event(BlkdebugEvent::kNone);
    EXPECT_EQ(check(state, 0, 512, IoType::kWrite), 5);
    EXPECT_EQ(check(state, 512, 512, IoType::kWrite), 28);
}

TEST(BlkdebugState, SectorMatchesByFirstByte) {
    RuleState state;
    state.load(rules_from("[inject-error]\nevent = \"none\"\nsector = \"1\"\n"));
    state.co_event(BlkdebugEvent::kNone);
    EXPECT_EQ(check(state, 513, 511, IoType::kRead), 0);
    EXPECT_EQ(check(state, 0, 513, IoType::kRead), 5);
    EXPECT_EQ(check(state, 512, 1, IoType::kRead), 5);
    EXPECT_EQ(check(state, 0, 512, IoType::kRead), 0);
    EXPECT_EQ(check(state, 0, 0, IoType::kFlush), 0);  // zero length never matches
}

TEST(BlkdebugState, ErrnoZeroPassesAndShadows) {
    RuleState state;
    state.load(
        rules_from("[inject-error]\nevent = \"none\"\nerrno = \"0\"\n"
                   "[inject-error]\nevent = \"none\"\nerrno = \"5\"\n"));
    state.co_event(BlkdebugEvent::kNone);
    EXPECT_EQ(check(state, 0, 512, IoType::kRead), 0);
}

TEST(BlkdebugState, BlockStatusOnlyWhenAsked) {
    RuleState state;
    state.load(rules_from("[inject-error]\nevent = \"none\"\n"));
    state.co_event(BlkdebugEvent::kNone);
    EXPECT_EQ(check(state, 0, 512, IoType::kBlockStatus), 0);
    EXPECT_EQ(check(state, 0, 512, IoType::kDiscard), 5);
}

TEST(BlkdebugState, BreakpointSuspendsAndResumes) {
    RuleState state;
    state.load({});
    EXPECT_EQ(state.add_breakpoint("bogus", "A").error().as_errno(), ENOENT);
    ASSERT_TRUE(state.add_breakpoint("write_aio", "A").ok());
    bool done = false;
    spawn([&] {
        state.co_event(BlkdebugEvent::kWriteAio);
        done = true;
    });
    EXPECT_FALSE(done);
    EXPECT_TRUE(state.is_suspended("A"));
    EXPECT_FALSE(state.is_suspended("B"));
    EXPECT_EQ(state.rule_count(BlkdebugEvent::kWriteAio), 0u);  // one-shot
    EXPECT_EQ(state.resume("B").error().as_errno(), ENOENT);
    ASSERT_TRUE(state.resume("A").ok());
    EXPECT_TRUE(done);
    EXPECT_FALSE(state.is_suspended("A"));
}

TEST(BlkdebugState, RemoveBreakpointQuirk) {
    RuleState state;
    state.load({});
    ASSERT_TRUE(state.add_breakpoint("write_aio", "A").ok());
    EXPECT_TRUE(state.remove_breakpoint("A").ok());
    EXPECT_EQ(state.remove_breakpoint("A").error().as_errno(), ENOENT);
    // Resuming suspended requests alone still reports ENOENT.
    ASSERT_TRUE(state.add_breakpoint("write_aio", "A").ok());
    bool done = false;
    spawn([&] {
        state.co_event(BlkdebugEvent::kWriteAio);
        done = true;
    });
    EXPECT_FALSE(done);
    EXPECT_EQ(state.remove_breakpoint("A").error().as_errno(), ENOENT);
    EXPECT_TRUE(done);
}

}  // namespace
}  // namespace coblock::blkdebug
