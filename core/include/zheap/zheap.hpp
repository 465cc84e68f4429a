// Everything zheap's core offers, in one include.
#pragma once

#include <zheap/alignment.hpp>
#include <zheap/allocator.hpp>
#include <zheap/page_allocator.hpp>
