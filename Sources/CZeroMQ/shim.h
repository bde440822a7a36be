#ifndef CTBUS_CZEROMQ_SHIM_H
#define CTBUS_CZEROMQ_SHIM_H
// libzmq 4.3.4 as packaged by Debian (libzmq3-dev). Draft APIs are not enabled there.
#include <zmq.h>
#include <sys/prctl.h>

// Names the calling thread (at most 15 characters), so socket threads show in top and /proc.
// Swift's Glibc module does not export pthread_setname_np.
static inline int ctbus_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}
#endif
