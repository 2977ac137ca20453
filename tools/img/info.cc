// `coblock-img info`: qemu-img 7.2's img_info (collect_image_info_list,
// bdrv_query_image_info, bdrv_image_info_dump and dump_json_image_info):
// the same human lines and the same ImageInfo JSON, members in QEMU's QDict
// order. Output texts: specs/qemu-img-output.md §3.
#include <getopt.h>

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "block/child.h"
#include "block/driver.h"
#include "qapi/json_output.h"
#include "tools/img/commands.h"
#include "tools/img/options.h"
#include "tools/img/qcow2_snapshots.h"

namespace coblock::img {
namespace {

enum : int { kOptionBackingChain = kOptionFirstOwn };

// bdrv_query_image_info: the ImageInfo members in the QAPI schema's order
// (QEMU's visitor inserts them so); qdict_ordered gives the output order.
nlohmann::ordered_json query_image_info(BlockNode* node, const std::string& filename) {
    nlohmann::ordered_json info = nlohmann::ordered_json::object();
    const ImageFacts facts = image_facts(node);
    info["filename"] = filename;
    info["format"] = node->driver().name;
    info["dirty-flag"] = facts.dirty;
    const int64_t allocated = node->allocated_size();
    if (allocated >= 0) info["actual-size"] = allocated;
    info["virtual-size"] = node->size();
    if (facts.cluster_size != 0) info["cluster-size"] = facts.cluster_size;
    if (facts.encrypted) info["encrypted"] = true;
    const std::string backing = node->backing_filename();
    if (!backing.empty()) {
        info["backing-filename"] = backing;
        info["full-backing-filename"] = full_backing_filename(filename, backing);
        const std::string backing_format = node->backing_format();
        if (!backing_format.empty()) info["backing-filename-format"] = backing_format;
    }
    // A snapshot table that cannot be read leaves the list out, as
    // bdrv_query_image_info does only for -ENOMEDIUM/-ENOTSUP; coblock
    // prefers printing the rest of the image's facts with a warning.
    Result<std::vector<qcow2::SnapshotEntry>> snapshots = read_qcow2_snapshots(node);
    if (!snapshots) {
        warn_report("could not read the snapshot table: " + snapshots.error().to_string());
    } else if (!snapshots->empty()) {
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const qcow2::SnapshotEntry& entry : *snapshots)
            list.push_back(snapshot_info_json(entry));
        info["snapshots"] = std::move(list);
    }
    nlohmann::ordered_json specific = node->info_specific();
    if (!specific.is_null()) {
        // The hook returns ImageInfoSpecific ({"type", "data"}); a driver
        // that returns only the data gets it wrapped.
        if (!specific.is_object() || !specific.contains("data")) {
            nlohmann::ordered_json wrapped = nlohmann::ordered_json::object();
            wrapped["type"] = node->driver().name;
            wrapped["data"] = std::move(specific);
            specific = std::move(wrapped);
        }
        // The driver's data lacks persistent bitmaps; qemu-img lists them
        // for a v3 image that has them.
        Result<nlohmann::ordered_json> bitmaps = read_qcow2_bitmaps_info(node);
        if (!bitmaps)
            warn_report("could not read the bitmap directory: " + bitmaps.error().to_string());
        else if (!bitmaps->is_null() && specific["data"].is_object())
            specific["data"]["bitmaps"] = std::move(*bitmaps);
        info["format-specific"] = std::move(specific);
    }
    return qapi::qdict_ordered(info);
}

// dump_qobject / dump_qdict / dump_qlist of block/qapi.c.
void dump_value(int indentation, const nlohmann::ordered_json& value);

bool is_composite(const nlohmann::ordered_json& value) {
    return value.is_object() || value.is_array();
}

void dump_scalar(const nlohmann::ordered_json& value) {
    if (value.is_string())
        std::fputs(value.get_ref<const std::string&>().c_str(), stdout);
    else if (value.is_boolean())
        std::fputs(value.get<bool>() ? "true" : "false", stdout);
    else
        std::fputs(value.dump().c_str(), stdout);
}

void dump_value(int indentation, const nlohmann::ordered_json& value) {
    if (value.is_object()) {
        for (const auto& [key, member] : value.items()) {
            std::string name = key;
            for (char& ch : name)
                if (ch == '-') ch = ' ';
            std::printf("%*s%s:%c", indentation * 4, "", name.c_str(),
                        is_composite(member) ? '\n' : ' ');
            dump_value(indentation + 1, member);
            if (!is_composite(member)) std::putchar('\n');
        }
    } else if (value.is_array()) {
        int i = 0;
        for (const auto& element : value) {
            std::printf("%*s[%i]:%c", indentation * 4, "", i++, is_composite(element) ? '\n' : ' ');
            dump_value(indentation + 1, element);
            if (!is_composite(element)) std::putchar('\n');
        }
    } else {
        dump_scalar(value);
    }
}

// bdrv_image_info_dump.
void dump_human(const nlohmann::ordered_json& info) {
    const uint64_t size = info["virtual-size"].get<uint64_t>();
    std::printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\n",
                info["filename"].get_ref<const std::string&>().c_str(),
                info["format"].get_ref<const std::string&>().c_str(), size_to_str(size).c_str(),
                static_cast<unsigned long long>(size));
    std::printf("disk size: %s\n", info.contains("actual-size")
                                       ? size_to_str(info["actual-size"].get<uint64_t>()).c_str()
                                       : "unavailable");
    if (info.value("encrypted", false)) std::printf("encrypted: yes\n");
    if (info.contains("cluster-size"))
        std::printf("cluster_size: %lld\n",
                    static_cast<long long>(info["cluster-size"].get<int64_t>()));
    if (info.value("dirty-flag", false)) std::printf("cleanly shut down: no\n");
    if (info.contains("backing-filename")) {
        const std::string& backing = info["backing-filename"].get_ref<const std::string&>();
        std::printf("backing file: %s", backing.c_str());
        if (!info.contains("full-backing-filename")) {
            std::printf(" (cannot determine actual path)");
        } else {
            const std::string& full = info["full-backing-filename"].get_ref<const std::string&>();
            if (full != backing) std::printf(" (actual path: %s)", full.c_str());
        }
        std::printf("\n");
    }
    if (info.contains("backing-filename-format"))
        std::printf("backing file format: %s\n",
                    info["backing-filename-format"].get_ref<const std::string&>().c_str());
    if (info.contains("snapshots")) {
        std::printf("Snapshot list:\n");
        print_snapshot_table(info["snapshots"]);
    }
    if (info.contains("format-specific")) {
        std::printf("Format specific information:\n");
        const nlohmann::ordered_json& specific = info["format-specific"];
        if (specific.contains("data")) dump_value(1, specific["data"]);
    }
}

}  // namespace

