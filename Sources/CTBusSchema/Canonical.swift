import Foundation
import SwiftProtobuf

/// The one encoding a signed part may have (PROTOCOL.md 7.2): the bytes must be exactly what
/// serializing the decoded message gives again, fields in ascending number order, each
/// non-repeated field at most once, no field at its default value, repeated scalars packed,
/// minimal varints, and no field the schema does not define. A signature then pins one
/// message and one encoding: nothing can hide in the bytes that a reader of the decoded message
/// does not see (a value encoded twice, the last one winning; a value in an unknown field),
/// while every recipient journals those bytes as they travelled.
public enum Canonical {
    /// Why bytes were refused.
    public enum Failure: Error, Equatable, Sendable {
        /// Not a protobuf encoding of the message type at all.
        case undecodable
        /// Decodes, but is not the canonical encoding of what it decodes to.
        case notCanonical
    }

    /// Decodes `bytes` as `M` when they are its canonical encoding.
    public static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, from bytes: Data) throws(Failure) -> M {
        var options = BinaryDecodingOptions()
        // Unknown fields are dropped while decoding, so bytes that carried any differ from the
        // encoding of the result below.
        options.discardUnknownFields = true
        let message: M
        do {
            message = try M(serializedBytes: bytes, options: options)
        } catch {
            throw .undecodable
        }
        guard (try? encode(message)) == bytes else { throw .notCanonical }
        return message
    }

    /// The canonical encoding of `message`.
    public static func encode(_ message: some SwiftProtobuf.Message) throws -> Data {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return try message.serializedData(options: options)
    }
}
