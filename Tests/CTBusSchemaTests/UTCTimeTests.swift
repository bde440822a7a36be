import CTBusSchema
import Foundation
import Testing

/// UTC times written and read without Foundation's formatters, which are not safe on several
/// threads on Linux.
@Suite("UTC time")
struct UTCTimeTests {
    @Test("RFC 3339 times read to the second they name; anything else is nil", arguments: [
        ("2026-12-06T02:43:44Z", 1_796_525_024.0 as Double?),
        ("2026-12-06t02:43:44z", 1_796_525_024.0),
        ("2026-12-06T04:43:44+02:00", 1_796_525_024.0),
        ("2026-12-05T23:43:44-03:00", 1_796_525_024.0),
        ("2026-12-06T02:43:44.250Z", 1_796_525_024.25),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T12:00:00Z", 1_709_208_000),
        ("2026-02-29T12:00:00Z", nil),
        ("2026-13-01T00:00:00Z", nil),
        ("2026-12-06 02:43:44Z", nil),
        ("2026-12-06T02:43:44", nil),
        ("2026-12-06T02:43:44.Z", nil),
        ("2026-12-06T02:43:44+0200", nil),
        ("2026-12-06T02:43:44Zjunk", nil),
        ("", nil),
    ])
    func parse(text: String, seconds: Double?) {
        #expect(UTCTime.parse(text)?.timeIntervalSince1970 == seconds, "\(text)")
    }

    @Test("What iso8601 writes, parse reads back; JSON dates go both ways through the same")
    func roundTrip() throws {
        let date = Date(timeIntervalSince1970: 1_796_525_024)
        #expect(UTCTime.iso8601(date) == "2026-12-06T02:43:44Z")
        #expect(UTCTime.parse(UTCTime.iso8601(date)) == date)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .utcTime
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .utcTime
        let data = try encoder.encode(["at": date])
        #expect(String(decoding: data, as: UTF8.self) == #"{"at":"2026-12-06T02:43:44Z"}"#)
        #expect(try decoder.decode([String: Date].self, from: data) == ["at": date])
        #expect(throws: DecodingError.self) { try decoder.decode([String: Date].self, from: Data(#"{"at":"yesterday"}"#.utf8)) }
    }
}
