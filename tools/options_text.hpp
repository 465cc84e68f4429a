// The option table rendered for people: `zheap options` (plain text) and
// `zheap options --markdown` (docs/OPTIONS.md, byte for byte).
#pragma once

#include <ostream>

namespace zheap::tool {

void write_options_text(std::ostream& out);
void write_options_markdown(std::ostream& out);

}  // namespace zheap::tool
