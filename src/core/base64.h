// Standard base64 (RFC 4648, "+/" alphabet, "=" padding) decoding, for binary blobs that JSON
// files carry as text (tokenizer.json's precompiled charsmap).
//
// Thread-safety: a pure function. Errors: returns false on a character outside the alphabet, bad
// padding or a length that is not a multiple of 4 (whitespace is not skipped).
#pragma once

#include <string>
#include <string_view>

namespace embd {

// Decodes `text` into `out` (replacing its contents); false when `text` is not valid base64.
bool base64_decode(std::string_view text, std::string& out);

}  // namespace embd
