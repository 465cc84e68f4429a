// The debug allocator's errors: one function per kind of error, so that call sites stay
// one line and the wording (write_debug_error, in debug_report.cpp) lives in one place.
//
// Each builds a DebugError and delivers it: to the options' handler, or as text on
// stderr; then aborts when the kind's policy says abort (wrong sizes follow
// on_wrong_size, everything else on_error). Called with no allocator lock held.
#pragma once

#include "debug/block_table.hpp"
#include "debug/stack_depot.hpp"

#include <zheap/debug_allocator.hpp>

namespace zheap::debug {

struct ReportPolicy {
  OnError on_error = OnError::abort;
  OnError on_wrong_size = OnError::report;
  DebugErrorHandler handler = nullptr;
  void* context = nullptr;
};

void report_double_free(const ReportPolicy& policy, const BlockRecord& block, AllocationFamily released_with,
                        StackId now) noexcept;
void report_write_after_free(const ReportPolicy& policy, const BlockRecord& block, std::ptrdiff_t offset,
                             StackId now) noexcept;
// Overflow when `offset` >= block.size, underflow when negative.
void report_redzone_corruption(const ReportPolicy& policy, const BlockRecord& block, std::ptrdiff_t offset,
                               StackId now) noexcept;
void report_mismatched_free(const ReportPolicy& policy, const BlockRecord& block, AllocationFamily released_with,
                            StackId now) noexcept;
void report_wrong_size_free(const ReportPolicy& policy, const BlockRecord& block, AllocationFamily released_with,
                            std::size_t given_size, StackId now) noexcept;
void report_wrong_alignment_free(const ReportPolicy& policy, const BlockRecord& block,
                                 AllocationFamily released_with, std::size_t given_alignment, StackId now) noexcept;
void report_invalid_free(const ReportPolicy& policy, const void* address, AllocationFamily released_with,
                         StackId now) noexcept;
void report_interior_free(const ReportPolicy& policy, const void* address, const BlockRecord& block,
                          AllocationFamily released_with, StackId now) noexcept;
void report_realloc_of_freed(const ReportPolicy& policy, const BlockRecord& block, StackId now) noexcept;

}  // namespace zheap::debug
