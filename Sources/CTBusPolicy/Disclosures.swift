import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

/// One withheld-able field value (the wire's `Disclosure`: the selective disclosure of
/// IETF SD-JWT applied to protobuf). The publisher signs the payload without the fields of a
/// partial Member State restriction plus the digest of each disclosure, and a recipient outside
/// the restriction's allowed list simply does not get those disclosures. `salt`: 16 random bytes
/// (without them a digest of a short value, a priority, could be guessed); `path`: a
/// `RedactablePaths` path of the payload's type; `index`: the activity for `activities.*`, 0
/// otherwise; `value`: the protobuf bytes of a fragment holding only that field (a message of the
/// payload's type for top-level paths, an `Activity` for `activities.*`).
extension Disclosure {
    public init(salt: Data, path: String, index: UInt32, value: Data) {
        self.init()
        self.salt = salt
        self.path = path
        self.index = index
        self.value = value
    }

    static let domain = Data("CTBus-Disclosure-v1\u{0}".utf8)

    /// The bytes the digest covers: the domain, then salt, path, index and value, each variable
    /// part preceded by its length (4 bytes, big-endian).
    public var encoded: Data {
        var bytes = Self.domain
        bytes.appendLengthPrefixed(salt)
        bytes.appendLengthPrefixed(Data(path.utf8))
        bytes.appendBigEndian(index)
        bytes.appendLengthPrefixed(value)
        return bytes
    }

    /// SHA-256 of `encoded`: what the signature covers in place of the value.
    public var digest: Data { Data(SHA256.hash(data: encoded)) }
}

/// Making disclosures from a whole payload, and putting them back.
public enum Disclosures {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unknownPath(String)
        case indexOutOfRange(path: String, index: UInt32)
        case undecodableValue(path: String)
        case notRestricted(String)
        case duplicate(path: String, index: UInt32)
        case notWithheld(String)
        case notCanonical(path: String)
        case otherFields(path: String)

        public var description: String {
            switch self {
            case .unknownPath(let path): "disclosure path \(path) is not a redactable path of this message type"
            case .indexOutOfRange(let path, let index): "disclosure \(path) names element \(index), which the payload does not have"
            case .undecodableValue(let path): "disclosure \(path) does not hold a protobuf fragment of its field"
            case .notRestricted(let path): "disclosure \(path) names a field the message's restriction does not withhold"
            case .duplicate(let path, let index): "disclosure \(path) element \(index) comes twice"
            case .notWithheld(let path): "disclosure \(path) would overwrite a value the signed payload holds"
            case .notCanonical(let path): "disclosure \(path) is not the canonical encoding of its fragment"
            case .otherFields(let path): "disclosure \(path) sets fields other than \(path)"
            }
        }

        init(_ failure: RedactableField.Failure, path: String, index: UInt32) {
            self = switch failure {
            case .otherType: .unknownPath(path)
            case .indexOutOfRange: .indexOutOfRange(path: path, index: index)
            case .undecodable: .undecodableValue(path: path)
            case .notCanonical: .notCanonical(path: path)
            case .otherFields: .otherFields(path: path)
            }
        }
    }

    /// Splits `payload` for `paths`: the payload with those fields cleared (as `Redactor` clears
    /// them), and one disclosure per field and, for `activities.*`, per activity. `salt` gives 16
    /// random bytes (tests pass a seeded source).
    public static func split(_ payload: BusMessage.OneOf_Payload, paths: [String],
                             salt: () -> Data = { randomSalt() }) throws -> (payload: BusMessage.OneOf_Payload, disclosures: [Disclosure]) {
        var disclosures: [Disclosure] = []
        for path in paths.sorted() {
            guard let field = RedactablePaths.fields[path] else { throw Failure.unknownPath(path) }
            for (index, value) in try field.fragments(payload) {
                disclosures.append(Disclosure(salt: salt(), path: path, index: index, value: value))
            }
        }
        return (Redactor.redact(payload, paths: paths), disclosures)
    }

    /// Puts disclosed values back into a payload whose `restricted` fields were cleared. Refuses a
    /// disclosure of a field the restriction does not name, one that comes twice, and one whose
    /// field the signed payload does not hold cleared (it would overwrite signed content).
    public static func apply(_ disclosures: [Disclosure], to payload: BusMessage.OneOf_Payload,
                             restricted: Set<String>) throws(Failure) -> BusMessage.OneOf_Payload {
        var seen = Set<String>()
        var checked = Set<String>()
        var result = payload
        for disclosure in disclosures {
            guard let field = RedactablePaths.fields[disclosure.path], field.type == payload.messageType else {
                throw .unknownPath(disclosure.path)
            }
            guard restricted.contains(disclosure.path) else { throw .notRestricted(disclosure.path) }
            guard seen.insert("\(disclosure.path)#\(disclosure.index)").inserted else {
                throw .duplicate(path: disclosure.path, index: disclosure.index)
            }
            if checked.insert(disclosure.path).inserted, Redactor.redact(payload, paths: [disclosure.path]) != payload {
                throw .notWithheld(disclosure.path)
            }
            do throws(RedactableField.Failure) {
                try field.put(&result, disclosure.index, disclosure.value)
            } catch {
                throw Failure(error, path: disclosure.path, index: disclosure.index)
            }
        }
        return result
    }

    public static func randomSalt() -> Data {
        randomBytes(16)
    }

    /// Fresh bytes from BoringSSL's random generator in one call; the standard library's
    /// generator makes a system call for every value it draws, so one per byte through
    /// `UInt8.random`.
    static func randomBytes(_ count: Int) -> Data {
        SymmetricKey(size: SymmetricKeySize(bitCount: count * 8)).withUnsafeBytes { Data($0) }
    }

}

extension Data {
    mutating func appendBigEndian(_ value: UInt32) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    mutating func appendLengthPrefixed(_ bytes: Data) {
        appendBigEndian(UInt32(bytes.count))
        append(bytes)
    }
}
