import ArgumentParser

@main
struct CTBusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctbus",
        abstract: "The coordination and information-sharing message bus of the UN counter-terrorism bodies.",
        subcommands: [
            BrokerCommand.self, NodeCommand.self, PublishCommand.self, RevokeCommand.self, ValidateCommand.self,
            JournalCommand.self, TraceCommand.self, ConsoleCommand.self, ConsoleUserCommand.self, AuditCommand.self, StatusCommand.self, BackupCommand.self, KeygenCommand.self, RegistryCommand.self, DemoCommand.self, BenchCommand.self,
        ]
    )
}
