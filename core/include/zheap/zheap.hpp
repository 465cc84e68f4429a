// Everything zheap's core offers, in one include.
#pragma once

#include <zheap/alignment.hpp>
#include <zheap/allocator.hpp>
#include <zheap/arena_allocator.hpp>
#include <zheap/c_allocator.hpp>
#include <zheap/config.hpp>
#include <zheap/debug_allocator.hpp>
#include <zheap/failing_allocator.hpp>
#include <zheap/fixed_buffer_allocator.hpp>
#include <zheap/jemalloc_allocator.hpp>
#include <zheap/live_block_table.hpp>
#include <zheap/logging_allocator.hpp>
#include <zheap/memory_pool.hpp>
#include <zheap/mutex.hpp>
#include <zheap/page_allocator.hpp>
#include <zheap/pmr_resource.hpp>
#include <zheap/smp_allocator.hpp>
#include <zheap/stack_fallback_allocator.hpp>
#include <zheap/stl_allocator.hpp>
#include <zheap/testing_allocator.hpp>
#include <zheap/thread_safe_allocator.hpp>
#include <zheap/validating_allocator.hpp>
#include <zheap/vtable_for.hpp>
