// mmap'd coroutine stacks with a guard page.
#include "coroutine/stack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "coroutine/sanitizer.h"

namespace coblock {

Stack Stack::allocate(size_t usable_size) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t usable = (usable_size + page - 1) / page * page;
    Stack stack;
    stack.guard_size_ = page;
    stack.mapping_size_ = usable + page;
    void* mapping = mmap(nullptr, stack.mapping_size_, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (mapping == MAP_FAILED) {
        std::perror("coblock: mmap of a coroutine stack failed");
        std::abort();
    }
    // The guard sits at the low end: stacks grow down on every target we run.
    if (mprotect(mapping, page, PROT_NONE) != 0) {
        std::perror("coblock: mprotect of a coroutine guard page failed");
        std::abort();
    }
    stack.mapping_ = mapping;
    return stack;
}

Stack::~Stack() {
    if (!mapping_) return;
    // ASan keeps shadow state for the frames that lived here; clear it before
    // the range can be mapped again, or ASan aborts later (asan_thread.cpp).
    sanitizer_unpoison(bottom(), size());
    munmap(mapping_, mapping_size_);
}

void Stack::swap(Stack& other) noexcept {
    std::swap(mapping_, other.mapping_);
    std::swap(mapping_size_, other.mapping_size_);
    std::swap(guard_size_, other.guard_size_);
}

}  // namespace coblock
