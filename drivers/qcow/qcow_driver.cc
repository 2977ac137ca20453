// The "qcow" format driver: registration, probing, open and create (QEMU's
// block/qcow.c descriptor). The node itself is in qcow_node.{h,cc}.
#include <memory>

#include "block/backend.h"
#include "block/create.h"
#include "block/driver.h"
#include "block/graph.h"
#include "drivers/qcow/qcow_node.h"
#include "formats/qcow/qcow_create.h"
#include "formats/qcow/qcow_header.h"

namespace coblock::qcow {
namespace {

// qemu-img 7.2's qcow creation options (`create -f qcow -o help`). None has
// a default: qemu-img prints only what was given.
struct QcowCreateOptions {
    uint64_t size = 0;
    std::optional<std::string> backing_file;
    std::optional<std::string> backing_fmt;
    std::optional<std::string> encrypt_format;
    std::optional<std::string> encrypt_key_secret;
    std::optional<bool> encryption;
};

const qapi::Schema<QcowCreateOptions> kQcowCreateSchema(
    "qcow",
    {
        qapi::size_field("size", &QcowCreateOptions::size, qapi::kNoDefault, "Virtual disk size"),
        qapi::string_field("backing_file", &QcowCreateOptions::backing_file, qapi::kNoDefault,
                           "File name of a base image"),
        qapi::string_field("backing_fmt", &QcowCreateOptions::backing_fmt, qapi::kNoDefault,
                           "Format of the backing image"),
        qapi::bool_field("encryption", &QcowCreateOptions::encryption, qapi::kNoDefault,
                         "Encrypt the image with format 'aes'. (Deprecated in favor of "
                         "encrypt.format=aes)"),
        qapi::string_field("encrypt.format", &QcowCreateOptions::encrypt_format, qapi::kNoDefault,
                           "Encrypt the image, format choices: 'aes'"),
        qapi::string_field("encrypt.key-secret", &QcowCreateOptions::encrypt_key_secret,
                           qapi::kNoDefault,
                           "ID of the secret that provides the AES encryption key"),
    });

int probe_qcow(ByteSpan head, std::string_view) {
    return probe_score(head);
}

Result<std::unique_ptr<BlockNode>> co_open_qcow(OpenContext& ctx);
Status co_create_qcow(CreateContext& ctx);

const BlockDriver kQcow{.name = "qcow",
                        .kind = DriverKind::kFormat,
                        .probe = probe_qcow,
                        .co_open = co_open_qcow,
                        .co_create = co_create_qcow,
                        .create_options = &kQcowCreateSchema.descriptor(),
                        .supports_backing = true};

Result<std::unique_ptr<BlockNode>> co_open_qcow(OpenContext& ctx) {
    auto node = std::make_unique<QcowNode>(kQcow);
    TRY(node->co_init(ctx));
    return std::unique_ptr<BlockNode>(std::move(node));
}

Status co_create_qcow(CreateContext& ctx) {
    ASSIGN_OR_RETURN(QcowCreateOptions options, kQcowCreateSchema.parse(ctx.options()));
    if (options.encryption.value_or(false) || options.encrypt_format) {
        if (options.encrypt_format && *options.encrypt_format != "aes")
            return invalid_argument("Invalid parameter '" + *options.encrypt_format + "'");
        // qemu-img's first complaint when no secret is given.
        if (!options.encrypt_key_secret)
            return invalid_argument("Parameter 'encrypt.key-secret' is required for cipher");
        return unsupported_error("qcow: aes encryption (crypt_method 1) is not supported");
    }
    CreateOptions create;
    create.size = ctx.size();
    create.backing_file =
        !ctx.backing_file().empty() ? ctx.backing_file() : options.backing_file.value_or("");
    ASSIGN_OR_RETURN(CreateLayout layout, build_create_layout(create));
    // QEMU creates the file, truncates it to 0 and writes the header, the
    // name and the zeroed L1 table. The same bytes: an empty file grown to
    // the final length (the growth reads as zeros), then the header and name.
    // (The protocol rounds a new file's size up to sectors, so it is created
    // empty and resized exactly.)
    ASSIGN_OR_RETURN(std::unique_ptr<BlockBackend> file,
                     ctx.co_create_file(0, std::move(ctx.options())));
    TRY(file->co_truncate(layout.file_size, /*exact=*/true, Prealloc::kOff));
    for (LayoutWrite& write : layout.writes) {
        IoVector iov(write.bytes.data(), write.bytes.size());
        TRY(file->co_pwritev(write.offset, write.bytes.size(), iov));
    }
    return file->co_flush();
}

void register_qcow_driver() {
    register_block_driver(&kQcow);
}

}  // namespace
}  // namespace coblock::qcow

block_init(coblock::qcow::register_qcow_driver);
