#pragma once

// Recurses `depth` frames inside the shared library, then calls callback(arg).
extern "C" int stack_capture_helper_recurse(int depth, void (*callback)(void*), void* arg);
