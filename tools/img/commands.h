// The subcommands of coblock-img. Each takes argv starting at the command
// name (getopt is reset before the call) and returns the exit status, as
// the img_* handlers of QEMU 7.2 qemu-img.c do.
#pragma once

#include <string>

namespace coblock::img {

// create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]
int img_create(int argc, char** argv);
// bench [-c count] [-d depth] [-f fmt] [--flush-interval=N] [-i aio] [-n] [--no-drain]
//       [-o offset] [--pattern=byte] [-q] [-s size] [-S step] [-t cache] [-w] [-U]
//       [--image-opts] filename
int img_bench(int argc, char** argv);
// info [-f fmt] [--output=ofmt] [--backing-chain] [-U] [--image-opts] filename
int img_info(int argc, char** argv);
// check [-q] [-p] [-f fmt] [--output=ofmt] [-r leaks|all] [-T src_cache] [-U] filename
int img_check(int argc, char** argv);
// map [-f fmt] [--output=ofmt] [--start-offset=off] [--max-length=len] [-U] filename
int img_map(int argc, char** argv);
// compare [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] [--output=ofmt] filename1 filename2
int img_compare(int argc, char** argv);
// convert [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt]
//         [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] [-m num]
//         [-W] [-U] [--target-is-zero] filename [filename2 [...]] output_filename
int img_convert(int argc, char** argv);
// resize [-f fmt] [--preallocation=prealloc] [-q] [--shrink] [--output=ofmt] filename [+ | -]size
int img_resize(int argc, char** argv);

// `-o help` for `fmt` (create and convert): print_block_option_help.
int print_create_help(const char* filename, const std::string& format);

}  // namespace coblock::img
