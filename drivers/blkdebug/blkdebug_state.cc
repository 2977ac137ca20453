#include "drivers/blkdebug/blkdebug_state.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "coroutine/coroutine.h"
#include "coroutine/event_loop.h"

namespace coblock::blkdebug {

RuleState::RuleState() = default;
RuleState::~RuleState() = default;

void RuleState::prepend(std::unique_ptr<Rule> rule) {
    auto& list = rules_[static_cast<size_t>(rule->event)];
    list.insert(list.begin(), std::move(rule));
}

void RuleState::load(const RuleSpecs& specs) {
    for (const InjectErrorSpec& spec : specs.inject_error) {
        auto rule = std::make_unique<Rule>();
        rule->kind = Kind::kInjectError;
        rule->event = spec.event;
        rule->state = spec.state;
        rule->inject = spec;
        prepend(std::move(rule));
    }
    for (const SetStateSpec& spec : specs.set_state) {
        auto rule = std::make_unique<Rule>();
        rule->kind = Kind::kSetState;
        rule->event = spec.event;
        rule->state = spec.state;
        rule->new_state = spec.new_state;
        prepend(std::move(rule));
    }
    state_ = 1;
}

size_t RuleState::rule_count(BlkdebugEvent event) const {
    return rules_[static_cast<size_t>(event)].size();
}

void RuleState::remove_rule(Rule* rule) {
    std::erase(active_, rule);
    auto& list = rules_[static_cast<size_t>(rule->event)];
    std::erase_if(list, [rule](const std::unique_ptr<Rule>& r) { return r.get() == rule; });
}

void RuleState::co_event(BlkdebugEvent event) {
    auto& list = rules_[static_cast<size_t>(event)];
    if (list.empty()) return;
    const int old_state = state_;
    int new_state = old_state;
    int armed = 0;
    int suspend = 0;
    // Breakpoints remove themselves while we walk: walk a snapshot.
    std::vector<Rule*> walk;
    walk.reserve(list.size());
    for (const auto& r : list)
        walk.push_back(r.get());
    for (Rule* rule : walk) {
        if (rule->state != 0 && rule->state != old_state) continue;
        switch (rule->kind) {
            case Kind::kInjectError:
                if (++armed == 1) active_.clear();
                active_.insert(active_.begin(), rule);
                break;
            case Kind::kSetState:
                new_state = rule->new_state;
                break;
            case Kind::kSuspend: {
                Suspended s{Coroutine::self(), rule->tag};
                std::printf("blkdebug: Suspended request '%s'\n", rule->tag.c_str());
                remove_rule(rule);
                suspended_.insert(suspended_.begin(), std::move(s));
                ++suspend;
                break;
            }
        }
    }
    state_ = new_state;
    // Each resume re-enters the coroutine once.
    while (suspend-- > 0 && in_coroutine())
        yield();
}

Status RuleState::co_check(uint64_t offset, uint64_t bytes, IoType type) {
    if (active_.empty()) return {};
    Rule* hit = nullptr;
    const uint32_t bit = io_type_bit(type);
    for (Rule* rule : active_) {
        const int64_t at = rule->inject.offset;
        const bool offset_ok =
            at == -1 || (at >= 0 && bytes != 0 && offset <= static_cast<uint64_t>(at) &&
                         static_cast<uint64_t>(at) < offset + bytes);
        if (offset_ok && (rule->inject.iotype_mask & bit)) {
            hit = rule;
            break;
        }
    }
    if (!hit || hit->inject.error == 0) return {};
    const int err = hit->inject.error;
    const bool immediately = hit->inject.immediately;
    if (hit->inject.once) remove_rule(hit);
    if (!immediately && in_coroutine()) {
        // QEMU reschedules the request in its AioContext before failing it.
        Coroutine* self = Coroutine::self();
        EventLoop::current().schedule_oneshot([self] { wake(self); });
        yield();
    }
    if (err < 0) return {};  // a negative "errno" is a positive return: success
    return Error{ErrorKind::kIo, err,
                 std::string("blkdebug: injected error: ") + std::strerror(err), std::nullopt};
}

Status RuleState::add_breakpoint(std::string_view event_name, std::string_view tag) {
    std::optional<BlkdebugEvent> event = parse_blkdebug_event(event_name);
    if (!event)
        return Error{ErrorKind::kNotFound, ENOENT,
                     "no blkdebug event named '" + std::string(event_name) + "'", std::nullopt};
    auto rule = std::make_unique<Rule>();
    rule->kind = Kind::kSuspend;
    rule->event = *event;
    rule->state = 0;
    rule->tag = std::string(tag);
    prepend(std::move(rule));
    return {};
}

void RuleState::resume_at(size_t index) {
    Suspended s = std::move(suspended_[index]);
    suspended_.erase(suspended_.begin() + static_cast<std::ptrdiff_t>(index));
    std::printf("blkdebug: Resuming request '%s'\n", s.tag.c_str());
    if (s.co) wake(s.co);
}

Status RuleState::remove_breakpoint(std::string_view tag) {
    bool removed = false;
    for (auto& list : rules_) {
        std::vector<Rule*> doomed;
        for (const auto& r : list)
            if (r->kind == Kind::kSuspend && r->tag == tag) doomed.push_back(r.get());
        for (Rule* r : doomed)
            remove_rule(r);
        removed = removed || !doomed.empty();
    }
    for (size_t i = 0; i < suspended_.size();) {
        if (suspended_[i].tag == tag)
            resume_at(i);
        else
            ++i;
    }
    if (!removed)
        return Error{ErrorKind::kNotFound, ENOENT,
                     "no breakpoint tagged '" + std::string(tag) + "'", std::nullopt};
    return {};
}

Status RuleState::resume(std::string_view tag) {
    for (size_t i = 0; i < suspended_.size(); ++i) {
        if (suspended_[i].tag == tag) {
            resume_at(i);
            return {};
        }
    }
    return Error{ErrorKind::kNotFound, ENOENT,
                 "no request suspended with tag '" + std::string(tag) + "'", std::nullopt};
}

bool RuleState::is_suspended(std::string_view tag) const {
    for (const Suspended& s : suspended_)
        if (s.tag == tag) return true;
    return false;
}

}  // namespace coblock::blkdebug
