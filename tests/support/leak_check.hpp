// GoogleTest glue for zheap::TestingAllocator: fail the test that leaks.
//
//   TEST(Parser, FreesEverything) {
//     LeakCheck leaks;                        // or derive the test from LeakCheckedTest
//     parse(leaks.allocator(), "...");
//   }                                          // ~LeakCheck: ADD_FAILURE if a block is live
//
// The failure names the number of leaked blocks, their bytes, and the first few blocks
// (length, alignment, address). The leaked blocks are then freed, so one leak is
// reported once and the test process does not keep the memory.
#pragma once

#include <zheap/page_allocator.hpp>
#include <zheap/testing_allocator.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

class LeakCheck {
 public:
  explicit LeakCheck(zheap::Allocator child = zheap::page_allocator()) noexcept : testing_(child) {}
  ~LeakCheck() { check(); }
  LeakCheck(const LeakCheck&) = delete;
  LeakCheck& operator=(const LeakCheck&) = delete;

  zheap::Allocator allocator() noexcept { return testing_.allocator(); }
  const zheap::TestingAllocator& testing() const noexcept { return testing_; }

  // Reports now (ADD_FAILURE) if anything is live or a call named an unknown block,
  // then frees the leaked blocks.
  void check() {
    const std::size_t blocks = testing_.leaked_blocks();
    if (blocks != 0) ADD_FAILURE() << describe_leaks(blocks);
    if (testing_.invalid_calls() != 0)
      ADD_FAILURE() << testing_.invalid_calls() << " free/resize/remap call(s) named a block never allocated here";
    testing_.release_leaked_blocks();
  }

 private:
  std::string describe_leaks(std::size_t blocks) const {
    constexpr std::size_t listed_at_most = 10;
    std::string text = "leaked " + std::to_string(blocks) + " block(s), " + std::to_string(testing_.leaked_bytes()) +
                       " bytes:";
    std::size_t listed = 0;
    testing_.for_each_leaked_block([&](const zheap::LiveBlockTable::Block& block) {
      if (listed++ >= listed_at_most) return;
      char line[96];
      std::snprintf(line, sizeof line, "\n  %zu bytes (align %zu) at %p", block.len, block.alignment.bytes(),
                    block.address);
      text += line;
    });
    if (listed > listed_at_most) text += "\n  ...";
    return text;
  }

  zheap::TestingAllocator testing_;
};

// A test fixture whose gpa() is leak-checked at the end of each test.
class LeakCheckedTest : public ::testing::Test {
 protected:
  zheap::Allocator gpa() noexcept { return leaks_.allocator(); }
  void TearDown() override { leaks_.check(); }

  LeakCheck leaks_;
};
