import CTBusSchema
import Foundation
import SwiftProtobuf
import Testing

@Suite("Frames built from stored bytes")
struct FrameBytesTests {
    static func proof(disclosures: Int) -> Proof {
        var proof = Proof()
        proof.signature = Data(repeating: 7, count: 64)
        proof.keyID = "0123456789abcdef"
        for index in 0..<disclosures {
            var disclosure = Disclosure()
            disclosure.salt = Data(repeating: UInt8(index), count: 16)
            disclosure.path = "activities.title"
            disclosure.index = UInt32(index)
            disclosure.value = Data([0x12, 0x01, 0x41])
            proof.disclosures.append(disclosure)
            proof.digests.append(Data(repeating: UInt8(index), count: 32))
        }
        return proof
    }

    @Test("Deliver frames of signed messages are exactly what SwiftProtobuf writes", arguments: [
        (UInt64(1), [String](), 0), (UInt64(300), ["recommendation_text"], 2), (UInt64(1) << 40, ["a", "b.c"], 1),
    ])
    func sameBytes(sequence: UInt64, paths: [String], disclosures: Int) throws {
        let message = MessageValidatorTests.recommendation()
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        let envelope = try message.envelope.serializedData(options: options)
        let payload = try message.payload!.serialized()
        let proof = Self.proof(disclosures: disclosures)
        var deliver = Deliver()
        deliver.sequence = sequence
        deliver.signedEnvelope = envelope
        deliver.payload = payload
        deliver.redactedPaths = paths
        deliver.proof = proof
        var frame = Frame()
        frame.deliver = deliver
        let expected: [UInt8] = try frame.serializedBytes(options: options)
        let built = FrameBytes.deliver(sequence: sequence, envelope: envelope, payload: payload, redactedPaths: paths,
                                       proof: try proof.serializedData())
        #expect(built == expected)
        #expect(try Frame(serializedBytes: built) == frame)
    }

    @Test("Publish frames are exactly what SwiftProtobuf writes")
    func publishSameBytes() throws {
        let message = MessageValidatorTests.recommendation()
        let envelope = try message.envelope.serializedData()
        let payload = try message.payload!.serialized()
        let proof = Self.proof(disclosures: 3)
        var publish = Publish()
        publish.signedEnvelope = envelope
        publish.payload = payload
        publish.proof = proof
        var frame = Frame()
        frame.publish = publish
        let built = FrameBytes.publish(signedEnvelope: envelope, payload: payload, proof: try proof.serializedData())
        #expect(built == (try frame.serializedBytes() as [UInt8]))
        #expect(try Frame(serializedBytes: built) == frame)
    }
}
