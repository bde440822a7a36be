import Foundation
import Testing

/// The generated Swift code is committed; Schemas/generate.sh records the SHA-256 of every
/// .proto and generated file. A .proto edited without regenerating (or generated code edited by
/// hand) breaks this test.
@Suite("Generated code")
struct GeneratedCodeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func sha256(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        process.currentDirectoryURL = root
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    @Test("Committed generated code matches the .proto files (run Schemas/generate.sh after editing a schema)")
    func generatedCodeIsFresh() throws {
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Sources/CTBusSchema/Generated/SOURCES.sha256"), encoding: .utf8)
        var recorded: [String: String] = [:]
        for line in manifest.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2 else { continue }
            recorded[String(parts[1])] = String(parts[0])
        }
        let protoFolder = Self.root.appendingPathComponent("Schemas/ctbus/v1")
        let protos = try FileManager.default.contentsOfDirectory(atPath: protoFolder.path).filter { $0.hasSuffix(".proto") }
        #expect(!protos.isEmpty)
        for proto in protos {
            #expect(recorded["Schemas/ctbus/v1/\(proto)"] != nil, "\(proto) was never generated")
        }
        let generatedFolder = Self.root.appendingPathComponent("Sources/CTBusSchema/Generated")
        let generated = try FileManager.default.contentsOfDirectory(atPath: generatedFolder.path).filter { $0.hasSuffix(".pb.swift") }
        #expect(Set(generated.map { "Sources/CTBusSchema/Generated/\($0)" }) == Set(recorded.keys.filter { $0.hasSuffix(".pb.swift") }))
        for (path, hash) in recorded {
            #expect(try Self.sha256(path) == hash, "\(path) changed since Schemas/generate.sh last ran")
        }
    }
}
