import CZeroMQ

/// The socket types CTBus uses.
public enum SocketType: Int32, Sendable {
    case pair, pub, sub, req, rep, dealer, router, pull, push

    var rawZMQ: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .pull: ZMQ_PULL
        case .push: ZMQ_PUSH
        }
    }
}

/// A received multipart message with the connection metadata libzmq attached to it.
public struct ReceivedMessage: Sendable {
    public var frames: [[UInt8]]
    /// The ZAP-authenticated identity of the peer ("User-Id"), nil without authentication.
    public var userId: String?
    /// The peer's address as libzmq saw it, for logs.
    public var peerAddress: String?
}

/// A libzmq socket. Not thread-safe and deliberately not `Sendable`: one thread creates it,
/// uses it and closes it (docs/decisions.md: every socket lives on a thread of its own). Closing happens in `deinit` or `close()`.
public final class ZMQSocket {
    public let type: SocketType
    private(set) var handle: UnsafeMutableRawPointer?
    // Sockets keep their context alive: zmq_ctx_term waits for every socket to close.
    private let context: ZMQContext
    /// Whether a monitor watches this socket (`monitor(context:endpoint:)`).
    var monitored = false

    /// Creates a socket with ZMQ_LINGER set to `lingerMilliseconds` (0 by default), so closing
    /// it never blocks the context's termination.
    public init(context: ZMQContext, type: SocketType, lingerMilliseconds: Int32 = 0) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.rawZMQ) else {
            throw ZMQError(code: zmq_errno(), operation: "zmq_socket")
        }
        self.type = type
        self.handle = handle
        self.context = context
        try setOption(ZMQ_LINGER, lingerMilliseconds)
    }

    deinit { close() }

    /// Closes the socket; a monitored one stops its monitor first. Closing a socket whose
    /// monitor is still attached races with the I/O thread that writes the last events to the
    /// monitor's pipe (libzmq issue 2083), and that race corrupted the heap now and then.
    public func close() {
        if let handle {
            if monitored { zmq_socket_monitor(handle, nil, 0) }
            zmq_close(handle)
            self.handle = nil
        }
    }

    func open(_ operation: String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(code: ENOTSOCK, operation: operation) }
        return handle
    }

    // MARK: Options

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        let socket = try open("zmq_setsockopt")
        var value = value
        _ = try zmqCall("zmq_setsockopt(\(option))") {
            zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size)
        }
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        let socket = try open("zmq_setsockopt")
        _ = try zmqCall("zmq_setsockopt(\(option))") {
            bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
        }
    }

    public func setOption(_ option: Int32, string: String) throws(ZMQError) {
        try setOption(option, bytes: Array(string.utf8))
    }

    public func intOption(_ option: Int32) throws(ZMQError) -> Int32 {
        let socket = try open("zmq_getsockopt")
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        _ = try zmqCall("zmq_getsockopt(\(option))") { zmq_getsockopt(socket, option, &value, &size) }
        return value
    }

    public func stringOption(_ option: Int32) throws(ZMQError) -> String {
        let socket = try open("zmq_getsockopt")
        var buffer = [UInt8](repeating: 0, count: 1024)
        var size = buffer.count
        _ = try zmqCall("zmq_getsockopt(\(option))") { zmq_getsockopt(socket, option, &buffer, &size) }
        let end = buffer[..<size].firstIndex(of: 0) ?? size
        return String(decoding: buffer[..<end], as: UTF8.self)
    }

    /// The endpoint the socket last bound to, with the port resolved when bound to `:*`.
    public var lastEndpoint: String {
        (try? stringOption(ZMQ_LAST_ENDPOINT)) ?? ""
    }

    // MARK: Endpoints

    public func bind(_ endpoint: String) throws(ZMQError) {
        let socket = try open("zmq_bind")
        _ = try zmqCall("zmq_bind(\(endpoint))") { zmq_bind(socket, endpoint) }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        let socket = try open("zmq_connect")
        _ = try zmqCall("zmq_connect(\(endpoint))") { zmq_connect(socket, endpoint) }
    }

    /// Ends the connection to `endpoint` (a later `connect` makes a new one, which a ROUTER
    /// peer sees under a new routing id).
    public func disconnect(_ endpoint: String) throws(ZMQError) {
        let socket = try open("zmq_disconnect")
        _ = try zmqCall("zmq_disconnect(\(endpoint))") { zmq_disconnect(socket, endpoint) }
    }

    // MARK: Sending and receiving

    /// Sends a multipart message. With `dontWait`, a full queue throws `EAGAIN` instead of
    /// blocking.
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) {
        let socket = try open("zmq_send")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            _ = try zmqCall("zmq_send") {
                frame.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) }
            }
        }
    }

    /// Receives one multipart message. With `dontWait`, returns nil when nothing is waiting.
    public func receive(dontWait: Bool = false) throws(ZMQError) -> ReceivedMessage? {
        let socket = try open("zmq_msg_recv")
        var received = ReceivedMessage(frames: [], userId: nil, peerAddress: nil)
        while true {
            let message = ZMQMessage()
            do {
                _ = try zmqCall("zmq_msg_recv") {
                    zmq_msg_recv(message.pointer, socket, dontWait && received.frames.isEmpty ? ZMQ_DONTWAIT : 0)
                }
            } catch where error.isWouldBlock && received.frames.isEmpty {
                return nil
            }
            // A ROUTER's routing-id frame carries no metadata; the peer's own frames do.
            if received.userId == nil { received.userId = message.property("User-Id") }
            if received.peerAddress == nil { received.peerAddress = message.property("Peer-Address") }
            received.frames.append(message.bytes)
            if !message.hasMore { return received }
        }
    }
}

extension ZMQSocket {
    /// Waits until at least one socket is readable or the timeout passes; returns, for each
    /// socket in order, whether it is readable. EINTR counts as "nothing readable".
    public static func poll(_ sockets: [ZMQSocket], timeoutMilliseconds: Int) throws(ZMQError) -> [Bool] {
        var items = [zmq_pollitem_t]()
        items.reserveCapacity(sockets.count)
        for socket in sockets {
            items.append(zmq_pollitem_t(socket: try socket.open("zmq_poll"), fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
        }
        let result = zmq_poll(&items, Int32(items.count), timeoutMilliseconds)
        if result < 0 {
            let code = zmq_errno()
            if code == EINTR { return Array(repeating: false, count: sockets.count) }
            throw ZMQError(code: code, operation: "zmq_poll")
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
