import CTBusSchema
import Foundation
import SwiftProtobuf
import Testing

@Suite("Frames built from stored bytes")
struct FrameBytesTests {
    @Test("Deliver frames are exactly what SwiftProtobuf writes", arguments: [
        (UInt64(1), [String]()), (UInt64(300), ["recommendation_text"]), (UInt64(1) << 40, ["a", "b.c"]),
    ])
    func sameBytes(sequence: UInt64, paths: [String]) throws {
        let message = MessageValidatorTests.recommendation()
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        let envelope = try message.envelope.serializedData(options: options)
        let payload = try message.payload!.serialized()
        var deliver = Deliver()
        deliver.sequence = sequence
        deliver.envelope = message.envelope
        deliver.payload = payload
        deliver.redactedPaths = paths
        var frame = Frame()
        frame.deliver = deliver
        let expected: [UInt8] = try frame.serializedBytes(options: options)
        let built = FrameBytes.deliver(sequence: sequence, envelope: envelope, payload: payload, redactedPaths: paths)
        #expect(built == expected)
        #expect(try Frame(serializedBytes: built) == frame)
    }

    @Test("Publish frames are exactly what SwiftProtobuf writes")
    func publishSameBytes() throws {
        let message = MessageValidatorTests.recommendation()
        let envelope = try message.envelope.serializedData()
        let payload = try message.payload!.serialized()
        var publish = Publish()
        publish.envelope = message.envelope
        publish.payload = payload
        var frame = Frame()
        frame.publish = publish
        let built = FrameBytes.publish(envelope: envelope, payload: payload)
        #expect(built == (try frame.serializedBytes() as [UInt8]))
        #expect(try Frame(serializedBytes: built) == frame)
    }
}
