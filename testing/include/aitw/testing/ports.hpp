#pragma once
// Loopback ports for tests that start real servers.

namespace aitw::testing {

// A port the kernel has just handed out on 127.0.0.1 (bound, then closed again); throws
// std::runtime_error when there is none.
int free_port();
// Whether something accepts a TCP connection on 127.0.0.1:port now.
bool accepts(int port);

}  // namespace aitw::testing
