import CZeroMQ

/// A failed libzmq call: the operation that failed and the `errno` it left behind.
public struct ZMQError: Error, Equatable, CustomStringConvertible {
    /// The `errno` value libzmq reported (`EAGAIN`, `ETERM`, `EHOSTUNREACH`, ...).
    public let code: Int32
    /// The libzmq function or wrapper operation that failed, for messages.
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The context was terminated: the owning thread should close its socket and stop.
    public var isTerminated: Bool { code == ETERM }
    /// Nothing to read, or the send would block.
    public var isWouldBlock: Bool { code == EAGAIN }
    /// A ROUTER with ROUTER_MANDATORY could not route to the peer (it is gone).
    public var isHostUnreachable: Bool { code == EHOSTUNREACH }

    public var description: String {
        "\(operation) failed: \(String(cString: zmq_strerror(code))) (errno \(code))"
    }
}

/// The one place that talks to libzmq's error convention: runs `body` until it stops failing
/// with EINTR, and turns any other failure into a `ZMQError` read right after the call.
@inline(__always)
func zmqCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = zmq_errno()
        if code == EINTR { continue }
        throw ZMQError(code: code, operation: operation())
    }
}
