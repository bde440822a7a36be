#ifndef CTBUS_CZEROMQ_SHIM_H
#define CTBUS_CZEROMQ_SHIM_H
// libzmq 4.3.4 as packaged by Debian (libzmq3-dev). Draft APIs are not enabled there.
#include <zmq.h>
#endif
