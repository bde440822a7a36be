import CTBusSchema

/// What the broker can still say about bytes that do not decode as a Frame (PROTOCOL.md
/// section 8): the message id, read straight from the protobuf wire format when the bytes
/// allow it (a Publish's `envelope.message_id` or a Revoke's `message_id`, even when another
/// field is broken, say invalid UTF-8 in the subject; in protocol version 2 the envelope is the
/// bytes of `signed_envelope`, field 3). When it cannot, the broker reports the
/// SHA-256 of the bytes instead (`ErrorReport.frame_sha256`).
public enum FrameSalvage {
    /// The id of the publication or revocation in `bytes`, or nil when none can be read: not
    /// a Publish or Revoke, the path to the id is cut, or the id is not UTF-8 of at most
    /// `WireLimits.echoedIdBytes` bytes.
    public static func messageId(in bytes: [UInt8]) -> String? {
        if let publish = lastField(3, in: bytes[...]) {
            if let envelope = lastField(3, in: publish), let id = messageId(inEnvelope: envelope) { return id }
            if let envelope = lastField(1, in: publish), let id = messageId(inEnvelope: envelope) { return id }
        }
        if let revoke = lastField(9, in: bytes[...]), let id = lastField(1, in: revoke) { return text(id) }
        return nil
    }

    /// The message id in the bytes of an Envelope that may not decode as a whole.
    public static func messageId(inEnvelope bytes: ArraySlice<UInt8>) -> String? {
        lastField(1, in: bytes).flatMap(text)
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String? {
        guard !bytes.isEmpty, bytes.count <= WireLimits.echoedIdBytes else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// The contents of the last length-delimited field `number` in a protobuf message (the
    /// value a decoder keeps), or nil when there is none or the bytes end before it is known.
    static func lastField(_ number: UInt64, in bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var index = bytes.startIndex
        var found: ArraySlice<UInt8>?
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.endIndex, shift < 64 {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while index < bytes.endIndex {
            guard let key = varint() else { return found }
            switch key & 7 {
            case 0: guard varint() != nil else { return found }
            case 1: index += 8
            case 5: index += 4
            case 2:
                guard let length = varint(), length <= UInt64(bytes.endIndex - index) else { return found }
                let end = index + Int(length)
                if key >> 3 == number { found = bytes[index..<end] }
                index = end
            default: return found // groups and unknown wire types: stop reading
            }
        }
        return found
    }
}
