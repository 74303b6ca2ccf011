// The embd public API: #include <embd/embd.hpp>.
#pragma once

#include "embd/engine.hpp"
#include "embd/hub.hpp"
#include "embd/options.hpp"
#include "embd/status.hpp"
#include "embd/version.hpp"
