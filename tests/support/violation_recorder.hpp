// ViolationHandlers for tests of zheap::ValidatingAllocator.
//
// ViolationRecorder keeps every violation for the test to inspect;
// fail_test_on_violation() turns each one into a GoogleTest failure (what the shared
// suites install, so a contract violation fails the test instead of aborting it).
#pragma once

#include <zheap/validating_allocator.hpp>

#include <gtest/gtest.h>

#include <vector>

struct ViolationRecorder {
  std::vector<zheap::ContractViolation> seen;

  zheap::ViolationHandler handler() noexcept {
    return zheap::ViolationHandler{
        [](void* ctx, const zheap::ContractViolation& v) { static_cast<ViolationRecorder*>(ctx)->seen.push_back(v); },
        this};
  }
};

inline zheap::ViolationHandler fail_test_on_violation() noexcept {
  return zheap::ViolationHandler{[](void*, const zheap::ContractViolation& v) {
                                   ADD_FAILURE() << "allocator contract violation: " << zheap::describe(v.kind)
                                                 << " in " << v.operation << "(" << v.memory << ", len=" << v.len
                                                 << ", align=" << v.alignment.bytes() << ")";
                                 },
                                 nullptr};
}
