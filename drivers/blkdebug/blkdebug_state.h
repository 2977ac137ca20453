// The rule engine of one blkdebug node: per-event rule lists, the state
// number, the active inject-error list and the suspended requests
// (QEMU 7.2 blkdebug_debug_event / rule_check / the breakpoint functions).
// Independent of the graph so it can be tested alone.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "block/debug_event.h"
#include "drivers/blkdebug/blkdebug_config.h"
#include "formats/result.h"

namespace coblock {
class Coroutine;
}

namespace coblock::blkdebug {

class RuleState {
  public:
    RuleState();
    ~RuleState();
    RuleState(const RuleState&) = delete;
    RuleState& operator=(const RuleState&) = delete;

    // Creates the rules (inject-error first, then set-state, each prepended
    // to its event's list) and sets the state to 1.
    void load(const RuleSpecs& specs);

    int state() const { return state_; }

    // An event: §6 of the spec. May print "blkdebug: Suspended request
    // 'TAG'" and suspend the calling coroutine until resumed.
    void co_event(BlkdebugEvent event);

    // The request check: §7. Fails with the rule's errno (after one trip
    // through the event loop unless the rule says "immediately").
    Status co_check(uint64_t offset, uint64_t bytes, IoType type);

    // Breakpoints (qemu-io break/remove_break/resume/wait_break). Errors
    // carry ENOENT as QEMU's do.
    Status add_breakpoint(std::string_view event, std::string_view tag);
    Status remove_breakpoint(std::string_view tag);
    Status resume(std::string_view tag);
    bool is_suspended(std::string_view tag) const;

    // For tests: the number of rules on `event` and in the active list.
    size_t rule_count(BlkdebugEvent event) const;
    size_t active_count() const { return active_.size(); }

  private:
    enum class Kind { kInjectError, kSetState, kSuspend };
    struct Rule {
        Kind kind = Kind::kInjectError;
        BlkdebugEvent event = BlkdebugEvent::kNone;
        int state = 0;
        InjectErrorSpec inject;
        int new_state = 0;
        std::string tag;
    };
    struct Suspended {
        Coroutine* co = nullptr;
        std::string tag;
    };

    void prepend(std::unique_ptr<Rule> rule);
    void remove_rule(Rule* rule);  // from its event list and the active list
    void resume_at(size_t index);

    std::array<std::vector<std::unique_ptr<Rule>>, kBlkdebugEventCount> rules_;
    std::vector<Rule*> active_;
    std::vector<Suspended> suspended_;  // head first
    int state_ = 1;
};

}  // namespace coblock::blkdebug
