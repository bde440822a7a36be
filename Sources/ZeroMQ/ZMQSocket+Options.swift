import CZeroMQ

/// Typed setters for the options CTBus sets; everything else goes through `setOption`.
extension ZMQSocket {
    /// Makes a ROUTER report EHOSTUNREACH for an unknown peer instead of dropping silently.
    public func setRouterMandatory(_ on: Bool) throws(ZMQError) {
        try setOption(ZMQ_ROUTER_MANDATORY, on ? 1 : 0)
    }

    /// Queue limits in messages (0 means no limit).
    public func setHighWaterMarks(send: Int32, receive: Int32) throws(ZMQError) {
        try setOption(ZMQ_SNDHWM, send)
        try setOption(ZMQ_RCVHWM, receive)
    }

    /// libzmq drops the connection of a peer that sends a message larger than this (-1: no limit).
    public func setMaxMessageSize(_ bytes: Int64) throws(ZMQError) {
        let socket = try open("zmq_setsockopt")
        var value = bytes
        _ = try zmqCall("zmq_setsockopt(ZMQ_MAXMSGSIZE)") {
            zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size)
        }
    }

    /// ZMTP-level heartbeats (PING/PONG) that close a connection whose peer stopped answering.
    public func setHeartbeat(intervalMilliseconds: Int32, timeoutMilliseconds: Int32) throws(ZMQError) {
        try setOption(ZMQ_HEARTBEAT_IVL, intervalMilliseconds)
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, timeoutMilliseconds)
        try setOption(ZMQ_HEARTBEAT_TTL, timeoutMilliseconds)
    }

    /// Reconnect back-off: first retry after `initial`, doubling up to `maximum` milliseconds.
    public func setReconnectInterval(initial: Int32, maximum: Int32) throws(ZMQError) {
        try setOption(ZMQ_RECONNECT_IVL, initial)
        try setOption(ZMQ_RECONNECT_IVL_MAX, maximum)
    }

    /// Makes this socket a CURVE server holding `secretKey`; clients must know its public key.
    public func makeCurveServer(secretKey: String) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVER, 1)
        try setOption(ZMQ_CURVE_SECRETKEY, string: secretKey)
    }

    /// Makes this socket a CURVE client with its own key pair, talking to the server whose
    /// public key is `serverPublicKey` (all Z85).
    public func makeCurveClient(serverPublicKey: String, keyPair: CurveKeyPair) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVERKEY, string: serverPublicKey)
        try setOption(ZMQ_CURVE_PUBLICKEY, string: keyPair.publicKey)
        try setOption(ZMQ_CURVE_SECRETKEY, string: keyPair.secretKey)
    }

    /// Queue messages only to completed connections: a DEALER with no peer connected then
    /// reports EAGAIN instead of queueing (the node's outbox is its queue).
    public func setImmediate(_ on: Bool) throws(ZMQError) {
        try setOption(ZMQ_IMMEDIATE, on ? 1 : 0)
    }

    /// The ZAP domain: with one set, every connection is authenticated by the ZAP handler.
    public func setZAPDomain(_ domain: String) throws(ZMQError) {
        try setOption(ZMQ_ZAP_DOMAIN, string: domain)
    }
}

