import CZeroMQ

/// A CURVE key pair in Z85 text form (40 characters each), as libzmq's options take them.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair from libzmq's random source.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        _ = try zmqCall("zmq_curve_keypair") { zmq_curve_keypair(&publicKey, &secretKey) }
        return CurveKeyPair(publicKey: Self.string(publicKey), secretKey: Self.string(secretKey))
    }

    /// The key pair belonging to a secret key; nil when `secretKey` is not a valid Z85 key.
    public init?(secretKey: String) {
        guard Z85.decode(secretKey)?.count == 32 else { return nil }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else { return nil }
        self.init(publicKey: Self.string(publicKey), secretKey: secretKey)
    }

    private static func string(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// ZeroMQ's Z85 encoding (RFC 32), used for CURVE keys in text.
public enum Z85 {
    /// Decodes Z85 text; nil when the text is not valid Z85 (length not a multiple of 5, or a
    /// character outside the alphabet).
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty, utf8.count % 5 == 0,
              utf8.allSatisfy({ alphabet.contains($0) }) else { return nil }
        var output = [UInt8](repeating: 0, count: utf8.count * 4 / 5)
        let ok = (text + "").withCString { source in
            output.withUnsafeMutableBufferPointer { zmq_z85_decode($0.baseAddress, source) != nil }
        }
        return ok ? output : nil
    }

    /// Encodes bytes (a multiple of 4 long) as Z85 text.
    public static func encode(_ bytes: [UInt8]) -> String? {
        guard bytes.count % 4 == 0 else { return nil }
        var output = [CChar](repeating: 0, count: bytes.count * 5 / 4 + 1)
        guard zmq_z85_encode(&output, bytes, bytes.count) != nil else { return nil }
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static let alphabet = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
}
