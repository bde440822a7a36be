import CTBusBench
import Foundation

// ctbus-steps STEP [COUNT] [BODY-BYTES]: runs one `BenchStep` COUNT times (default 200) on
// messages of BODY-BYTES of text (default 1,024), in this thread, and prints one line to stderr.
let usage = "usage: ctbus-steps STEP [COUNT] [BODY-BYTES]; STEP is one of "
    + BenchStep.allCases.map(\.rawValue).joined(separator: ", ")
var arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.popFirst(), let step = BenchStep(rawValue: name) else {
    FileHandle.standardError.write(Data("\(usage)\n".utf8))
    exit(2)
}
let numbers = arguments.map { Int($0) }
guard arguments.count <= 2, numbers.allSatisfy({ ($0 ?? 0) > 0 }) else {
    FileHandle.standardError.write(Data("COUNT and BODY-BYTES are positive whole numbers; \(usage)\n".utf8))
    exit(2)
}
let count = numbers.first.flatMap { $0 } ?? 200
let bodyBytes = numbers.dropFirst().first.flatMap { $0 } ?? 1_024
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ctbus-steps-\(UUID().uuidString)")
do {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try BenchStep.run(step, count: count, bodyBytes: bodyBytes, folder: folder)
    FileHandle.standardError.write(Data("ctbus-steps: \(step.rawValue), \(count) messages of \(bodyBytes) B\n".utf8))
} catch {
    FileHandle.standardError.write(Data("ctbus-steps: \(step.rawValue) failed: \(error)\n".utf8))
    exit(1)
}
