// Image creation (qemu-img create): a format's co_create receives a
// CreateContext with the filename, size, -o options and backing file, and
// creates the protocol file through it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "block/backend.h"
#include "block/driver.h"
#include "formats/result.h"
#include "qapi/options_tree.h"

namespace coblock {

class CreateContext {
  public:
    CreateContext(const BlockDriver& driver, std::string filename, uint64_t size,
                  qapi::OptionsTree options);

    const BlockDriver& driver() const { return *driver_; }
    const std::string& filename() const { return filename_; }
    // Virtual size in bytes (qemu-img: from the command line, `size` in -o,
    // or the backing file's size).
    uint64_t size() const { return size_; }
    // The -o options; the driver parses them with its create schema.
    qapi::OptionsTree& options() { return options_; }
    const std::string& backing_file() const { return backing_file_; }
    const std::string& backing_format() const { return backing_format_; }
    void set_backing(std::string file, std::string format) {
        backing_file_ = std::move(file);
        backing_format_ = std::move(format);
    }

    // Creates (truncating) the protocol file for `filename` with the given
    // size and the protocol's create options (preallocation, nocow, ...),
    // and opens it read-write without probing: a format writes its metadata
    // through the returned backend.
    Result<std::unique_ptr<BlockBackend>> co_create_file(uint64_t file_size,
                                                         qapi::OptionsTree protocol_options);
    Result<std::unique_ptr<BlockBackend>> co_create_file(uint64_t file_size, Prealloc prealloc);

  private:
    const BlockDriver* driver_;
    std::string filename_;
    uint64_t size_;
    qapi::OptionsTree options_;
    std::string backing_file_;
    std::string backing_format_;
};

// The protocol that creates the file for `filename` ("file" by default).
const BlockDriver* protocol_for_create(const std::string& filename);

// Creates an image of `format` (runs the loop; call from plain code or a
// coroutine). Options unknown to both the format's and the protocol's
// create schemas are an error ("Invalid parameter 'x'").
Status create_image(const std::string& format, const std::string& filename, uint64_t size,
                    qapi::OptionsTree options, const std::string& backing_file = {},
                    const std::string& backing_format = {});

}  // namespace coblock
