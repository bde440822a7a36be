extension Sequence<UInt8> {
    /// The bytes in lower-case hexadecimal, two digits each. Written by hand: `String(format:)`
    /// goes through Foundation's formatting, many times the cost of the rest of a key id or a
    /// message id.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
