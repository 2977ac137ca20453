#include "drivers/qcow/qcow_l2_cache.h"

namespace coblock::qcow {

std::vector<uint64_t>* L2Cache::find(uint64_t offset) {
    for (Slot& slot : slots_) {
        if (slot.offset == offset && offset != 0) {
            slot.last_use = ++clock_;
            ++hits_;
            return &slot.table;
        }
    }
    ++misses_;
    return nullptr;
}

std::vector<uint64_t>& L2Cache::insert(uint64_t offset, std::vector<uint64_t> table) {
    Slot* victim = &slots_[0];
    for (Slot& slot : slots_) {
        if (slot.offset == offset) {  // replacing the same table
            victim = &slot;
            break;
        }
        if (slot.last_use < victim->last_use) victim = &slot;
    }
    victim->offset = offset;
    victim->last_use = ++clock_;
    victim->table = std::move(table);
    return victim->table;
}

void L2Cache::clear() {
    for (Slot& slot : slots_)
        slot = Slot{};
}

}  // namespace coblock::qcow
