@testable import CTBusBroker
@testable import CTBusJournal
import CTBusLocal
import CTBusPolicy
import CTBusSchema
import Foundation
import SwiftProtobuf
import Testing

/// PROTOCOL.md 5.2 (the order of the checks), 5.3 (acknowledged only once stored, the hold,
/// idempotency) and 5.5 (revocations) against `BrokerCore`.
@Suite("Broker publication rules (PROTOCOL.md 5.2, 5.3, 5.5)")
struct BrokerPublicationTableTests {
    static let cted: BrokerCore.Connection = [0, 0, 0, 1]
    static let oct: BrokerCore.Connection = [0, 0, 0, 2]

    /// A Publish changed in one way, and the first check of 5.2 it fails.
    struct Row: CustomTestStringConvertible, Sendable {
        let step: String
        let expected: ErrorCode
        let publish: @Sendable () throws -> Frame.OneOf_Kind
        var testDescription: String { "step \(step): \(expected.name)" }
    }

    static func publish(_ message: BusMessage = SampleMessages.recommendation(), by node: String = "cted",
                        _ change: (inout Publish) throws -> Void = { _ in }) throws -> Frame.OneOf_Kind {
        guard case .publish(var publish) = try BrokerScene.publish(message, by: node) else { fatalError() }
        try change(&publish)
        return .publish(publish)
    }

    static let rows: [Row] = [
        Row(step: "2 (over maxMessageBytes)", expected: .messageTooLarge) {
            try publish(SampleMessages.recommendation(text: String(repeating: "x", count: 1_100_000)))
        },
        Row(step: "3 (a version 1 envelope)", expected: .malformedFrame) {
            try publish { $0.envelope = SampleMessages.recommendation().envelope }
        },
        Row(step: "3 (no proof)", expected: .signatureInvalid) { try publish { $0.clearProof() } },
        Row(step: "4 (signed_envelope not an Envelope)", expected: .malformedFrame) {
            try publish { $0.signedEnvelope = Data([0xff, 0xff, 0xff]) }
        },
        Row(step: "5 (another originator)", expected: .notPermitted) {
            var message = SampleMessages.recommendation()
            message.envelope.originator = "oct"
            let signed = try SignedPublication.sign(message.envelope, payload: message.payload!, with: BrokerScene.signingKey("cted"))
            var publish = Publish()
            publish.signedEnvelope = signed.signedEnvelope
            publish.payload = signed.payload
            publish.proof = signed.proof
            return .publish(publish)
        },
        Row(step: "6 (unknown key id)", expected: .unknownSigningKey) { try publish { $0.proof.keyID = "0000000000000000" } },
        Row(step: "6 (signature does not verify)", expected: .signatureInvalid) {
            try publish { $0.proof.signature = Data(repeating: 7, count: 64) }
        },
        Row(step: "6 (payload changed after signing)", expected: .signatureInvalid) { try publish { $0.payload = Data([0xff, 0xff]) } },
        Row(step: "9 (role may not publish the type)", expected: .notPermitted) { try publish(SampleMessages.activityMatrix(answering: [MessageID.generate()]), by: "cted") },
    ]

    @Test("5.2: a publication failing a check is answered with that check's code, never stored, and the refusal counted", arguments: rows)
    func refused(row: Row) throws {
        var scene = try BrokerScene()
        scene.open("cted", on: Self.cted)
        scene.requests = []
        let outcome = scene.batch([(try row.publish(), "cted", Self.cted)])
        #expect(outcome.errors(to: Self.cted) == [row.expected])
        #expect(!scene.requests.contains { if case .store = $0 { true } else { false } })
        #expect(outcome.counts.contains(.refused(row.expected)))
    }

    @Test("5.3: PublishAck only once the transaction committed, with the recipient count; the refusals of the policy counted")
    func acknowledgedWhenStored() throws {
        var scene = try BrokerScene()
        scene.open("cted", on: Self.cted)
        var publishing = scene.receive(try Self.publish(SampleMessages.recommendation(handling: SampleMessages.handling(.confidential))),
                                       from: "cted", on: Self.cted)
        #expect(publishing.sent.isEmpty, "nothing is answered before the batch is stored")
        let step = scene.core.drained(at: scene.now)
        #expect(step.effects.isEmpty)
        guard case .store(let publications, _)? = step.request else { Issue.record("no store"); return }
        #expect(publications.map(\.recipients.count) == [2], "oct and wg-border; not wg-rights (clearance) nor the originator")
        publishing = scene.perform(step)
        guard case .publishAck(let ack)? = publishing.frames(to: Self.cted).first else { Issue.record("no PublishAck"); return }
        #expect(ack.recipientCount == 2 && ack.originator == "cted")
        #expect(publishing.counts.contains(.accepted))
        #expect(publishing.counts.contains(.policyRefusal(node: "wg-rights", rule: .clearance)))
    }

