import CZeroMQ

/// What a ZAP handler learns about a connection being authenticated (RFC 27).
public struct ZAPRequest: Sendable {
    public let domain: String
    public let address: String
    public let mechanism: String
    /// For CURVE: the client's 32-byte public key.
    public let credentials: [[UInt8]]

    /// The client's CURVE public key in Z85, when the mechanism is CURVE.
    public var curvePublicKey: String? {
        guard mechanism == "CURVE", let key = credentials.first, key.count == 32 else { return nil }
        return Z85.encode(key)
    }
}

/// The verdict of a ZAP handler: admit with a user id (which libzmq then attaches to every
/// message of the connection as "User-Id"), or refuse.
public enum ZAPDecision: Sendable, Equatable {
    case allow(userId: String)
    case deny(reason: String)
}

/// A ZAP handler (RFC 27) on its own thread: a REP socket on inproc://zeromq.zap.01 of a
/// context. Every CURVE server socket of that context then asks it about each new connection.
public final class ZAPHandler: Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"
    private let loop = LoopThread()

    /// Binds the handler; it must run before any server socket of the context accepts peers.
    public init(context: ZMQContext, decide: @escaping @Sendable (ZAPRequest) -> ZAPDecision) throws {
        try loop.start(name: "zap-handler") { loop in
            let socket: ZMQSocket
            do {
                socket = try ZMQSocket(context: context, type: .rep)
                try socket.bind(Self.endpoint)
            } catch {
                loop.ready(.failure(error))
                return
            }
            loop.ready(.success(()))
            while !loop.isStopping {
                do {
                    guard try ZMQSocket.poll([socket], timeoutMilliseconds: 50)[0],
                          let request = try socket.receive(dontWait: true) else { continue }
                    try socket.send(Self.reply(to: request.frames, decide: decide))
                } catch let error as ZMQError where error.isTerminated {
                    break
                } catch {
                    continue // a broken request must not stop authentication for everyone else
                }
            }
            socket.close()
        }
    }

    public func stop() { loop.stop() }

    /// The reply frames the handler sends for `frames`, without a socket (for tests of the protocol).
    public static func replyForTesting(to frames: [[UInt8]], decide: (ZAPRequest) -> ZAPDecision) -> [[UInt8]] {
        reply(to: frames, decide: decide)
    }

    static func reply(to frames: [[UInt8]], decide: (ZAPRequest) -> ZAPDecision) -> [[UInt8]] {
        // version, request id, domain, address, identity, mechanism, credentials...
        guard frames.count >= 6, String(decoding: frames[0], as: UTF8.self) == "1.0" else {
            let requestId = frames.count > 1 ? frames[1] : []
            return [Array("1.0".utf8), requestId, Array("500".utf8), Array("malformed ZAP request".utf8), [], []]
        }
        let text = { (index: Int) in String(decoding: frames[index], as: UTF8.self) }
        let request = ZAPRequest(domain: text(2), address: text(3), mechanism: text(5),
                                 credentials: Array(frames.dropFirst(6)))
        switch decide(request) {
        case .allow(let userId):
            return [Array("1.0".utf8), frames[1], Array("200".utf8), Array("OK".utf8), Array(userId.utf8), []]
        case .deny(let reason):
            return [Array("1.0".utf8), frames[1], Array("400".utf8), Array(reason.utf8), [], []]
        }
    }
}
