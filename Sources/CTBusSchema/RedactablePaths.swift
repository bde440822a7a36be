import Foundation
import SwiftProtobuf

/// The payload field paths a partial Member State restriction may name (FieldMask style, the
/// proto field names), per message type, each defined once here with how it is cleared (the
/// `Redactor`), read out alone (a disclosure's fragment) and put back. Identifiers the bus routes
/// or links on (visit id, mission id, project id, the Member State itself) are not redactable.
public enum RedactablePaths {
    public static func paths(for type: MessageType) -> Set<String> {
        Set(fields.filter { $0.value.type == type }.keys)
    }

    /// Every redactable path. Built once and never changed; its closures capture only key paths
    /// and hold no state.
    nonisolated(unsafe) public static let fields: [String: RedactableField] = [
        "recommendation_text": .recommendation(\.recommendationText),
        "thematic_area": .recommendation(\.thematicArea),
        "technical_assistance_need": .recommendation(\.technicalAssistanceNeed),
        "resolutions_assessed": .recommendation(\.resolutionsAssessed),
        "priority": .recommendation(\.priority),
        "visit_dates": .recommendation(\.visitDates, isSet: \.hasVisitDates, clear: { $0.clearVisitDates() }),
        "summary": .report(\.summary),
        "findings": .report(\.findings),
        "follow_up_actions": .report(\.followUpActions),
        "participating_entities": .report(\.participatingEntities),
        "dates": .report(\.dates, isSet: \.hasDates, clear: { $0.clearDates() }),
        "activities.budget_usd": .activity(\.budgetUsd),
        "activities.implementing_entities": .activity(\.implementingEntities),
        "activities.title": .activity(\.title),
    ]
}

/// One redactable path: which message type has it, and how its value is cleared, read out alone
/// as fragments (a message of the payload's type holding only the field, or one `Activity` per
/// activity for `activities.*`) and put back from one.
public struct RedactableField {
    /// Why a fragment could not be put back.
    public enum Failure: Error, Equatable {
        /// The payload is of another type.
        case otherType
        case indexOutOfRange
        case undecodable
        case notCanonical
        /// The fragment sets fields other than this one.
        case otherFields
    }

    public let type: MessageType
    /// Sets the field to its default (unset, for a message-typed field), in every activity for
    /// `activities.*`: what a copy without it holds.
    public let clear: (inout BusMessage.OneOf_Payload) -> Void
    /// The field alone: (element, fragment bytes), one for a top-level field, one per activity.
    public let fragments: (BusMessage.OneOf_Payload) throws -> [(UInt32, Data)]
    /// Puts the value of `fragment` back at `index` (0 for a top-level field). The fragment must
    /// be the canonical encoding of a message holding this field and nothing else.
    public let put: (inout BusMessage.OneOf_Payload, _ index: UInt32, _ fragment: Data) throws(Failure) -> Void

    /// A top-level field of one message type (a message-typed field counts only when set).
    static func top<M: SwiftProtobuf.Message, T>(_ type: MessageType, _ keyPath: WritableKeyPath<M, T>,
                                                isSet: @escaping (M) -> Bool, clear: @escaping (inout M) -> Void,
                                                get: @escaping (BusMessage.OneOf_Payload) -> M?,
                                                wrap: @escaping (M) -> BusMessage.OneOf_Payload) -> RedactableField {
        RedactableField(type: type, clear: { payload in
            guard var message = get(payload) else { return }
            clear(&message)
            payload = wrap(message)
        }, fragments: { payload in
            guard let message = get(payload) else { return [] }
            var fragment = M()
            if isSet(message) { fragment[keyPath: keyPath] = message[keyPath: keyPath] }
            return [(0, try fragment.serializedData())]
        }, put: { (payload: inout BusMessage.OneOf_Payload, index: UInt32, bytes: Data) throws(Failure) in
            guard var message = get(payload) else { throw .otherType }
            guard index == 0 else { throw .undecodable }
            let fragment = try only(M.self, keyPath, isSet: isSet, in: bytes)
            if isSet(fragment) { message[keyPath: keyPath] = fragment[keyPath: keyPath] }
            payload = wrap(message)
        })
    }

    /// A field of each activity of an activity matrix: one fragment (an `Activity`) per activity.
    static func activity<T>(_ keyPath: WritableKeyPath<ActivityMatrix.Activity, T>) -> RedactableField {
        let empty = ActivityMatrix.Activity()[keyPath: keyPath]
        return RedactableField(type: .activityMatrix, clear: { payload in
            guard case .activityMatrix(var matrix) = payload else { return }
            for index in matrix.activities.indices { matrix.activities[index][keyPath: keyPath] = empty }
            payload = .activityMatrix(matrix)
        }, fragments: { payload in
            guard case .activityMatrix(let matrix) = payload else { return [] }
            return try matrix.activities.enumerated().map { index, activity in
                var fragment = ActivityMatrix.Activity()
                fragment[keyPath: keyPath] = activity[keyPath: keyPath]
                return (UInt32(index), try fragment.serializedData())
            }
        }, put: { (payload: inout BusMessage.OneOf_Payload, index: UInt32, bytes: Data) throws(Failure) in
            guard case .activityMatrix(var matrix) = payload else { throw .otherType }
            guard Int(index) < matrix.activities.count else { throw .indexOutOfRange }
            let fragment = try only(ActivityMatrix.Activity.self, keyPath, isSet: { _ in true }, in: bytes)
            matrix.activities[Int(index)][keyPath: keyPath] = fragment[keyPath: keyPath]
            payload = .activityMatrix(matrix)
        })
    }

    /// The fragment in `bytes`: the canonical encoding of a message holding the field at
    /// `keyPath` and nothing else, so that no other value travels beside the disclosed one.
    static func only<M: SwiftProtobuf.Message, T>(_: M.Type, _ keyPath: WritableKeyPath<M, T>, isSet: (M) -> Bool,
                                                 in bytes: Data) throws(Failure) -> M {
        let fragment: M
        do throws(Canonical.Failure) {
            fragment = try Canonical.decode(M.self, from: bytes)
        } catch .undecodable {
            throw .undecodable
        } catch {
            throw .notCanonical
        }
        var expected = M()
        if isSet(fragment) { expected[keyPath: keyPath] = fragment[keyPath: keyPath] }
        guard expected.isEqualTo(message: fragment) else { throw .otherFields }
        return fragment
    }

    static func recommendation<T>(_ keyPath: WritableKeyPath<CountryVisitRecommendation, T>,
                                  isSet: @escaping (CountryVisitRecommendation) -> Bool = { _ in true },
                                  clear: ((inout CountryVisitRecommendation) -> Void)? = nil) -> RedactableField {
        top(.countryVisitRecommendation, keyPath, isSet: isSet, clear: clear ?? { $0[keyPath: keyPath] = CountryVisitRecommendation()[keyPath: keyPath] },
            get: { if case .countryVisitRecommendation(let value) = $0 { value } else { nil } },
            wrap: { .countryVisitRecommendation($0) })
    }

    static func report<T>(_ keyPath: WritableKeyPath<MissionReport, T>, isSet: @escaping (MissionReport) -> Bool = { _ in true },
                          clear: ((inout MissionReport) -> Void)? = nil) -> RedactableField {
        top(.missionReport, keyPath, isSet: isSet, clear: clear ?? { $0[keyPath: keyPath] = MissionReport()[keyPath: keyPath] },
            get: { if case .missionReport(let value) = $0 { value } else { nil } },
            wrap: { .missionReport($0) })
    }
}
