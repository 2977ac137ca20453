// create_iovec() as in qemu-io 7.2 qemu-io-cmds.c: lengths parsed in order,
// the first bad one reported, then one buffer sliced into the vector.
#include "tools/io/io_vectors.h"

#include <cinttypes>
#include <cstdio>
#include <vector>

#include "tools/io/cvtnum.h"

namespace coblock::io {

bool IoVectorBuffer::matches(int pattern) {
    const uint8_t* p = buffer.data();
    for (size_t i = 0; i < buffer.size(); i++) {
        if (p[i] != static_cast<uint8_t>(pattern)) return false;
    }
    return true;
}

std::unique_ptr<IoVectorBuffer> create_iovec(char** lengths, int count, int pattern) {
    std::vector<size_t> sizes;
    uint64_t total = 0;
    for (int i = 0; i < count; i++) {
        int64_t len = cvtnum(lengths[i]);
        if (len < 0) {
            print_cvtnum_err(len, lengths[i]);
            return nullptr;
        }
        if (len > kRequestMaxBytes) {
            std::printf("Argument '%s' exceeds maximum size %" PRIu64 "\n", lengths[i],
                        static_cast<uint64_t>(kRequestMaxBytes));
            return nullptr;
        }
        if (total > static_cast<uint64_t>(kRequestMaxBytes - len)) {
            std::printf("The total number of bytes exceed the maximum size %" PRIu64 "\n",
                        static_cast<uint64_t>(kRequestMaxBytes));
            return nullptr;
        }
        sizes.push_back(static_cast<size_t>(len));
        total += static_cast<uint64_t>(len);
    }
    auto vec = std::make_unique<IoVectorBuffer>(static_cast<size_t>(total), pattern);
    uint8_t* p = vec->data();
    for (size_t size : sizes) {
        // IoVector::append merges contiguous slices; the request is the same.
        vec->qiov.append(p, size);
        p += size;
    }
    return vec;
}

}  // namespace coblock::io
