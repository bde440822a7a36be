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
    }

    /// Splits `payload` for `paths`: the payload with those fields cleared (as `Redactor` clears
    /// them), and one disclosure per field and, for `activities.*`, per activity. `salt` gives 16
    /// random bytes (tests pass a seeded source).
    public static func split(_ payload: BusMessage.OneOf_Payload, paths: [String],
                             salt: () -> Data = { randomSalt() }) throws -> (payload: BusMessage.OneOf_Payload, disclosures: [Disclosure]) {
        var disclosures: [Disclosure] = []
        for path in paths.sorted() {
            guard let field = Field.table[path] else { throw Failure.unknownPath(path) }
            for (index, value) in try field.extract(payload) {
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
            guard let field = Field.table[disclosure.path], field.type == payload.messageType else {
                throw .unknownPath(disclosure.path)
            }
            guard restricted.contains(disclosure.path) else { throw .notRestricted(disclosure.path) }
            guard seen.insert("\(disclosure.path)#\(disclosure.index)").inserted else {
                throw .duplicate(path: disclosure.path, index: disclosure.index)
            }
            if checked.insert(disclosure.path).inserted, Redactor.redact(payload, paths: [disclosure.path]) != payload {
                throw .notWithheld(disclosure.path)
            }
            try field.apply(&result, disclosure)
        }
        return result
    }

    public static func randomSalt() -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// How one redactable path is read out of and written back into a payload.
    struct Field {
        let type: MessageType
        let extract: (BusMessage.OneOf_Payload) throws -> [(UInt32, Data)]
        let apply: (inout BusMessage.OneOf_Payload, Disclosure) throws(Failure) -> Void

        /// A top-level field of one message type: the fragment is a message of that type holding
        /// only the field (a message-typed field only when it is set).
        static func top<M: SwiftProtobuf.Message, T>(_ type: MessageType, _ keyPath: WritableKeyPath<M, T>,
                                                    isSet: @escaping (M) -> Bool = { _ in true },
                                                    get: @escaping (BusMessage.OneOf_Payload) -> M?,
                                                    wrap: @escaping (M) -> BusMessage.OneOf_Payload) -> Field {
            Field(type: type, extract: { payload in
                guard let message = get(payload) else { return [] }
                var fragment = M()
                if isSet(message) { fragment[keyPath: keyPath] = message[keyPath: keyPath] }
                return [(0, try fragment.serializedData())]
            }, apply: { (payload: inout BusMessage.OneOf_Payload, disclosure: Disclosure) throws(Failure) in
                guard var message = get(payload) else { throw .unknownPath(disclosure.path) }
                guard disclosure.index == 0 else { throw .undecodableValue(path: disclosure.path) }
                let fragment = try only(M.self, keyPath, isSet: isSet, of: disclosure)
                if isSet(fragment) { message[keyPath: keyPath] = fragment[keyPath: keyPath] }
                payload = wrap(message)
            })
        }

        /// A field of each activity of an activity matrix: one fragment (an `Activity`) per activity.
        static func activity<T>(_ keyPath: WritableKeyPath<ActivityMatrix.Activity, T>) -> Field {
            Field(type: .activityMatrix, extract: { payload in
                guard case .activityMatrix(let matrix) = payload else { return [] }
                return try matrix.activities.enumerated().map { index, activity in
                    var fragment = ActivityMatrix.Activity()
                    fragment[keyPath: keyPath] = activity[keyPath: keyPath]
                    return (UInt32(index), try fragment.serializedData())
                }
            }, apply: { (payload: inout BusMessage.OneOf_Payload, disclosure: Disclosure) throws(Failure) in
                guard case .activityMatrix(var matrix) = payload else { throw .unknownPath(disclosure.path) }
                guard Int(disclosure.index) < matrix.activities.count else {
                    throw .indexOutOfRange(path: disclosure.path, index: disclosure.index)
                }
                let fragment = try only(ActivityMatrix.Activity.self, keyPath, of: disclosure)
                matrix.activities[Int(disclosure.index)][keyPath: keyPath] = fragment[keyPath: keyPath]
                payload = .activityMatrix(matrix)
            })
        }

        /// The fragment of `disclosure`: the canonical encoding of a message holding the field at
        /// `keyPath` and nothing else, so that no other value travels beside the disclosed one.
        static func only<M: SwiftProtobuf.Message, T>(_: M.Type, _ keyPath: WritableKeyPath<M, T>, isSet: (M) -> Bool = { _ in true },
                                                     of disclosure: Disclosure) throws(Failure) -> M {
            let fragment: M
            do throws(Canonical.Failure) {
                fragment = try Canonical.decode(M.self, from: disclosure.value)
            } catch .undecodable {
                throw .undecodableValue(path: disclosure.path)
            } catch {
                throw .notCanonical(path: disclosure.path)
            }
            var expected = M()
            if isSet(fragment) { expected[keyPath: keyPath] = fragment[keyPath: keyPath] }
            guard expected.isEqualTo(message: fragment) else { throw .otherFields(path: disclosure.path) }
            return fragment
        }

        static func recommendation<T>(_ keyPath: WritableKeyPath<CountryVisitRecommendation, T>,
                                      isSet: @escaping (CountryVisitRecommendation) -> Bool = { _ in true }) -> Field {
            top(.countryVisitRecommendation, keyPath, isSet: isSet, get: {
                if case .countryVisitRecommendation(let value) = $0 { value } else { nil }
            }, wrap: { .countryVisitRecommendation($0) })
        }

        static func report<T>(_ keyPath: WritableKeyPath<MissionReport, T>, isSet: @escaping (MissionReport) -> Bool = { _ in true }) -> Field {
            top(.missionReport, keyPath, isSet: isSet, get: {
                if case .missionReport(let value) = $0 { value } else { nil }
            }, wrap: { .missionReport($0) })
        }

        /// Every path of `RedactablePaths` (a test checks the two agree). Built once and never
        /// changed; its closures capture only key paths and hold no state.
        nonisolated(unsafe) static let table: [String: Field] = [
            "recommendation_text": recommendation(\.recommendationText),
            "thematic_area": recommendation(\.thematicArea),
            "technical_assistance_need": recommendation(\.technicalAssistanceNeed),
            "resolutions_assessed": recommendation(\.resolutionsAssessed),
            "priority": recommendation(\.priority),
            "visit_dates": recommendation(\.visitDates, isSet: \.hasVisitDates),
            "summary": report(\.summary),
            "findings": report(\.findings),
            "follow_up_actions": report(\.followUpActions),
            "participating_entities": report(\.participatingEntities),
            "dates": report(\.dates, isSet: \.hasDates),
            "activities.budget_usd": activity(\.budgetUsd),
            "activities.implementing_entities": activity(\.implementingEntities),
            "activities.title": activity(\.title),
        ]
    }

    /// The paths this module can disclose, per type (equal to `RedactablePaths`).
    public static func paths(for type: MessageType) -> Set<String> {
        Set(Field.table.filter { $0.value.type == type }.keys)
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
