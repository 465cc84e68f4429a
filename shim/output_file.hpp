// Opens the files named by options (ZHEAP_LOG, ZHEAP_STATS_FILE): `%p` becomes the process
// id, so that the processes a program starts write files of their own; `%%` is a '%'.
// (The log is opened at the first allocation: a child forked without exec keeps writing
// to its parent's log. The stats file is opened at exit, so every process gets its own.)
// Files are opened for appending with mode 0640 and never through a symbolic link (see
// os::open_for_append), then moved to a descriptor of 600 or above. Setuid/setgid
// programs never get here: options.cpp drops their paths. No allocation.
#pragma once

#include <cstddef>

namespace zheap::shim {

// Writes `pattern` with %p expanded into `out` (NUL-terminated); false if it does not fit.
bool expand_path(const char* pattern, int process_id, char* out, std::size_t capacity) noexcept;

// Expands and opens `pattern`; on failure prints one line naming `variable` and returns -1.
int open_output_file(const char* variable, const char* pattern) noexcept;

}  // namespace zheap::shim
