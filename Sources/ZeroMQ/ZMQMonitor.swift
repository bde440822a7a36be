import CZeroMQ

/// What libzmq tells a socket monitor about the connections of the socket it watches.
public struct ZMQMonitorEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A TCP connection to the peer is up (the ZMTP handshake comes next).
        case connected
        /// The ZMTP/CURVE handshake succeeded: the peer accepted this socket's keys.
        case handshakeSucceeded
        /// The peer refused the handshake (a ZAP answer other than 200: the key is not registered).
        case handshakeFailedAuthentication(status: UInt32)
        /// The handshake broke off (for CURVE, typically a wrong server key: the peer cannot decrypt).
        case handshakeFailed
        /// The connection closed.
        case disconnected
        case other(UInt16)
    }

    public let kind: Kind
    public let address: String
}

extension ZMQSocket {
    /// Watches this socket's connection events on a PAIR socket of `context` (through an inproc
    /// endpoint of its own). Poll the returned socket and read events with `readMonitorEvent`.
    public func monitor(context: ZMQContext, endpoint: String) throws(ZMQError) -> ZMQSocket {
        let socket = try open("zmq_socket_monitor")
        let events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        _ = try zmqCall("zmq_socket_monitor(\(endpoint))") { zmq_socket_monitor(socket, endpoint, events) }
        monitored = true
        let pair = try ZMQSocket(context: context, type: .pair)
        try pair.connect(endpoint)
        return pair
    }

    /// The next event on a monitor socket, or nil when none waits.
    public func readMonitorEvent() throws(ZMQError) -> ZMQMonitorEvent? {
        guard let message = try receive(dontWait: true) else { return nil }
        guard message.frames.count == 2, message.frames[0].count >= 6 else { return nil }
        let header = message.frames[0]
        let event = UInt16(header[0]) | UInt16(header[1]) << 8
        let value = UInt32(header[2]) | UInt32(header[3]) << 8 | UInt32(header[4]) << 16 | UInt32(header[5]) << 24
        let address = String(decoding: message.frames[1], as: UTF8.self)
        let kind: ZMQMonitorEvent.Kind = switch Int32(event) {
        case ZMQ_EVENT_CONNECTED: .connected
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: .handshakeSucceeded
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: .handshakeFailedAuthentication(status: value)
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: .handshakeFailed
        case ZMQ_EVENT_DISCONNECTED: .disconnected
        default: .other(event)
        }
        return ZMQMonitorEvent(kind: kind, address: address)
    }
}
