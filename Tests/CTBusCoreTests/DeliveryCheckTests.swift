import CTBusLocal
@testable import CTBusNode
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import Logging
import SwiftProtobuf
import Testing

/// The signature checks of a drained batch of deliveries, run side by side on the cores.
@Suite("Delivery checks side by side")
struct DeliveryCheckTests {
    static func delivery(_ signed: SignedPublication) -> Deliver {
        var deliver = Deliver()
        deliver.signedEnvelope = signed.signedEnvelope
        deliver.payload = signed.payload
        deliver.proof = signed.proof
        return deliver
    }

    @Test("A batch of deliveries of three roots is checked on the cores and answered in its order: one Ed25519 verification per root, whichever copy comes first; a bent or malformed first copy does not cost the genuine ones their root; an unsigned one is left to the sequential check")
    func sideBySide() throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let cted = try bus.signingKey(of: "cted")
        func batch(_ count: Int) throws -> [SignedPublication] {
            try SignedPublication.signBatch((0..<count).map { _ in
                let message = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential))
                return (message.envelope, message.payload!, nil)
            }, with: cted).map(\.signed)
        }
        // Repeated with fresh checks: the order in which the cores take the work varies.
        for _ in 0..<20 {
            let a = try batch(4), b = try batch(4), c = try batch(3)
            var bent = b[0]
            bent.proof.batch.index = 1
            // A copy of C's whose envelope does not even decode: refused before its root is verified.
            var malformed = c[0]
            malformed.signedEnvelope = Data("not an envelope".utf8)
            let batchOrder = [Self.delivery(bent)] + zip(a, b).flatMap { [Self.delivery($0), Self.delivery($1)] } + [Deliver()]
                + [Self.delivery(malformed), Self.delivery(c[1]), Self.delivery(c[2])]
            let check = DeliveryCheck(registry: bus.registry, registryFile: nil, clearance: .confidential, nodeId: "wg-border",
                                      sealingKey: try bus.messageKeys(of: "wg-border").sealing, logger: Logger(label: "test"))
            let results = check.verifyConcurrently(batchOrder)
            #expect(results.count == 13)
            guard case .failure(let error)? = results[0]?.result else { Issue.record("the bent copy verified"); continue }
            #expect(error.code == .signatureInvalid)
            let ids = results[1..<9].map { result -> String? in
                guard case .success(let verified)? = result?.result else { return nil }
                return verified.envelope.messageID
            }
            let expected = zip(a, b).flatMap { [$0, $1] }.map { try? Envelope(serializedBytes: $0.signedEnvelope).messageID }
            #expect(ids == expected)
            #expect(results[9] == nil)
            guard case .failure(let malformedError)? = results[10]?.result else { Issue.record("the malformed copy passed"); continue }
            #expect(malformedError.code == .malformedFrame)
            #expect(results[11...].allSatisfy { if case .success? = $0?.result { true } else { false } })
            #expect(check.batchRoots.counts == (verified: 3, reused: 7))
        }
    }

    @Test("A key the registry file replaced in the middle of a batch: the delivery signed with the new key makes the node read the file again, and the rest of the batch is checked again with it, so one signed with the removed key is refused, not taken from the checks made before")
    func registryChangedMidBatch() throws {
        let bus = try LocalBus()
        defer { bus.shutdown() }
        let file = bus.folder.appendingPathComponent("node-registry-copy.json")
        try bus.registry.json().write(to: file)
        let check = DeliveryCheck(registry: bus.registry, registryFile: file.path, clearance: .confidential, nodeId: "wg-border",
                                  sealingKey: try bus.messageKeys(of: "wg-border").sealing, logger: Logger(label: "test"))
        // CTED's key K1 is removed (say it was stolen) and K2 listed instead; the node has not read the file yet.
        let removed = try bus.signingKey(of: "cted")
        let replacement = Curve25519.Signing.PrivateKey()
        let entries = bus.registry.entries.map { entry in
            var entry = entry
            if entry.profile.id == "cted" { entry.signingKey = MessageKeys.text(replacement.publicKey.rawRepresentation) }
            return entry
        }
        try NodeRegistry(entries: entries).json().write(to: file)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 10)], ofItemAtPath: file.path)
        func signed(_ text: String, with key: Curve25519.Signing.PrivateKey) throws -> Deliver {
            let message = SampleMessages.recommendation(handling: SampleMessages.handling(.confidential), text: text)
            return Self.delivery(try SignedPublication.sign(message.envelope, payload: message.payload!, with: key))
        }
        let batch = [try signed("signed with the new key", with: replacement), try signed("signed with the removed key", with: removed)]
        let prechecked = check.verifyConcurrently(batch)
        guard case .success? = prechecked[1]?.result else { Issue.record("the copy read at start still lists K1"); return }
        #expect(throws: Never.self) { _ = try check.check(batch[0], prechecked: prechecked[0]) }
        do {
            _ = try check.check(batch[1], prechecked: prechecked[1])
            Issue.record("a delivery signed with the removed key was taken")
        } catch {
            #expect(error.error.code == .unknownSigningKey)
        }
    }
}
