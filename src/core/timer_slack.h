// Timer slack: Linux lets a sleeping thread's timed wake-up run late by its slack (50 us by
// default) to batch wake-ups. An executor's timed waits (fill delay, return wait) are tens of
// microseconds long, so the default slack would double them.
#pragma once

#include <chrono>

namespace embd {

// Sets the calling thread's timer slack; a no-op where the platform has none.
void set_timer_slack(std::chrono::nanoseconds slack);

}  // namespace embd
