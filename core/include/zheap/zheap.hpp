// Everything zheap's core offers, in one include.
#pragma once

#include <zheap/alignment.hpp>
#include <zheap/allocator.hpp>
#include <zheap/arena_allocator.hpp>
#include <zheap/c_allocator.hpp>
#include <zheap/config.hpp>
#include <zheap/fixed_buffer_allocator.hpp>
#include <zheap/jemalloc_allocator.hpp>
#include <zheap/memory_pool.hpp>
#include <zheap/page_allocator.hpp>
#include <zheap/smp_allocator.hpp>
#include <zheap/stack_fallback_allocator.hpp>
