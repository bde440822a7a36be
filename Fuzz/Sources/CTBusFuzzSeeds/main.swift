import CTBusSchema
import Foundation
import SwiftProtobuf

// Writes seed frames for the fuzzer: a Publish frame for each example message in
// Schemas/examples, plus the other commands. Usage: CTBusFuzzSeeds EXAMPLES-FOLDER CORPUS-FOLDER
let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: CTBusFuzzSeeds EXAMPLES-FOLDER CORPUS-FOLDER\n".utf8))
    exit(2)
}
let examples = URL(fileURLWithPath: arguments[1])
let corpus = URL(fileURLWithPath: arguments[2])
try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
var frames: [String: Frame] = [:]
for file in try FileManager.default.contentsOfDirectory(atPath: examples.path) where file.hasSuffix(".json") {
    let message = try BusMessage(jsonUTF8Data: Data(contentsOf: examples.appendingPathComponent(file)))
    var publish = Publish()
    publish.envelope = message.envelope
    publish.payload = try message.payload!.serialized()
    var frame = Frame()
    frame.publish = publish
    frames["publish-\(file)"] = frame
}
var hello = Frame()
hello.hello.protocolVersion = 1
frames["hello"] = hello
var ack = Frame()
ack.deliveryAck.throughSequence = 7
frames["delivery-ack"] = ack
for (name, frame) in frames {
    try frame.serializedData().write(to: corpus.appendingPathComponent("\(name).bin"))
}
print("wrote \(frames.count) seeds to \(corpus.path)")
