#include "core/timer_slack.h"

#if defined(__linux__)
#include <sys/prctl.h>
#endif

namespace embd {

void set_timer_slack(std::chrono::nanoseconds slack) {
#if defined(__linux__)
  // prctl takes the slack in nanoseconds; 0 would mean "the default" again, so at least 1.
  const auto ns = static_cast<unsigned long>(slack.count() > 0 ? slack.count() : 1);
  (void)::prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0);
#else
  (void)slack;
#endif
}

}  // namespace embd
