import ArgumentParser

@main
struct CTBusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctbus",
        abstract: "The coordination and information-sharing message bus of the UN counter-terrorism bodies.",
        subcommands: [
            BrokerCommand.self, NodeCommand.self, PublishCommand.self, RevokeCommand.self, ValidateCommand.self,
            JournalCommand.self, TraceCommand.self, ConsoleCommand.self, ConsoleUserCommand.self, AuditCommand.self, StatusCommand.self, BackupCommand.self, KeygenCommand.self, RegistryCommand.self, DemoCommand.self, BenchCommand.self,
        ]
    )

    /// The daemons (and the demo that keeps running) take their signals with `sigwait`: the
    /// signals are blocked here, before any other thread exists, so every thread inherits the
    /// mask (see `SignalService`).
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        if let command = arguments.first,
           ["broker", "node", "console"].contains(command) || (command == "demo" && arguments.contains("--keep-running")) {
            blockTerminationSignals()
            forwardSignals()
        }
        await main(nil)
    }
}
