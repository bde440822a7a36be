import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation

extension Benchmark {
    /// The cost of signatures per message, in this process on one core (issue 13, item 6): the
    /// publisher's signing (with and without a partial restriction, whose disclosures add work),
    /// the broker's check of a whole publication and a recipient's check of a redacted copy. The
    /// baseline of each check is what the same side did per message before signatures: decoding
    /// the payload and `MessageValidator`.
    func signatureCosts() throws -> [Result] {
        let key = Curve25519.Signing.PrivateKey()
        let publicKey = key.publicKey
        let plain = message()
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
        for round in 1...options.rounds {
            progress("signatures round \(round)/\(options.rounds)")
            try time("sign") { _ = try SignedPublication.sign(plain.envelope, payload: plain.payload!, with: key) }
            try time("sign restricted") { _ = try SignedPublication.sign(restricted.envelope, payload: restricted.payload!, with: key) }
            try time("verify whole") { _ = try signedPlain.verify(signingKey: keys, whole: true) }
            try time("verify redacted") { _ = try redactedCopy.verify(signingKey: keys) }
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
        ]
    }
}
