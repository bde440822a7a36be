import CTBusPolicy
import CTBusSchema
import Crypto
import CTBusLocal
import Foundation

extension Benchmark {
    /// The cost of signatures per message, in this process on one core: the
    /// publisher's signing (with and without a partial restriction, whose disclosures add work),
    /// the broker's check of a whole publication and a recipient's check of a redacted copy. The
    /// baseline of each check is what the same side did per message before signatures: decoding
    /// the payload and `MessageValidator`.
    func signatureCosts() throws -> [Result] {
        let key = Curve25519.Signing.PrivateKey()
        let publicKey = key.publicKey
        let plain = driver.message()
        let restricted = SampleMessages.restricted(plain, state: "KEN", fields: ["summary", "findings", "follow_up_actions"],
                                                   allowed: ["oct"])
        let count = options.messages
        var rows: [String: [Double]] = [:]
        /// Microseconds per message of `body`, run `count` times.
        func time(_ name: String, _ body: () throws -> Void) rethrows {
            let start = ContinuousClock.now
            for _ in 0..<count { try body() }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            rows[name, default: []].append(seconds / Double(count) * 1e6)
        }
        let signedPlain = try SignedPublication.sign(plain.envelope, payload: plain.payload!, with: key)
        let signedRestricted = try SignedPublication.sign(restricted.envelope, payload: restricted.payload!, with: key)
        let redactedCopy = signedRestricted.withholding(["summary", "findings", "follow_up_actions"])
        let keys = { (_: String) in publicKey }
        // Sealed to three recipients, as in the sealed fan-out.
        let sealingKeys = (1...3).map { _ in Curve25519.KeyAgreement.PrivateKey() }
        var strict = plain
        strict.envelope.handling = SampleMessages.handling(.strictlyConfidential, releasableTo: ["r-1", "r-2", "r-3"])
        let recipients = SealingRecipients(all: sealingKeys.enumerated().map { ("r-\($0.offset + 1)", $0.element.publicKey) },
                                           whole: sealingKeys.enumerated().map { ("r-\($0.offset + 1)", $0.element.publicKey) })
        let signedSealed = try SignedPublication.sign(strict.envelope, payload: strict.payload!, with: key, sealing: recipients)
        let opening = SealOpening.recipient(nodeId: "r-2", key: sealingKeys[1])
        for round in 1...options.rounds {
            progress("signatures round \(round)/\(options.rounds)")
            try time("sign") { _ = try SignedPublication.sign(plain.envelope, payload: plain.payload!, with: key) }
            try time("sign restricted") { _ = try SignedPublication.sign(restricted.envelope, payload: restricted.payload!, with: key) }
            try time("verify whole") { _ = try signedPlain.verify(signingKey: keys, whole: true) }
            try time("verify redacted") { _ = try redactedCopy.verify(signingKey: keys) }
            try time("seal and sign") { _ = try SignedPublication.sign(strict.envelope, payload: strict.payload!, with: key, sealing: recipients) }
            try time("open and verify") { _ = try signedSealed.verify(signingKey: keys, opening: opening) }
            try time("decode and validate") {
                let payload = try BusMessage.OneOf_Payload.decode(type: plain.envelope.type, bytes: signedPlain.payload)
                try MessageValidator.validate(envelope: plain.envelope, payload: payload)
            }
        }
        let baseline = Self.median(rows["decode and validate"] ?? [])
        func row(_ name: String, _ metric: String, compared: Bool) -> Result {
            let values = rows[name] ?? []
            return Result(scenario: "signatures (\(options.bodyBytes)-byte body)", metric: metric, unit: "µs",
                          median: Self.median(values), baseline: compared ? baseline : nil,
                          ratio: compared ? Self.median(values) / baseline : nil, rounds: values)
        }
        return [
            row("sign", "sign a publication", compared: false),
            row("sign restricted", "sign with 3 restricted fields (disclosures)", compared: false),
            row("verify whole", "broker: check signature (baseline: decode and validate)", compared: true),
            row("verify redacted", "recipient: check a redacted copy (baseline: decode and validate)", compared: true),
            row("seal and sign", "seal to 3 recipients and sign", compared: false),
            row("open and verify", "recipient: open a sealed copy and check it (baseline: decode and validate)", compared: true),
        ]
    }
}

extension Benchmark {
    /// Fan-out to 3 of sealed STRICTLY_CONFIDENTIAL messages (sealed by the publisher to each
    /// recipient, opened by each), against the same fan-out of signed CONFIDENTIAL messages that
    /// are not sealed, alternated round by round on fresh buses.
    func sealedFanOut() throws -> [Result] {
        var rates: [Bool: [Double]] = [:]
        var cpu: [Bool: [Double]] = [:]
        for round in 1...options.rounds {
            progress("sealed fan-out round \(round)/\(options.rounds)")
            for sealed in round % 2 == 1 ? [false, true] : [true, false] {
                let (bus, names) = try driver.makeBus(recipients: 3, clearance: .strictlyConfidential)
                defer { bus.shutdown() }
                try bus.startBroker()
                for name in names { try bus.startNode(name) }
                let handling = SampleMessages.handling(sealed ? .strictlyConfidential : .confidential, releasableTo: names)
                let before = ThreadCPU.seconds(named: "broker")
                let run = try driver.publishAndWait(bus: bus, recipients: names, count: options.messages, handling: handling)
                let after = ThreadCPU.seconds(named: "broker")
                rates[sealed, default: []].append(Double(options.messages) / run.seconds)
                if let before, let after { cpu[sealed, default: []].append((after - before) / Double(options.messages * names.count) * 1e6) }
            }
        }
        func row(_ metric: String, _ unit: String, _ values: [Bool: [Double]]) -> Result {
            let sealed = values[true] ?? [], plain = values[false] ?? []
            return Result(scenario: "fan-out to 3, sealed (baseline: signed, not sealed)", metric: metric, unit: unit,
                          median: Self.median(sealed), baseline: Self.median(plain), ratio: Self.median(sealed) / Self.median(plain),
                          rounds: sealed)
        }
        return [row("messages/s journaled at all recipients", "msg/s", rates), row("broker CPU per delivered message", "µs", cpu)]
    }
}
