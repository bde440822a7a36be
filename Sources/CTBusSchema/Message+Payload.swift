import Foundation
import SwiftProtobuf

extension BusMessage.OneOf_Payload {
    /// The envelope type this payload must travel under.
    public var messageType: MessageType {
        switch self {
        case .countryVisitRecommendation: .countryVisitRecommendation
        case .missionReport: .missionReport
        case .activityMatrix: .activityMatrix
        }
    }

    /// The payload's wire bytes (deterministic serialization, so the same message always gives
    /// the same bytes).
    public func serialized() throws -> Data {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        switch self {
        case .countryVisitRecommendation(let value): return try value.serializedData(options: options)
        case .missionReport(let value): return try value.serializedData(options: options)
        case .activityMatrix(let value): return try value.serializedData(options: options)
        }
    }

    /// Decodes payload bytes as the type the envelope names. Throws `MALFORMED_FRAME` for bytes
    /// that are not a message of that type and `VALIDATION_FAILED` for an unknown type; with
    /// `canonical` (signed bytes), also `NON_CANONICAL` for bytes that are not the canonical
    /// encoding of the payload they decode to (`Canonical`).
    public static func decode(type: MessageType, bytes: Data, canonical: Bool = false) throws(BusError) -> BusMessage.OneOf_Payload {
        func read<M: SwiftProtobuf.Message>(_: M.Type) throws(Canonical.Failure) -> M {
            if canonical { return try Canonical.decode(M.self, from: bytes) }
            do { return try M(serializedBytes: bytes) } catch { throw .undecodable }
        }
        do throws(Canonical.Failure) {
            switch type {
            case .countryVisitRecommendation: return .countryVisitRecommendation(try read(CountryVisitRecommendation.self))
            case .missionReport: return .missionReport(try read(MissionReport.self))
            case .activityMatrix: return .activityMatrix(try read(ActivityMatrix.self))
            case .unspecified, .UNRECOGNIZED: break
            }
        } catch .undecodable {
            throw BusError(.malformedFrame, "payload is not a valid \(type.name) encoding")
        } catch {
            throw BusError(.nonCanonical, "payload is not the canonical encoding of the \(type.name) it decodes to")
        }
        throw BusError(.validationFailed, "envelope.type: unknown message type \(type.rawValue)")
    }
}

extension MessageType {
    /// The schema's name of the type ("COUNTRY_VISIT_RECOMMENDATION").
    public var name: String {
        switch self {
        case .unspecified: "MESSAGE_TYPE_UNSPECIFIED"
        case .countryVisitRecommendation: "COUNTRY_VISIT_RECOMMENDATION"
        case .missionReport: "MISSION_REPORT"
        case .activityMatrix: "ACTIVITY_MATRIX"
        case .UNRECOGNIZED(let value): "UNRECOGNIZED_\(value)"
        }
    }

    /// The type named by its schema name, case-insensitively, with '-' for '_' accepted.
    public init?(name: String) {
        let wanted = name.uppercased().replacingOccurrences(of: "-", with: "_")
        guard let found = MessageType.allCases.first(where: { $0.name == wanted && $0 != .unspecified }) else {
            return nil
        }
        self = found
    }
}

extension Classification {
    /// The schema's name of the level ("STRICTLY_CONFIDENTIAL").
    public var name: String {
        switch self {
        case .unspecified: "CLASSIFICATION_UNSPECIFIED"
        case .unclassified: "UNCLASSIFIED"
        case .confidential: "CONFIDENTIAL"
        case .strictlyConfidential: "STRICTLY_CONFIDENTIAL"
        case .UNRECOGNIZED(let value): "UNRECOGNIZED_\(value)"
        }
    }

    public init?(name: String) {
        let wanted = name.uppercased().replacingOccurrences(of: "-", with: "_")
        guard let found = Classification.allCases.first(where: { $0.name == wanted && $0 != .unspecified }) else {
            return nil
        }
        self = found
    }
}

extension Reference {
    /// A reference to the message `id` with `relation` (ANSWERS, REPORTS_ON, ...).
    public init(to id: String, _ relation: Relation) {
        self.init()
        messageID = id
        self.relation = relation
    }
}

extension Reference.Relation {
    /// The schema's name of the relation ("ANSWERS").
    public var name: String {
        switch self {
        case .unspecified: "RELATION_UNSPECIFIED"
        case .answers: "ANSWERS"
        case .reportsOn: "REPORTS_ON"
        case .followsUp: "FOLLOWS_UP"
        case .supersedes: "SUPERSEDES"
        case .UNRECOGNIZED(let value): "UNRECOGNIZED_\(value)"
        }
    }

    public init?(name: String) {
        guard let found = Reference.Relation.allCases.first(where: { $0.name == name }) else { return nil }
        self = found
    }
}

extension TlpLabel {
    /// The TLP 2.0 label as people write it ("AMBER+STRICT").
    public var label: String {
        switch self {
        case .tlpClear: "CLEAR"
        case .tlpGreen: "GREEN"
        case .tlpAmber: "AMBER"
        case .tlpAmberStrict: "AMBER+STRICT"
        case .tlpRed: "RED"
        case .tlpUnspecified, .UNRECOGNIZED: "-"
        }
    }
}