    @Test("5.3: a failed commit answers every publication of the batch INTERNAL and holds the sessions; a held session's Publish is refused unstored until Hello")
    func hold() throws {
        var scene = try BrokerScene()
        scene.open("cted", on: Self.cted)
        scene.store.failStore = true
        let failed = scene.batch([(try Self.publish(), "cted", Self.cted), (try Self.publish(), "cted", Self.cted)])
        #expect(failed.errors(to: Self.cted) == [.internal, .internal])
        scene.store.failStore = false
        scene.requests = []
        let held = scene.batch([(try Self.publish(), "cted", Self.cted)])
        #expect(held.errors(to: Self.cted) == [.internal] && scene.requests.isEmpty)
        scene.open("cted", on: Self.cted)
        let resumed = scene.batch([(try Self.publish(), "cted", Self.cted)])
        #expect(resumed.frames(to: Self.cted).map(\.name) == ["PublishAck"])
    }

    @Test("5.3: an identical resend is acknowledged with the count of its first storing; a different message under a stored id is CONFLICTING_DUPLICATE",
          arguments: [(StoreOutcome.alreadyStored(recipientCount: 4), "PublishAck"), (.conflict, "ErrorReport")])
    func idempotency(outcome storeOutcome: StoreOutcome, answer: String) throws {
        var scene = try BrokerScene()
        scene.open("cted", on: Self.cted)
        _ = scene.receive(try Self.publish(), from: "cted", on: Self.cted)
        let step = scene.core.drained(at: scene.now)
        let outcome = scene.perform(scene.core.completed(.stored(.success([storeOutcome])), at: scene.now))
        #expect(step.request != nil)
        #expect(outcome.frames(to: Self.cted).map(\.name) == [answer])
        if case .publishAck(let ack)? = outcome.frames(to: Self.cted).first { #expect(ack.recipientCount == 4) }
        if case .error(let report)? = outcome.frames(to: Self.cted).first { #expect(report.code == .conflictingDuplicate) }
    }

    @Test("5.5: a batch's revocations are handled after its publications are stored, so one published and revoked together is known")
    func revokeAfterPublications() throws {
        var scene = try BrokerScene()
        scene.open("cted", on: Self.cted)
        let message = SampleMessages.recommendation()
        scene.requests = []
        _ = scene.batch([(try BrokerScene.revoke(message.envelope.messageID), "cted", Self.cted),
                         (try BrokerScene.publish(message), "cted", Self.cted)])
        let kinds = scene.requests.compactMap { request -> String? in
            switch request {
            case .store: "store"
            case .revoke: "revoke"
            default: nil
            }
        }
        #expect(kinds == ["store", "revoke"])
    }

    @Test("5.5: each outcome of a revocation has its answer",
          arguments: [(RevokeOutcome.revoked(recipients: 3), "RevokeAck 3"), (.alreadyRevoked, "RevokeAck 0"),
                      (.notFound, "VALIDATION_FAILED"), (.notOriginator, "NOT_PERMITTED")])
    func revocationOutcomes(outcome: RevokeOutcome, answer: String) throws {
        var scene = try BrokerScene()
        scene.open("cted", on: Self.cted)
        scene.store.revokeOutcome = outcome
        let answered = scene.batch([(try BrokerScene.revoke(MessageID.generate()), "cted", Self.cted)])
        let text = answered.frames(to: Self.cted).map { kind -> String in
            switch kind {
            case .revokeAck(let ack): "RevokeAck \(ack.recipientCount)"
            case .error(let report): report.code.name
            default: kind.name
            }
        }
        #expect(text == [answer])
    }

    @Test("5.5: a revocation that does not check out with the originator's key is refused without reaching the store",
          arguments: [("signed by another node's key", ErrorCode.unknownSigningKey), ("signature changed", .signatureInvalid)])
    func revocationSignature(change: String, code: ErrorCode) throws {
        var scene = try BrokerScene()
        scene.open("cted", on: Self.cted)
        scene.requests = []
        var revoke = try BrokerScene.revoke(MessageID.generate(), by: "cted", signedBy: change == "signature changed" ? "cted" : "oct")
        if case .revoke(var frame) = revoke, change == "signature changed" {
            frame.signature = Data(repeating: 9, count: 64)
            revoke = .revoke(frame)
        }
        let answered = scene.batch([(revoke, "cted", Self.cted)])
        #expect(answered.errors(to: Self.cted) == [code])
        #expect(scene.requests.isEmpty)
    }
}
