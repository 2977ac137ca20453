// Vectored-request buffers for readv, writev, aio_read and aio_write: one
// buffer cut into one IoVector slice per length argument, as qemu-io 7.2's
// create_iovec() builds them (same limits and messages).
#pragma once

#include <memory>

#include "block/iovec.h"
#include "tools/io/commands.h"

namespace coblock::io {

struct IoVectorBuffer {
    IoVectorBuffer(size_t total, int pattern) : buffer(total, pattern) {}
    IoBuffer buffer;
    IoVector qiov;

    uint8_t* data() { return buffer.data(); }
    // True if every byte equals `pattern` (read -P verification).
    bool matches(int pattern);
};

// Parses each of `lengths` with cvtnum; prints qemu-io's message and returns
// nullptr on a bad length, one above BDRV_REQUEST_MAX_BYTES, or a total
// above it. The buffer is filled with `pattern`.
std::unique_ptr<IoVectorBuffer> create_iovec(char** lengths, int count, int pattern);

}  // namespace coblock::io
