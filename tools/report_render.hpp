// `zheap report FILE.json`: a saved JSON Lines debug report (ZHEAP_REPORT_FORMAT=json,
// schema in docs/REPORT.md) printed as the text the shim would have printed, by the very
// writers the shim uses (core/src/debug/debug_report.cpp), fed with the frames the file
// holds instead of the stack depot's.
#pragma once

#include <ostream>
#include <string>

namespace zheap::tool {

// Reads the whole file first, so that a bad file prints nothing but one line on `errors`
// ("zheap report: FILE:LINE: why"), and then returns 2. Otherwise writes the text to
// `output_fd` (the core's writers write to descriptors) and returns 0.
int render_report_file(const std::string& path, int output_fd, std::ostream& errors);

}  // namespace zheap::tool
