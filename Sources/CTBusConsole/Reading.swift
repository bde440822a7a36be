import CTBusSchema
import Foundation

/// A message in the words people read it in: a one-line summary that tells messages apart, and
/// its content laid out for reading (the text first, then what it asks, then its context), with
/// the compose form's labels, Yes/No, dates written out and enumerations in words. Everything here
/// is read from the journaled payload, the hashed bytes; a part withheld at a Member State's
/// request never arrived and is named as withheld, never guessed.
enum Reading {
    /// At most this many characters in a summary, cut at a word.
    static let summaryLength = 140

    /// What the message says, in a line: a recommendation's text, a mission's id and summary, a
    /// matrix's period and first activities. Falls back on what identifies it when the text was
    /// withheld (`withheld`: the payload paths withheld from this node's copy).
    static func summary(_ payload: BusMessage.OneOf_Payload?, withheld: [String] = []) -> String {
        switch payload {
        case .countryVisitRecommendation(let value):
            guard value.recommendationText.isEmpty else { return shortened(value.recommendationText) }
            let theme = value.thematicArea.isEmpty ? "" : " on \(value.thematicArea)"
            let why = withheld.contains("recommendation_text") ? " (text withheld at a Member State's request)" : ""
            return shortened("Recommendation of visit \(value.visitID)\(theme)\(why)")
        case .missionReport(let value):
            let place = value.memberState.isEmpty ? value.region : value.memberState
            let lead = [value.missionID, kind(value.kind), place].filter { !$0.isEmpty }.joined(separator: ", ")
            return shortened(value.summary.isEmpty ? lead : "\(lead): \(value.summary)")
        case .activityMatrix(let value):
            let count = value.activities.count == 1 ? "1 activity" : "\(value.activities.count) activities"
            let titles = value.activities.map(\.title).filter { !$0.isEmpty }
            return shortened("\(count), \(range(value.reportingPeriod))" + (titles.isEmpty ? "" : ": " + titles.joined(separator: "; ")))
        case nil:
            return "(no content)"
        }
    }

    /// `text` on one line, cut at a word so that it holds at most `summaryLength` characters.
    static func shortened(_ text: String, to length: Int = summaryLength) -> String {
        let line = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        guard line.count > length else { return line }
        var cut = String(line.prefix(length - 1))
        if let space = cut.lastIndex(of: " "), cut.distance(from: cut.startIndex, to: space) > length / 2 { cut = String(cut[..<space]) }
        return cut + "…"
    }

    /// A message's handling, as its page and its review show it: classification, releasability,
    /// TLP, sealing, declassification, and a Member State restriction with the parts it covers
    /// (by the compose form's labels), who may see them and when it was asked for.
    static func marks(_ envelope: Envelope) -> [(String, String)] {
        let handling = envelope.handling
        var marks = [("Classification", classification(handling.classification.name)),
                     ("Releasable to", handling.releasability.isEmpty ? "every entitled node" : handling.releasability.joined(separator: ", "))]
        if handling.tlp != .tlpUnspecified { marks.append(("TLP", tlp(handling.tlp))) }
        if handling.sealed { marks.append(("Sealed", "Yes: only its recipients can read it; the broker cannot")) }
        if !handling.declassifyOn.isEmpty { marks.append(("Declassify on", date(handling.declassifyOn))) }
        if handling.hasMemberStateRestriction {
            let restriction = handling.memberStateRestriction
            let scope = restriction.scope == .whole ? "the whole message"
                : "parts: " + restriction.fieldPaths.map { MessageContent.label(envelope.type, $0) }.joined(separator: ", ")
            marks.append(("Member State restriction", "\(restriction.state) asked on \(date(restriction.requestedOn)) to restrict \(scope); "
                          + "may see it: " + (restriction.allowedNodes.isEmpty ? "no node" : restriction.allowedNodes.joined(separator: ", "))))
        }
        return marks
    }

    // MARK: Words for values

    static func typeName(_ type: MessageType) -> String { ComposeForm.title(type) }

