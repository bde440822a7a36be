import CTBusJournal
import CTBusNotify
import CTBusPolicy
import CTBusSchema
import Foundation

/// What the console lends the notifier and the subscription forms.
public enum NotificationWords {
    /// Messages in the console's words: its summaries, type names and times.
    public static let wording = NotificationWording(summary: { Reading.summary($0, withheld: $1) }, typeName: { Reading.typeName($0) },
                                                    time: { Reading.time($0) })

    /// The themes a filter may name: those the registry's nodes follow and those the journal's
    /// messages marked at most `ceiling` carry (the choices a person at that clearance sees).
    public static func knownThemes(registry: NodeRegistry?, journal: NodeJournal, atMost ceiling: Classification) -> [String] {
        var themes = Set(registry?.profiles.flatMap(\.themes) ?? [])
        themes.formUnion((try? journal.search.choices(atMost: ceiling).themes) ?? [])
        return themes.sorted { ($0.lowercased(), $0) < ($1.lowercased(), $1) }
    }
}
