/// The payload field paths a partial Member State restriction may name (FieldMask style, the
/// proto field names), per message type. Identifiers the bus routes or links on (visit id,
/// mission id, project id, the Member State itself) are not redactable.
public enum RedactablePaths {
    public static func paths(for type: MessageType) -> Set<String> {
        switch type {
        case .countryVisitRecommendation:
            ["recommendation_text", "thematic_area", "technical_assistance_need", "resolutions_assessed",
             "priority", "visit_dates"]
        case .missionReport:
            ["summary", "findings", "follow_up_actions", "participating_entities", "dates"]
        case .activityMatrix:
            ["activities.budget_usd", "activities.implementing_entities", "activities.title"]
        default:
            []
        }
    }
}
