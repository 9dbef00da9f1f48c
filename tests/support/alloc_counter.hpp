#pragma once
// One counting global allocator for test binaries that must prove a path does not allocate.
// Linking alloc_counter.cpp into a test executable replaces every replaceable global operator new
// and delete (plain, array, nothrow, aligned, sized) in that whole binary; allocations() is the
// number of operator new calls made so far. A test takes the difference across the code it
// checks, after it has built its inputs, and asserts an exact count.
//
// It counts operator new only: std::malloc called directly (by C libraries) is not seen.

#include <cstdint>

namespace spoa::test {

std::uint64_t allocations() noexcept;

}  // namespace spoa::test
