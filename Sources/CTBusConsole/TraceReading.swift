import CTBusTrace
import Foundation

/// A traceability line in the words the trace page and the country files share.
extension TraceReport.Recommendation {
    /// A link to the recommendation, named by its text (or its visit, when the text is withheld).
    var link: String {
        HTML.link(PageLayout.messageHref(id),
                  text == Traceability.withheld ? "Recommendation of visit \(visitId) (text withheld)" : Reading.shortened(text))
    }

    /// "answered" or "unanswered" while it counts, otherwise "revoked" or "expired".
    var trace: String { state == "active" ? (covered ? "answered" : "unanswered") : state }

    var priorityWords: String { priority == Traceability.withheld ? "withheld" : priority.lowercased() }

    var followUpWords: String { TraceReport.words(followUp) }

    /// The activities answering it, each a link to its matrix named by its title (its project
    /// when the title is withheld) and its status, one a line.
    var answeredByLinks: String {
        answeredBy.map { activity in
            let name = activity.title.isEmpty || activity.title == Traceability.withheld ? activity.projectId : activity.title
            return HTML.link(PageLayout.messageHref(activity.matrixId), "\(name) (\(TraceReport.words(activity.status)))")
        }.joined(separator: "<br>")
    }
}

extension TraceReport {
    /// IN_PROGRESS as "in progress".
    static func words(_ label: String) -> String { label.replacingOccurrences(of: "_", with: " ").lowercased() }
}
