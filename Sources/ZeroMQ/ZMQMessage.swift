import CZeroMQ

/// One `zmq_msg_t`, kept behind a pointer: libzmq forbids copying it bit for bit, so the type
/// is non-copyable and closes the message exactly once.
struct ZMQMessage: ~Copyable {
    let pointer: UnsafeMutablePointer<zmq_msg_t>

    init() {
        pointer = .allocate(capacity: 1)
        zmq_msg_init(pointer)
    }

    deinit {
        zmq_msg_close(pointer)
        pointer.deallocate()
    }

    var bytes: [UInt8] {
        let size = zmq_msg_size(pointer)
        guard size > 0, let data = zmq_msg_data(pointer) else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: size))
    }

    var hasMore: Bool { zmq_msg_more(pointer) == 1 }

    /// A metadata property of the connection the message came from ("User-Id",
    /// "Peer-Address", "Socket-Type"); nil when the connection does not have it.
    func property(_ name: String) -> String? {
        guard let value = zmq_msg_gets(pointer, name) else { return nil }
        return String(cString: value)
    }
}
