// IoVector and AlignedBuffer.
#include "block/iovec.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <utility>

namespace coblock {

IoVector& IoVector::operator=(const IoVector& other) {
    if (this == &other) return *this;
    clear();
    for (size_t i = 0; i < other.count_; ++i)
        push(other.slices()[i]);
    size_ = other.size_;
    return *this;
}

void IoVector::clear() {
    heap_.clear();
    count_ = 0;
    size_ = 0;
}

void IoVector::push(IoSlice s) {
    if (heap_.empty() && count_ < kInlineSlices) {
        inline_[count_++] = s;
        return;
    }
    if (heap_.empty()) heap_.assign(inline_, inline_ + count_);
    heap_.push_back(s);
    ++count_;
}

void IoVector::append(void* data, size_t size) {
    if (size == 0) return;
    auto* p = static_cast<std::byte*>(data);
    if (count_ > 0) {
        IoSlice& last = slices()[count_ - 1];
        if (last.data + last.size == p) {
            last.size += size;
            size_ += size;
            return;
        }
    }
    push({p, size});
    size_ += size;
}

void IoVector::append(const IoVector& other) {
    for (size_t i = 0; i < other.count_; ++i)
        append(other.slices()[i].data, other.slices()[i].size);
}

IoVector IoVector::slice(size_t offset, size_t length) const {
    IoVector out;
    for (size_t i = 0; i < count_ && length > 0; ++i) {
        const IoSlice& s = slices()[i];
        if (offset >= s.size) {
            offset -= s.size;
            continue;
        }
        size_t n = std::min(s.size - offset, length);
        out.append(s.data + offset, n);
        length -= n;
        offset = 0;
    }
    return out;
}

IoVector IoVector::concat(const IoVector& a, const IoVector& b) {
    IoVector out(a);
    out.append(b);
    return out;
}

template <class Fn>
static size_t walk(const IoSlice* slices, size_t count, size_t offset, size_t length, Fn&& fn) {
    size_t done = 0;
    for (size_t i = 0; i < count && done < length; ++i) {
        const IoSlice& s = slices[i];
        if (offset >= s.size) {
            offset -= s.size;
            continue;
        }
        size_t n = std::min(s.size - offset, length - done);
        fn(s.data + offset, done, n);
        done += n;
        offset = 0;
    }
    return done;
}

size_t IoVector::copy_from(size_t offset, const void* src, size_t length) {
    auto* from = static_cast<const std::byte*>(src);
    return walk(slices(), count_, offset, length,
                [from](std::byte* p, size_t at, size_t n) { std::memcpy(p, from + at, n); });
}

size_t IoVector::copy_to(size_t offset, void* dst, size_t length) const {
    auto* to = static_cast<std::byte*>(dst);
    return walk(slices(), count_, offset, length,
                [to](std::byte* p, size_t at, size_t n) { std::memcpy(to + at, p, n); });
}

size_t IoVector::copy_from_vector(const IoVector& src) {
    size_t done = 0;
    for (size_t i = 0; i < src.count_ && done < size_; ++i) {
        const IoSlice& s = src.slices()[i];
        done += copy_from(done, s.data, std::min(s.size, size_ - done));
    }
    return done;
}

void IoVector::fill(size_t offset, uint8_t value, size_t length) {
    walk(slices(), count_, offset, length,
         [value](std::byte* p, size_t, size_t n) { std::memset(p, value, n); });
}

bool IoVector::is_zero() const {
    for (size_t i = 0; i < count_; ++i) {
        const IoSlice& s = slices()[i];
        size_t j = 0;
        // Word-at-a-time where aligned; zero detection sits on write paths.
        for (; j < s.size && (reinterpret_cast<uintptr_t>(s.data + j) & 7); ++j)
            if (s.data[j] != std::byte{0}) return false;
        for (; j + 8 <= s.size; j += 8) {
            uint64_t w;
            std::memcpy(&w, s.data + j, 8);
            if (w) return false;
        }
        for (; j < s.size; ++j)
            if (s.data[j] != std::byte{0}) return false;
    }
    return true;
}

bool IoVector::is_aligned(size_t alignment) const {
    if (alignment <= 1) return true;
    for (size_t i = 0; i < count_; ++i) {
        const IoSlice& s = slices()[i];
        if (reinterpret_cast<uintptr_t>(s.data) % alignment || s.size % alignment) return false;
    }
    return true;
}

void IoVector::to_iovec(std::vector<iovec>& out) const {
    out.clear();
    for (size_t i = 0; i < count_; ++i)
        out.push_back({slices()[i].data, slices()[i].size});
}

size_t IoVector::to_iovec(iovec* out, size_t max) const {
    if (count_ > max) return 0;
    for (size_t i = 0; i < count_; ++i)
        out[i] = {slices()[i].data, slices()[i].size};
    return count_;
}

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment) : size_(size) {
    if (alignment < sizeof(void*)) alignment = sizeof(void*);
    void* p = nullptr;
    if (posix_memalign(&p, alignment, size ? size : 1) != 0) throw std::bad_alloc();
    std::memset(p, 0, size);
    data_ = static_cast<std::byte*>(p);
}

AlignedBuffer::~AlignedBuffer() {
    std::free(data_);
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
    if (this != &other) {
        std::free(data_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

}  // namespace coblock
