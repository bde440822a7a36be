import Foundation

/// Removes the fields a partial Member State restriction names (see `RedactablePaths`) from a
/// payload: the copy the broker stores for nodes outside the restriction's allowed list.
public enum Redactor {
    /// The payload without the fields at `paths`. Unknown paths cannot reach here: the
    /// validator refuses them at publication.
    public static func redact(_ payload: BusMessage.OneOf_Payload, paths: [String]) -> BusMessage.OneOf_Payload {
        let paths = Set(paths)
        switch payload {
        case .countryVisitRecommendation(var value):
            if paths.contains("recommendation_text") { value.recommendationText = "" }
            if paths.contains("thematic_area") { value.thematicArea = "" }
            if paths.contains("technical_assistance_need") { value.technicalAssistanceNeed = "" }
            if paths.contains("resolutions_assessed") { value.resolutionsAssessed = [] }
            if paths.contains("priority") { value.priority = .unspecified }
            if paths.contains("visit_dates") { value.clearVisitDates() }
            return .countryVisitRecommendation(value)
        case .missionReport(var value):
            if paths.contains("summary") { value.summary = "" }
            if paths.contains("findings") { value.findings = [] }
            if paths.contains("follow_up_actions") { value.followUpActions = [] }
            if paths.contains("participating_entities") { value.participatingEntities = [] }
            if paths.contains("dates") { value.clearDates() }
            return .missionReport(value)
        case .activityMatrix(var value):
            for index in value.activities.indices {
                if paths.contains("activities.budget_usd") { value.activities[index].budgetUsd = 0 }
                if paths.contains("activities.implementing_entities") { value.activities[index].implementingEntities = [] }
                if paths.contains("activities.title") { value.activities[index].title = "" }
            }
            return .activityMatrix(value)
        }
    }
}