int img_info(int argc, char** argv) {
    static const struct option kLongOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"format", required_argument, nullptr, 'f'},
        {"output", required_argument, nullptr, kOptionOutput},
        {"backing-chain", no_argument, nullptr, kOptionBackingChain},
        {"object", required_argument, nullptr, kOptionObject},
        {"image-opts", no_argument, nullptr, kOptionImageOpts},
        {"force-share", no_argument, nullptr, 'U'},
        {nullptr, 0, nullptr, 0},
    };
    ImageSpec spec;
    spec.flags.read_only = true;
    bool json = false;
    bool chain = false;
    int c;
    while ((c = getopt_long(argc, argv, ":f:hU", kLongOptions, nullptr)) != -1) {
        if (handle_shared_option(c, argv, &spec)) continue;
        switch (c) {
            case kOptionOutput:
                if (!parse_output_format(optarg, &json)) return 1;
                break;
            case kOptionBackingChain:
                chain = true;
                break;
        }
    }
    if (optind != argc - 1) error_exit("Expecting one image file name");
    spec.filename = argv[optind];
    // qemu-img opens each image of the chain on its own without its
    // backing file (BDRV_O_NO_BACKING), then the next one by its full backing
    // name and recorded format; so a missing backing file fails only with
    // --backing-chain, with that file's name in the message.
    spec.flags.no_backing = true;
    spec.flags.no_io = true;  // BDRV_O_NO_IO: no consistent-read lock, as qemu-img
    std::vector<nlohmann::ordered_json> infos;
    for (;;) {
        std::unique_ptr<BlockBackend> blk =
            infos.empty() ? open_image_for_reading(spec) : open_image(spec);
        if (!blk) return 1;
        BlockNode* node = blk->root();
        const std::string name = spec.image_opts ? node->filename() : spec.filename;
        nlohmann::ordered_json info = query_image_info(node, name);
        infos.push_back(info);
        if (!chain || !info.contains("full-backing-filename")) break;
        spec.filename = info["full-backing-filename"].get<std::string>();
        spec.format = info.value("backing-filename-format", std::string());
        spec.image_opts = false;
    }

    if (json) {
        nlohmann::ordered_json out =
            chain ? nlohmann::ordered_json(infos) : nlohmann::ordered_json(infos.front());
        std::printf("%s\n", qapi::to_qemu_json_pretty(out).c_str());
    } else {
        for (size_t i = 0; i < infos.size(); ++i) {
            if (i != 0) std::printf("\n");
            dump_human(infos[i]);
        }
    }
    return 0;
}

}  // namespace coblock::img
