import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

// Writes seed frames for the fuzzer: a signed Publish frame for each example message in
// Schemas/examples (signed with the fuzzer's fixed key of its originator), plus the other
// commands. Usage: CTBusFuzzSeeds EXAMPLES-FOLDER CORPUS-FOLDER
let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: CTBusFuzzSeeds EXAMPLES-FOLDER CORPUS-FOLDER\n".utf8))
    exit(2)
}
/// The fuzzer's node order (FuzzRegistry.nodes) and its fixed keys: byte i + 1, 32 times.
let nodeOrder = ["oct", "cted", "wg-border", "wg-rights"]
let examples = URL(fileURLWithPath: arguments[1])
let corpus = URL(fileURLWithPath: arguments[2])
try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
var frames: [String: Frame] = [:]
for file in try FileManager.default.contentsOfDirectory(atPath: examples.path) where file.hasSuffix(".json") {
    var message = try BusMessage(jsonUTF8Data: Data(contentsOf: examples.appendingPathComponent(file)))
    // The examples name no originator: the node whose role publishes the type.
    message.envelope.originator = message.envelope.type == .activityMatrix ? "oct" : "cted"
    let index = nodeOrder.firstIndex(of: message.envelope.originator)!
    let key = try Curve25519.Signing.PrivateKey(rawRepresentation: Data(repeating: UInt8(index + 1), count: 32))
    let signed = try SignedPublication.sign(message.envelope, payload: message.payload!, with: key)
    var publish = Publish()
    publish.signedEnvelope = signed.signedEnvelope
    publish.payload = signed.payload
    publish.proof = signed.proof
    var frame = Frame()
    frame.publish = publish
    frames["publish-\(file)"] = frame
}
var hello = Frame()
hello.hello.protocolVersion = 2
frames["hello"] = hello
var ack = Frame()
ack.deliveryAck.throughSequence = 7
frames["delivery-ack"] = ack
for (name, frame) in frames {
    try frame.serializedData().write(to: corpus.appendingPathComponent("\(name).bin"))
}
print("wrote \(frames.count) seeds to \(corpus.path)")
