import CZeroMQ

/// A libzmq context. Thread-safe by libzmq's contract, so it may be shared between the
/// threads that own sockets; sockets themselves are not shared.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() throws(ZMQError) {
        guard let handle = zmq_ctx_new() else {
            throw ZMQError(code: zmq_errno(), operation: "zmq_ctx_new")
        }
        self.handle = handle
    }

    /// Makes every blocking call on this context's sockets fail with ETERM, so the threads
    /// that own them wake up and close them. Termination itself happens in `deinit`, after
    /// every socket is closed (sockets keep their context alive).
    public func shutdown() {
        _ = zmq_ctx_shutdown(handle)
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// The version of the libzmq library in use, such as (4, 3, 4).
    public static var libraryVersion: (major: Int32, minor: Int32, patch: Int32) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }

    /// Whether libzmq was built with a capability ("curve", "ipc", ...).
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) == 1
    }
}
