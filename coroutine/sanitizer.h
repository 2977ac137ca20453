// AddressSanitizer annotations for stack switches (TOOLCHAIN.md, "Coroutines
// on Boost.Context"). Compiled to nothing without ASan.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define COBLOCK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COBLOCK_ASAN 1
#endif
#endif

#ifdef COBLOCK_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace coblock {

// Before leaving the current stack for [bottom, bottom+size).
// `fake_stack_save` may be null when the current stack is being abandoned.
inline void sanitizer_start_switch(void** fake_stack_save, const void* bottom, size_t size) {
#ifdef COBLOCK_ASAN
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
    (void)fake_stack_save, (void)bottom, (void)size;
#endif
}

// Right after arriving on a stack; reports the stack we came from.
inline void sanitizer_finish_switch(void* fake_stack_save, const void** old_bottom,
                                    size_t* old_size) {
#ifdef COBLOCK_ASAN
    __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
#else
    (void)fake_stack_save, (void)old_bottom, (void)old_size;
#endif
}

inline void sanitizer_unpoison(void* addr, size_t size) {
#ifdef COBLOCK_ASAN
    __asan_unpoison_memory_region(addr, size);
#else
    (void)addr, (void)size;
#endif
}

}  // namespace coblock
