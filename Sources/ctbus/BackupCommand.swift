import ArgumentParser
import CTBusJournal
import CTBusSchema
import Foundation

/// `ctbus backup`: an online copy of the broker's store, taken while the broker runs.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the broker's store into a new file while the broker runs (SQLite online backup), then verify the copy.",
        discussion: """
            The copy is one consistent snapshot: every publication the broker acknowledged before the backup began is in it. \
            It is written with mode 0600 and never over an existing file. Restore: stop the broker, move the store and its \
            -wal and -shm files aside, put the backup in the store's place, start the broker (deploy/README.md).
            """)

    @OptionGroup var location: BrokerStoreLocation

    @Option(name: .long, help: "The new file to write.")
    var out: String

    func run() throws {
        try runReportingErrors {
            let path = try location.path()
            try Self.report(try BrokerStore.backup(path: path, to: out), of: path)
        }
    }

    /// One line on success; a copy that does not verify is an error (exit 1), and is kept for inspection.
    static func report(_ report: BackupReport, of source: String) throws {
        guard report.check.isIntact else {
            throw StoreError(.damaged, "the backup \(report.destination) of \(source) does not verify "
                             + "(\(report.check.firstBreak.map { "entry \($0.position): \($0.reason)" } ?? report.check.damage.joined(separator: "; "))): "
                             + "the source may be damaged; run ctbus journal verify on it")
        }
        print("backup of \(source) written to \(report.destination): \(report.check.entries) entries, hash chain intact, "
              + "\(report.bytes / 1_048_576) MiB in \(String(format: "%.2f", report.seconds)) s")
    }
}

extension JournalCommand {
    /// `ctbus journal backup`: an online copy of a node's journal, taken while the node runs.
    struct Backup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a journal into a new file while its node runs (SQLite online backup), then verify the copy.",
            discussion: "Restore: stop the node, move the journal and its -wal and -shm files aside, put the backup in its place, start the node.")

        @OptionGroup var location: Location

        @Option(name: .long, help: "The new file to write.")
        var out: String

        func run() throws {
            try runReportingErrors {
                let path = try location.path()
                try BackupCommand.report(try NodeJournal.backup(path: path, to: out), of: path)
            }
        }
    }
}
