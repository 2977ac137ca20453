// `qemu-img create -f qcow2`: the create option schema (qemu-img 7.2 names,
// order and help texts) and writing the initial layout that
// formats/qcow2/layout builds.
#include "block/backend.h"
#include "block/create.h"
#include "drivers/qcow2/qcow2_node.h"
#include "formats/qcow2/layout.h"

namespace coblock::qcow2drv {

namespace {

struct CreateOpts {
    std::optional<bool> encryption;
    std::optional<std::string> encrypt_format;
    std::optional<std::string> encrypt_key_secret;
    std::optional<std::string> encrypt_cipher_alg;
    std::optional<std::string> encrypt_cipher_mode;
    std::optional<std::string> encrypt_ivgen_alg;
    std::optional<std::string> encrypt_ivgen_hash_alg;
    std::optional<std::string> encrypt_hash_alg;
    std::optional<uint64_t> encrypt_iter_time;
    uint64_t cluster_size = 65536;
    bool extended_l2 = false;
    std::optional<std::string> preallocation;
    std::string compression_type = "zlib";
    std::optional<uint64_t> size;
    std::optional<std::string> compat;
    std::optional<std::string> backing_file;
    std::optional<std::string> backing_fmt;
    std::optional<std::string> data_file;
    std::optional<bool> data_file_raw;
    bool lazy_refcounts = false;
    uint64_t refcount_bits = 16;
};

// The order is qemu-img's create option list order (the "Formatting" line
// prints options in it).
const qapi::Schema<CreateOpts> kCreateSchema(
    "qcow2",
    {
        qapi::bool_field("encryption", &CreateOpts::encryption, qapi::kNoDefault,
                         "Encrypt the image with format 'aes'. (Deprecated in favor of "
                         "encrypt.format=aes)"),
        qapi::string_field("encrypt.format", &CreateOpts::encrypt_format, qapi::kNoDefault,
                           "Encrypt the image, format choices: 'aes', 'luks'"),
        qapi::string_field("encrypt.key-secret", &CreateOpts::encrypt_key_secret, qapi::kNoDefault,
                           "ID of secret providing qcow AES key or LUKS passphrase"),
        qapi::string_field("encrypt.cipher-alg", &CreateOpts::encrypt_cipher_alg, qapi::kNoDefault,
                           "Name of encryption cipher algorithm"),
        qapi::string_field("encrypt.cipher-mode", &CreateOpts::encrypt_cipher_mode,
                           qapi::kNoDefault, "Name of encryption cipher mode"),
        qapi::string_field("encrypt.ivgen-alg", &CreateOpts::encrypt_ivgen_alg, qapi::kNoDefault,
                           "Name of IV generator algorithm"),
        qapi::string_field("encrypt.ivgen-hash-alg", &CreateOpts::encrypt_ivgen_hash_alg,
                           qapi::kNoDefault, "Name of IV generator hash algorithm"),
        qapi::string_field("encrypt.hash-alg", &CreateOpts::encrypt_hash_alg, qapi::kNoDefault,
                           "Name of encryption hash algorithm"),
        qapi::uint_field("encrypt.iter-time", &CreateOpts::encrypt_iter_time, qapi::kNoDefault,
                         "Time to spend in PBKDF in milliseconds"),
        qapi::size_field("cluster_size", &CreateOpts::cluster_size, "65536", "qcow2 cluster size"),
        qapi::bool_field("extended_l2", &CreateOpts::extended_l2, "off", "Extended L2 tables"),
        qapi::string_field("preallocation", &CreateOpts::preallocation, qapi::kNoDefault,
                           "Preallocation mode (allowed values: off, metadata, falloc, full)"),
        qapi::string_field("compression_type", &CreateOpts::compression_type, "zlib",
                           "Compression method used for image cluster compression"),
        qapi::size_field("size", &CreateOpts::size, qapi::kNoDefault, "Virtual disk size"),
        qapi::string_field("compat", &CreateOpts::compat, qapi::kNoDefault,
                           "Compatibility level (v2 [0.10] or v3 [1.1])"),
        qapi::string_field("backing_file", &CreateOpts::backing_file, qapi::kNoDefault,
                           "File name of a base image"),
        qapi::string_field("backing_fmt", &CreateOpts::backing_fmt, qapi::kNoDefault,
                           "Image format of the base image"),
        qapi::string_field("data_file", &CreateOpts::data_file, qapi::kNoDefault,
                           "File name of an external data file"),
        qapi::bool_field("data_file_raw", &CreateOpts::data_file_raw, qapi::kNoDefault,
                         "The external data file must stay valid as a raw image"),
        qapi::bool_field("lazy_refcounts", &CreateOpts::lazy_refcounts, "off",
                         "Postpone refcount updates"),
        qapi::uint_field("refcount_bits", &CreateOpts::refcount_bits, "16",
                         "Width of a reference count entry in bits"),
    });

int log2_exact(uint64_t v) {
    if (v == 0 || (v & (v - 1)) != 0) return -1;
    int b = 0;
    while ((uint64_t{1} << b) != v)
        ++b;
    return b;
}

}  // namespace

const qapi::OptionSchema& qcow2_create_schema() {
    return kCreateSchema.descriptor();
}

Status co_create_qcow2_image(CreateContext& ctx) {
    ASSIGN_OR_RETURN(CreateOpts o, kCreateSchema.parse(ctx.options()));
    if (o.encryption.value_or(false) || o.encrypt_format || o.encrypt_key_secret)
        return unsupported_error("qcow2: encrypted images are not supported by coblock");
    if (o.data_file || o.data_file_raw.value_or(false))
        return unsupported_error(
            "qcow2: external data files (data_file) are not supported by coblock");
    qcow2::CreateOptions c;
    c.size = ctx.size();
    const std::string compat = o.compat.value_or("1.1");
    if (compat == "0.10" || compat == "v2")
        c.version = qcow2::kVersion2;
    else if (compat == "1.1" || compat == "v3")
        c.version = qcow2::kVersion3;
    else
        return invalid_argument("Parameter 'version' does not accept value '" + compat + "'");
    const int cbits = log2_exact(o.cluster_size);
    if (cbits < 9 || cbits > 21)
        return invalid_argument("Cluster size must be a power of two between 512 and 2048k");
    c.cluster_bits = static_cast<uint32_t>(cbits);
    const int rbits = log2_exact(o.refcount_bits);
    if (rbits < 0 || rbits > 6)
        return invalid_argument("Refcount width must be a power of two and may be at most 64 bits");
    c.refcount_order = static_cast<uint32_t>(rbits);
    if (c.version == qcow2::kVersion2 && c.refcount_order != 4)
        return invalid_argument(
            "Different refcount widths than 16 bits require compatibility level 1.1 or above "
            "(use compat=1.1 or greater)");
    if (c.version == qcow2::kVersion2 && o.lazy_refcounts)
        return invalid_argument(
            "Lazy refcounts only supported with compatibility level 1.1 and above (use "
            "compat=1.1 or greater)");
    c.lazy_refcounts = o.lazy_refcounts;
    c.extended_l2 = o.extended_l2;
    if (c.extended_l2 && c.version == qcow2::kVersion2)
        return invalid_argument(
            "Extended L2 tables are only supported with compatibility level "
            "1.1 and above (use compat=1.1 or greater)");
    if (c.extended_l2 && c.cluster_bits < qcow2::kMinExtendedL2ClusterBits)
        return invalid_argument("Extended L2 tables require a cluster size of at least 16k");
    if (o.compression_type == "zlib")
        c.compression_type = qcow2::kCompressionDeflate;
    else if (o.compression_type == "zstd")
        c.compression_type = qcow2::kCompressionZstd;
    else
        return invalid_argument("Parameter 'compression-type' does not accept value '" +
                                o.compression_type + "'");
    if (c.compression_type != qcow2::kCompressionDeflate && c.version == qcow2::kVersion2)
        return invalid_argument(
            "Non-zlib compression type is only supported with compatibility "
            "level 1.1 and above (use compat=1.1 or greater)");
    Prealloc prealloc = Prealloc::kOff;
    if (o.preallocation && !parse_prealloc(*o.preallocation, prealloc))
        return invalid_argument("Parameter 'preallocation' does not accept value '" +
                                *o.preallocation + "'");
    if (prealloc != Prealloc::kOff && o.backing_file.value_or(ctx.backing_file()) != "" &&
        !c.extended_l2)
        return invalid_argument(
            "Backing file and preallocation can only be used at the same "
            "time if extended_l2 is on");
    std::string backing = o.backing_file.value_or(ctx.backing_file());
    std::string backing_fmt = o.backing_fmt.value_or(ctx.backing_format());
    if (!backing.empty()) c.backing_file = backing;
    if (!backing_fmt.empty()) {
        if (backing.empty())
            return invalid_argument("Backing format cannot be used without backing file");
        c.backing_format = backing_fmt;
    }
    if (c.size % qcow2::kSectorSize)
        return invalid_argument("Image size must be a multiple of 512 bytes");
    TRY(qcow2::validate_create_options(c));
    ASSIGN_OR_RETURN(qcow2::InitialLayout layout, qcow2::build_initial_layout(c));
    // What is left (nocow, extent_size_hint, ...) belongs to the protocol.
    ASSIGN_OR_RETURN(std::unique_ptr<BlockBackend> file,
                     ctx.co_create_file(0, std::move(ctx.options())));
    // The protocol rounds create sizes to 512; QEMU's file ends right after
    // the L1 table.
    TRY(file->co_truncate(layout.file_size, true, Prealloc::kOff));
    for (qcow2::LayoutWrite& w : layout.writes) {
        IoVector iov(w.bytes.data(), w.bytes.size());
        TRY(file->co_pwritev(w.offset, w.bytes.size(), iov));
    }
    TRY(file->co_flush());
    if (prealloc == Prealloc::kOff) return {};
    file.reset();
    qapi::OptionsTree open_options;
    open_options.set("driver", "qcow2");
    // The backing file need not exist (qemu-img create -u): do not open it.
    OpenFlags flags;
    flags.no_backing = true;
    ASSIGN_OR_RETURN(std::unique_ptr<BlockBackend> image,
                     BlockBackend::open(ctx.filename(), std::move(open_options), flags));
    auto* node = dynamic_cast<Qcow2Node*>(image->root());
    if (!node) return make_error(ErrorKind::kInternal, "qcow2: created image is not qcow2");
    return node->co_preallocate(prealloc);
}

}  // namespace coblock::qcow2drv
