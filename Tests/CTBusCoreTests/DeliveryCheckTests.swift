import CTBusLocal
@testable import CTBusNode
import CTBusPolicy
import CTBusSchema
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

    @Test("A batch of deliveries of two roots is checked on the cores and answered in its order: one Ed25519 verification per root, whichever copy comes first; a bent first copy does not cost the genuine ones their root; an unsigned one is left to the sequential check")
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
            let a = try batch(4), b = try batch(4)
            var bent = b[0]
            bent.proof.batch.index = 1
            let batchOrder = [Self.delivery(bent)] + zip(a, b).flatMap { [Self.delivery($0), Self.delivery($1)] } + [Deliver()]
            let check = DeliveryCheck(registry: bus.registry, registryFile: nil, clearance: .confidential, nodeId: "wg-border",
                                      sealingKey: try bus.messageKeys(of: "wg-border").sealing, logger: Logger(label: "test"))
            let results = check.verifyConcurrently(batchOrder)
            #expect(results.count == 10)
            guard case .failure(let error)? = results[0] else { Issue.record("the bent copy verified"); continue }
            #expect(error.code == .signatureInvalid)
            let ids = results[1..<9].map { result -> String? in
                guard case .success(let verified)? = result else { return nil }
                return verified.envelope.messageID
            }
            let expected = zip(a, b).flatMap { [$0, $1] }.map { try? Envelope(serializedBytes: $0.signedEnvelope).messageID }
            #expect(ids == expected)
            #expect(results[9] == nil)
            #expect(check.batchRoots.counts == (verified: 2, reused: 6))
        }
    }
}