    static func typeName(_ name: String) -> String { MessageType(name: name).map(typeName) ?? name }

    /// "STRICTLY CONFIDENTIAL", as the marking reads.
    static func classification(_ name: String) -> String { name.replacingOccurrences(of: "_", with: " ") }

    /// "TLP:AMBER+STRICT", as TLP 2.0 writes its labels.
    static func tlp(_ label: TlpLabel) -> String { "TLP:\(label.label)" }

    static func yesNo(_ value: Bool) -> String { value ? "Yes" : "No" }

    /// "2 November 2026" for "2026-11-02"; anything else as it is.
    static func date(_ text: String) -> String {
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, (1...12).contains(parts[1]), (1...31).contains(parts[2]) else { return text }
        return "\(parts[2]) \(months[parts[1] - 1]) \(parts[0])"
    }

    /// "2 to 5 November 2026", "30 November to 2 December 2026", "from 2 November 2026".
    static func range(_ range: DateRange) -> String {
        switch (range.start.isEmpty, range.end.isEmpty) {
        case (true, true): return "no dates"
        case (false, true): return "from \(date(range.start))"
        case (true, false): return "until \(date(range.end))"
        case (false, false):
            let (start, end) = (date(range.start), date(range.end))
            guard start != end else { return start }
            let startWords = start.split(separator: " "), endWords = end.split(separator: " ")
            if startWords.count == 3, endWords.count == 3, startWords[2] == endWords[2] {
                return startWords[1] == endWords[1] ? "\(startWords[0]) to \(end)" : "\(startWords[0]) \(startWords[1]) to \(end)"
            }
            return "\(start) to \(end)"
        }
    }

    /// "2 November 2026, 14:05 UTC" (`UTCTime`: pages are built on several threads).
    static func time(_ moment: Date) -> String {
        let f = UTCTime.fields(moment)
        let (hour, minute) = (f.hour < 10 ? "0\(f.hour)" : "\(f.hour)", f.minute < 10 ? "0\(f.minute)" : "\(f.minute)")
        return "\(f.day) \(months[f.month - 1]) \(f.year), \(hour):\(minute) UTC"
    }

    /// 1204 as "1,204".
    static func grouped<Number: BinaryInteger>(_ value: Number) -> String {
        let digits = String(value.magnitude)
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return (value < 0 ? "-" : "") + result
    }

    private static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                                 "November", "December"]

    static func priority(_ value: Priority) -> String {
        switch value {
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        default: "not given"
        }
    }

    static func followUp(_ value: CountryVisitRecommendation.FollowUpStatus) -> String {
        switch value {
        case .followUpOpen: "open"
        case .followUpInProgress: "in progress"
        case .followUpImplemented: "implemented"
        case .followUpClosed: "closed"
        default: "not given"
        }
    }

    static func kind(_ value: MissionReport.Kind) -> String {
        switch value {
        case .assessmentVisit: "assessment visit"
        case .followUpVisit: "follow-up visit"
        case .jointVisit: "joint visit"
        case .workshop: "workshop"
        default: ""
        }
    }

    static func status(_ value: ActivityMatrix.Status) -> String {
        switch value {
        case .planned: "planned"
        case .ongoing: "ongoing"
        case .completed: "completed"
        case .suspended: "suspended"
        default: "not given"
        }
    }

    static func pillar(_ value: StrategyPillar) -> String {
        ComposeForm.pillars.first { $0.value == "\(value.rawValue)" }?.label ?? "not given"
    }

    /// "1373, 2396" read as "resolutions 1373 and 2396".
    static func resolutions(_ numbers: [UInt32]) -> String {
        let names = numbers.map { "\($0)" }
        switch names.count {
        case 0: return "none given"
        case 1: return "resolution \(names[0])"
        default: return "resolutions " + names.dropLast().joined(separator: ", ") + " and " + names.last!
        }
    }

    static func money(_ dollars: Int64) -> String { "US$ " + grouped(dollars) }
}
