import Foundation

/// Builds the bytes of `Frame{deliver: Deliver{...}}` from stored envelope and payload bytes,
/// without decoding and re-encoding the envelope: the broker's hot path. The bytes are exactly
/// what SwiftProtobuf writes for the same values (a test checks it).
public enum DeliverFrame {
    public static func bytes(sequence: UInt64, envelope: Data, payload: Data, redactedPaths: [String]) -> [UInt8] {
        var deliver: [UInt8] = []
        deliver.reserveCapacity(envelope.count + payload.count + 32)
        if sequence != 0 {
            deliver.append(0x08) // field 1, varint
            appendVarint(sequence, to: &deliver)
        }
        if !envelope.isEmpty { appendField(2, envelope, to: &deliver) }
        if !payload.isEmpty { appendField(3, payload, to: &deliver) }
        for path in redactedPaths { appendField(4, Data(path.utf8), to: &deliver) }
        var frame: [UInt8] = []
        frame.reserveCapacity(deliver.count + 8)
        frame.append(0x2A) // Frame.deliver: field 5, length-delimited
        appendVarint(UInt64(deliver.count), to: &frame)
        frame.append(contentsOf: deliver)
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
