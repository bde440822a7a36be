import Foundation

/// Builds the bytes of the frames that carry a message from stored envelope and payload bytes,
/// without decoding and re-encoding the envelope: the hot paths of the broker (Deliver) and of
/// a publishing node (Publish). The bytes are exactly what SwiftProtobuf writes for the same
/// values (a test checks it).
public enum FrameBytes {
    /// `Frame{publish: Publish{payload, signed_envelope, proof}}`, `proof` being the serialized
    /// Proof.
    public static func publish(signedEnvelope: Data, payload: Data, proof: Data) -> [UInt8] {
        var publish: [UInt8] = []
        publish.reserveCapacity(signedEnvelope.count + payload.count + proof.count + 16)
        if !payload.isEmpty { appendField(2, payload, to: &publish) }
        if !signedEnvelope.isEmpty { appendField(3, signedEnvelope, to: &publish) }
        appendField(4, proof, to: &publish)
        return frame(field: 3, publish)
    }

    /// `Frame{deliver: Deliver{sequence, payload, redacted_paths, signed_envelope, proof}}`,
    /// `proof` being the serialized Proof this recipient gets.
    public static func deliver(sequence: UInt64, envelope: Data, payload: Data, redactedPaths: [String], proof: Data) -> [UInt8] {
        var deliver: [UInt8] = []
        deliver.reserveCapacity(envelope.count + payload.count + proof.count + 32)
        if sequence != 0 {
            deliver.append(0x08) // field 1, varint
            appendVarint(sequence, to: &deliver)
        }
        if !payload.isEmpty { appendField(3, payload, to: &deliver) }
        for path in redactedPaths { appendField(4, Data(path.utf8), to: &deliver) }
        if !envelope.isEmpty { appendField(6, envelope, to: &deliver) }
        appendField(7, proof, to: &deliver)
        return frame(field: 5, deliver)
    }

    /// A Frame whose `kind` is the command in field `number`.
    private static func frame(field number: UInt8, _ command: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = []
        frame.reserveCapacity(command.count + 8)
        frame.append(number << 3 | 2)
        appendVarint(UInt64(command.count), to: &frame)
        frame.append(contentsOf: command)
        return frame
    }

    private static func appendField(_ number: UInt8, _ bytes: Data, to buffer: inout [UInt8]) {
        buffer.append(number << 3 | 2)
        appendVarint(UInt64(bytes.count), to: &buffer)
        buffer.append(contentsOf: bytes)
    }

    private static func appendVarint(_ value: UInt64, to buffer: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            buffer.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        buffer.append(UInt8(value))
    }
}
