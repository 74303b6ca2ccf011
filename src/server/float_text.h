// Shortest round-trip text of a float32, as JSON needs it for every embedding value.
//
// The output is byte for byte what std::to_chars(first, last, value) writes (the shortest digits
// that read back as the same float, in fixed or scientific notation, whichever is shorter), but
// faster: the digits come from Schubfach without branches on the value, and are placed with
// fixed-size copies instead of through a general formatter. Printing is most of the CPU a response costs
// (512 floats per text).
#pragma once

#include <cstddef>
#include <span>

namespace embd::server {

// Longest text write_shortest_float produces ("-1.1754944e-38" is 14 characters).
inline constexpr int kMaxFloatText = 15;
// Room the caller must leave at `out`: the writer stores whole 8-byte words that may reach past
// the text's end (scratch that the next write overwrites).
inline constexpr int kFloatTextRoom = 32;

// Writes `value` (finite) at `out`, which has kFloatTextRoom bytes of room; returns the end of
// the text (at most kMaxFloatText characters).
char* write_shortest_float(float value, char* out);

// Writes `values` separated by commas (no brackets), non-finite ones as null, at `out`, which
// has float_list_room(values.size()) bytes of room; returns the end of the text.
char* write_float_list(std::span<const float> values, char* out);

constexpr std::size_t float_list_room(std::size_t count) {
  return count * (kMaxFloatText + 1) + kFloatTextRoom;
}

}  // namespace embd::server
