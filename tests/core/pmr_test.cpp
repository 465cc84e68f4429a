// Standard containers on zheap allocators: std::pmr containers on a PmrResource, and
// std containers with StlAllocator<T>, over every allocator fixture (each wrapped in a
// ValidatingAllocator, so the sized frees the containers make are checked too).
#include <zheap/failing_allocator.hpp>
#include <zheap/pmr_resource.hpp>
#include <zheap/stl_allocator.hpp>

#include <gtest/gtest.h>

#include <list>
#include <map>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

#include "allocator_fixtures.hpp"
#include "leak_check.hpp"

namespace {
using zheap::PmrResource;
using zheap::StlAllocator;

template <class Fixture>
class Containers : public ::testing::Test {
 protected:
  Containers() : fixture_(zheap::page_allocator()), validating_(fixture_.allocator(), fail_test_on_violation()) {}
  void TearDown() override { EXPECT_EQ(validating_.live_blocks(), 0u) << "a container leaked"; }

  zheap::Allocator allocator() { return validating_.allocator(); }
  // How many elements to put in a container: fewer when the allocator is small.
  static constexpr std::size_t count = Fixture::traits.capacity == SIZE_MAX ? 5000 : 1000;

  Fixture fixture_;
  zheap::ValidatingAllocator validating_;
};
TYPED_TEST_SUITE(Containers, AllAllocatorFixtures, AllocatorFixtureNames);

// Long enough that no small-string optimisation keeps it out of the allocator.
std::string long_text(std::size_t i) { return "a string long enough to be allocated, number " + std::to_string(i); }

TYPED_TEST(Containers, PmrVectorAndString) {
  PmrResource resource(this->allocator());
  std::pmr::vector<std::uint64_t> numbers(&resource);
  for (std::size_t i = 0; i < this->count; ++i) numbers.push_back(i * i);
  for (std::size_t i = 0; i < this->count; ++i) ASSERT_EQ(numbers[i], i * i);
  numbers.shrink_to_fit();

  std::pmr::string text(&resource);
  for (std::size_t i = 0; i < 200; ++i) text += "0123456789";
  EXPECT_EQ(text.size(), 2000u);
  EXPECT_EQ(text.substr(1990), "0123456789");
  EXPECT_GT(this->validating_.live_blocks(), 0u);  // the memory really came from zheap
}

TYPED_TEST(Containers, PmrMapAndUnorderedMap) {
  PmrResource resource(this->allocator());
  std::pmr::map<int, std::pmr::string> by_number(&resource);
  std::pmr::unordered_map<std::pmr::string, int> by_text(&resource);
  const int n = static_cast<int>(this->count / 5);
  for (int i = 0; i < n; ++i) {
    by_number.emplace(i, long_text(i));
    by_text.emplace(long_text(i), i);
  }
  for (int i = 0; i < n; i += 2) {
    by_number.erase(i);
    by_text.erase(std::pmr::string(long_text(i), &resource));
  }
  ASSERT_EQ(by_number.size(), static_cast<std::size_t>(n / 2));
  for (const auto& [number, text] : by_number) {
    EXPECT_EQ(std::string_view(text), long_text(number));
    EXPECT_EQ(by_text.at(text), number);
  }
  // Allocator-extended copies stay on the same resource.
  std::pmr::map<int, std::pmr::string> copy(by_number, &resource);
  EXPECT_EQ(copy.begin()->second.get_allocator().resource(), &resource);
}

TYPED_TEST(Containers, StlAllocatorVectorListAndMap) {
  const StlAllocator<int> ints(this->allocator());
  std::vector<int, StlAllocator<int>> numbers(ints);
  for (std::size_t i = 0; i < this->count; ++i) numbers.push_back(static_cast<int>(i));
  EXPECT_EQ(numbers.back(), static_cast<int>(this->count - 1));
  auto copy = numbers;  // copies the allocator with the elements
  EXPECT_EQ(copy.get_allocator(), ints);
  EXPECT_EQ(copy, numbers);

  std::list<std::string, StlAllocator<std::string>> texts(ints);  // converts: rebinds to the list's nodes
  for (std::size_t i = 0; i < 100; ++i) texts.push_back(long_text(i));
  texts.remove_if([](const std::string& s) { return s.back() == '3'; });
  EXPECT_EQ(texts.size(), 90u);

  using Pair = std::pair<const int, double>;
  std::map<int, double, std::less<>, StlAllocator<Pair>> squares(StlAllocator<Pair>(this->allocator()));
  for (int i = 0; i < 300; ++i) squares[i] = i * 1.5;
  EXPECT_DOUBLE_EQ(squares.at(200), 300.0);
  EXPECT_GT(this->validating_.live_blocks(), 0u);
}

TEST(PmrResource, EqualWhenOverTheSameAllocator) {
  LeakCheck leaks;
  PmrResource first(leaks.allocator());
  PmrResource second(leaks.allocator());
  PmrResource other(zheap::page_allocator());
  EXPECT_TRUE(first.is_equal(second));
  EXPECT_FALSE(first.is_equal(other));
  EXPECT_FALSE(first.is_equal(*std::pmr::new_delete_resource()));
  // Equal resources may free each other's memory.
  void* p = first.allocate(100, 32);
  second.deallocate(p, 100, 32);
}

TEST(PmrResource, OutOfMemoryThrowsBadAllocAndLeaksNothing) {
  LeakCheck leaks;
  zheap::FailingAllocator failing(leaks.allocator(), {.fail_index = 3});
  PmrResource resource(failing.allocator());
  std::pmr::vector<int> numbers(&resource);
  EXPECT_THROW(
      {
        for (int i = 0; i < 1000; ++i) numbers.push_back(i);
      },
      std::bad_alloc);
  EXPECT_EQ(numbers.size(), 4u);  // grew to 1, 2, 4, then the 4th allocation failed
  EXPECT_THROW((void)resource.allocate(8, 8), std::bad_alloc);
}

TEST(PmrResource, ZeroBytesAndOverAlignment) {
  LeakCheck leaks;
  PmrResource resource(leaks.allocator());
  void* nothing = resource.allocate(0, 1);
  EXPECT_NE(nothing, nullptr);
  void* page_aligned = resource.allocate(10, 8192);
  EXPECT_TRUE(zheap::Alignment::of_bytes(8192).check(page_aligned));
  resource.deallocate(page_aligned, 10, 8192);
  resource.deallocate(nothing, 0, 1);
}

// Outside memory_resource's precondition, but cheap to answer safely.
TEST(PmrResource, ANonPowerOfTwoAlignmentIsRefused) {
  LeakCheck leaks;
  PmrResource resource(leaks.allocator());
  volatile std::size_t alignment = 24;  // at run time, as a wrong value would come
  EXPECT_THROW((void)resource.allocate(8, alignment), std::bad_alloc);
}

TEST(StlAllocator, OutOfMemoryThrowsBadAllocAndLeaksNothing) {
  LeakCheck leaks;
  zheap::FailingAllocator failing(leaks.allocator(), {.fail_index = 2});
  std::vector<long, StlAllocator<long>> numbers{StlAllocator<long>(failing.allocator())};
  EXPECT_THROW(
      {
        for (int i = 0; i < 100; ++i) numbers.push_back(i);
      },
      std::bad_alloc);
  EXPECT_EQ(numbers.size(), 2u);
  EXPECT_THROW((void)numbers.get_allocator().allocate(SIZE_MAX / 4), std::bad_array_new_length);
}

TEST(StlAllocator, EqualityFollowsTheUnderlyingAllocator) {
  LeakCheck leaks;
  StlAllocator<int> a(leaks.allocator());
  StlAllocator<double> rebound(a);
  EXPECT_TRUE(a == rebound);
  EXPECT_FALSE(a == StlAllocator<int>(zheap::page_allocator()));
  static_assert(std::is_same_v<std::allocator_traits<StlAllocator<int>>::rebind_alloc<char>, StlAllocator<char>>);
}
}  // namespace
