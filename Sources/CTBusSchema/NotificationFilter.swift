import Foundation

/// Which arriving messages a subscription is told of: each list that is not empty must hold
/// one of the message's values (its type, a Member State or region it is about, a theme it
/// carries, its classification); empty lists let everything through. Judged on the hashed
/// envelope and the payload as journaled, nothing else.
public struct NotificationFilter: Codable, Equatable, Hashable, Sendable {
    /// Message type names (`COUNTRY_VISIT_RECOMMENDATION`).
    public var types: [String]
    /// ISO 3166-1 alpha-3 codes and region codes.
    public var memberStates: [String]
    /// Themes, as the registry and the messages write them.
    public var themes: [String]
    /// Classification names (`UNCLASSIFIED`).
    public var classifications: [String]

    public init(types: [String] = [], memberStates: [String] = [], themes: [String] = [], classifications: [String] = []) {
        self.types = types
        self.memberStates = memberStates
        self.themes = themes
        self.classifications = classifications
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        types = try container.decodeIfPresent([String].self, forKey: .types) ?? []
        memberStates = try container.decodeIfPresent([String].self, forKey: .memberStates) ?? []
        themes = try container.decodeIfPresent([String].self, forKey: .themes) ?? []
        classifications = try container.decodeIfPresent([String].self, forKey: .classifications) ?? []
    }

    /// What a filter is judged on, read from one message.
    public struct Facts: Equatable, Sendable {
        public let type: String
        public let classification: String
        public let memberStates: Set<String>
        public let themes: Set<String>

        /// The facts of a journaled message: its envelope's type, classification and subject,
        /// and for an activity matrix the States and regions its activities name; the themes are
        /// the envelope's tags and the payload's thematic areas (`themes`).
        public init(envelope: Envelope, payload: BusMessage.OneOf_Payload?, themes: [String]) {
            type = envelope.type.name
            classification = envelope.handling.classification.name
            var states: Set<String> = envelope.subject.isEmpty ? [] : [envelope.subject]
            if case .activityMatrix(let matrix)? = payload {
                for activity in matrix.activities {
                    states.formUnion(activity.memberStates)
                    if !activity.region.isEmpty { states.insert(activity.region) }
                }
            }
            memberStates = states
            self.themes = Set(themes.map { $0.lowercased() })
        }
    }

    /// Whether the payload must be decoded to judge a message (themes, or the States of a
    /// matrix's activities); the envelope alone answers the rest.
    public var needsPayload: Bool { !memberStates.isEmpty || !themes.isEmpty }

    public func matches(_ facts: Facts) -> Bool {
        (types.isEmpty || types.contains(facts.type))
            && (classifications.isEmpty || classifications.contains(facts.classification))
            && (memberStates.isEmpty || memberStates.contains { facts.memberStates.contains($0) })
            && (themes.isEmpty || themes.contains { facts.themes.contains($0.lowercased()) })
    }

    /// The filter with every name in the form the messages use (types and classifications in
    /// upper case, themes as `knownThemes` spells them), or the first name nobody would match:
    /// an unknown type, classification, State or region, or a theme neither the registry nor
    /// the journal knows.
    public func validated(knownThemes: [String]) throws(NotificationFilterError) -> NotificationFilter {
        var result = NotificationFilter()
        for name in types {
            guard let type = MessageType(name: name) else {
                throw NotificationFilterError(field: "types", value: name, expected: MessageType.allCases.filter { $0 != .unspecified }.map(\.name))
            }
            result.types.append(type.name)
        }
        for name in classifications {
            guard let level = Classification(name: name) else {
                throw NotificationFilterError(field: "classifications", value: name,
                                              expected: Classification.allCases.filter { $0 != .unspecified }.map(\.name))
            }
            result.classifications.append(level.name)
        }
        for name in memberStates {
            let code = name.uppercased()
            guard Geography.isCountryCode(code) || Geography.isRegionCode(code) else {
                throw NotificationFilterError(field: "memberStates", value: name, expected: ["an ISO 3166-1 alpha-3 code (KEN) or a region code"])
            }
            result.memberStates.append(code)
        }
        for name in themes {
            let wanted = name.trimmingCharacters(in: .whitespaces).lowercased()
            guard let known = knownThemes.first(where: { $0.lowercased() == wanted }) else {
                throw NotificationFilterError(field: "themes", value: name, expected: knownThemes.isEmpty ? ["a theme of the registry"] : knownThemes)
            }
            result.themes.append(known)
        }
        func unique(_ names: [String]) -> [String] {
            var seen = Set<String>()
            return names.filter { seen.insert($0).inserted }
        }
        return NotificationFilter(types: unique(result.types), memberStates: unique(result.memberStates),
                                  themes: unique(result.themes), classifications: unique(result.classifications))
    }
}

/// A name in a notification filter that no message would carry.
public struct NotificationFilterError: Error, Equatable, CustomStringConvertible, Sendable {
    public let field: String
    public let value: String
    public let expected: [String]

    public var description: String {
        let shown = value.count > 64 ? String(value.prefix(64)) + "…" : value
        let choices = expected.count > 12 ? expected.prefix(12).joined(separator: ", ") + ", …" : expected.joined(separator: ", ")
        return "\(field): \"\(shown)\" is unknown; expected \(choices)"
    }
}
