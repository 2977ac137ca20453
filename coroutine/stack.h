// Coroutine stacks: mmap'd regions with a PROT_NONE guard page below the
// usable area, so an overflow faults instead of corrupting a neighbour.
#pragma once

#include <cstddef>
#include <utility>

namespace coblock {

// 1 MiB as QEMU's COROUTINE_STACK_SIZE: pages are only committed when
// touched, and the block layer's call chains (drivers over backing chains,
// doubled by ASan's redzones) need depth.
inline constexpr size_t kCoroutineStackSize = 1 << 20;

class Stack {
  public:
    Stack() = default;
    Stack(Stack&& other) noexcept { swap(other); }
    Stack& operator=(Stack&& other) noexcept {
        Stack tmp(std::move(other));
        swap(tmp);
        return *this;
    }
    Stack(const Stack&) = delete;
    Stack& operator=(const Stack&) = delete;
    ~Stack();

    // Maps `usable_size` bytes (rounded up to pages) plus the guard page.
    // Aborts when the kernel refuses: running out of address space for
    // stacks is not recoverable for the caller.
    static Stack allocate(size_t usable_size = kCoroutineStackSize);

    bool valid() const { return mapping_ != nullptr; }
    // Lowest usable address (just above the guard page) and usable size.
    void* bottom() const { return static_cast<char*>(mapping_) + guard_size_; }
    size_t size() const { return mapping_size_ - guard_size_; }
    void* top() const { return static_cast<char*>(mapping_) + mapping_size_; }

  private:
    void swap(Stack& other) noexcept;

    void* mapping_ = nullptr;
    size_t mapping_size_ = 0;
    size_t guard_size_ = 0;
};

}  // namespace coblock
