import Foundation

/// Message ids are UUIDv7 (RFC 9562): time-ordered, so journals and stores index them well.
public enum MessageID {
    /// A new UUIDv7 in lowercase text form.
    public static func generate(now: Date = Date()) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        // Two 8-byte draws: the generator makes a system call for each value it draws.
        var generator = SystemRandomNumberGenerator()
        for (half, value) in [generator.next() as UInt64, generator.next() as UInt64].enumerated() {
            for index in 0..<8 { bytes[half * 8 + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
        }
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * UInt64(index))) }
        bytes[6] = (bytes[6] & 0x0F) | 0x70
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return [bytes[0..<4], bytes[4..<6], bytes[6..<8], bytes[8..<10], bytes[10..<16]].map(\.hex).joined(separator: "-")
    }

    /// Whether `text` is a UUID (any version) in the one canonical text form the protocol
    /// accepts: 36 characters, lower-case hexadecimal digits, hyphens at 8, 13, 18 and 23
    /// (RFC 9562 section 4). Any other spelling of the same UUID is refused, never folded:
    /// two spellings of one id would make one message two.
    public static func isUUID(_ text: String) -> Bool {
        var count = 0
        for byte in text.utf8 {
            switch count {
            case 8, 13, 18, 23: guard byte == UInt8(ascii: "-") else { return false }
            default: guard isLowerHexDigit(byte) else { return false }
            }
            count += 1
            if count > WireLimits.messageIdBytes { return false }
        }
        return count == WireLimits.messageIdBytes
    }

    /// Whether `text` is a canonical UUID of version 7.
    public static func isUUIDv7(_ text: String) -> Bool {
        isUUID(text) && text.utf8.dropFirst(14).first == UInt8(ascii: "7")
    }

    /// The canonical spelling of a UUID typed in another case (for command-line arguments), or
    /// `text` unchanged when it is no UUID at all.
    public static func canonical(_ text: String) -> String {
        let lower = text.lowercased()
        return isUUID(lower) ? lower : text
    }

    private static func isLowerHexDigit(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (97...102).contains(byte)
    }
}
