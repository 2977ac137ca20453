// Image creation: dispatch to the format's co_create.
#include "block/create.h"

#include "coroutine/run_sync.h"

namespace coblock {

CreateContext::CreateContext(const BlockDriver& driver, std::string filename, uint64_t size,
                             qapi::OptionsTree options)
    : driver_(&driver), filename_(std::move(filename)), size_(size), options_(std::move(options)) {}

const BlockDriver* protocol_for_create(const std::string& filename) {
    const BlockDriver* protocol = find_protocol_for_filename(filename);
    return protocol ? protocol : find_block_driver("file");
}

Result<std::unique_ptr<BlockBackend>> CreateContext::co_create_file(
    uint64_t file_size, qapi::OptionsTree protocol_options) {
    const BlockDriver* protocol = protocol_for_create(filename_);
    if (!protocol || !protocol->co_create)
        return unsupported_error("Protocol driver '" +
                                 (protocol ? protocol->name : std::string("file")) +
                                 "' does not support image creation");
    CreateContext file_ctx(*protocol, filename_, file_size, std::move(protocol_options));
    TRY(protocol->co_create(file_ctx));
    qapi::OptionsTree open_options;
    open_options.set("driver", protocol->name);
    OpenFlags flags;
    return BlockBackend::open(filename_, std::move(open_options), flags);
}

Result<std::unique_ptr<BlockBackend>> CreateContext::co_create_file(uint64_t file_size,
                                                                    Prealloc prealloc) {
    qapi::OptionsTree file_options;
    file_options.set("preallocation", prealloc_name(prealloc));
    return co_create_file(file_size, std::move(file_options));
}

Status create_image(const std::string& format, const std::string& filename, uint64_t size,
                    qapi::OptionsTree options, const std::string& backing_file,
                    const std::string& backing_format) {
    const BlockDriver* driver = find_block_driver(format);
    if (!driver) return invalid_argument("Unknown file format '" + format + "'");
    if (!driver->co_create)
        return unsupported_error("Format driver '" + format + "' does not support image creation");
    if (!backing_file.empty() && !driver->supports_backing)
        return unsupported_error("Backing file not supported for file format '" + format + "'");
    std::vector<const qapi::OptionSchema*> schemas;
    if (driver->create_options) schemas.push_back(driver->create_options);
    const BlockDriver* protocol = protocol_for_create(filename);
    if (protocol && protocol != driver && protocol->create_options)
        schemas.push_back(protocol->create_options);
    TRY(qapi::check_known_keys(options, schemas));
    CreateContext ctx(*driver, filename, size, std::move(options));
    ctx.set_backing(backing_file, backing_format);
    return run_sync([&] { return driver->co_create(ctx); });
}

}  // namespace coblock
