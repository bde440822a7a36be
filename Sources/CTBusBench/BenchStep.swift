import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import CTBusLocal
import Foundation
import SwiftProtobuf

/// One step of a message's way through the bus, run `count` times in the calling thread with
/// nothing else, for an instruction count under `valgrind --tool=callgrind` (see
/// Tests/perf/callgrind-steps.sh): a count taken twice is the same, where a time on a busy
/// machine of this kind varies two-fold. Every step prepares the same `count` signed messages
/// first (plain, sealed and signed in batches), and `none` does only that, so a step's
/// instructions are its count less `none`'s.
/// CURVE and TCP are left out: they are libzmq's, and the baseline forwarder pays them too.
public enum BenchStep: String, CaseIterable, Sendable {
    /// The preparation alone: what every other step's count includes.
    case none
    /// Envelope and payload decoded from their bytes, as the broker and a node do.
    case decode
    /// `MessageValidator` on a decoded message.
    case validate
    /// The confidentiality decision for each of 4 nodes (the originator and 3 recipients).
    case policy
    /// A publication signed (Ed25519 over the domain-separated digests).
    case sign
    /// A signed publication checked whole, as the broker checks it.
    case verify
    /// Publications signed in batches of 100: one signature per batch, the tree, a path each.
    case signBatch = "sign-batch"
    /// A batch-signed publication's leaf and path hashed up to its root (no signature checked).
    case hashPath = "hash-path"
    /// Batch-signed publications checked whole as the broker checks them, keeping the roots:
    /// one Ed25519 verification per 100.
    case verifyBatch = "verify-batch"
    /// A publication sealed to 3 recipients (HPKE) and signed.
    case seal
    /// A sealed publication checked and opened by one of its recipients.
    case open
    /// One publication with 3 recipients stored by the broker (its own transaction).
    case store
    /// One delivery journaled by a node (its own transaction).
    case journal
    /// Publications stored 100 to a transaction, as the broker stores what arrives together.
    case storeBatch = "store-batch"
    /// Deliveries journaled 100 to a transaction, as a node journals a drained batch.
    case journalBatch = "journal-batch"

    /// Runs the step `count` times on messages with `bodyBytes` of text, in `folder` (the store
    /// and journal files).
    public static func run(_ step: BenchStep, count: Int, bodyBytes: Int, folder: URL) throws {
        let batchLeaves = 100
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: Data(repeating: 0x42, count: 32))
        let messages = (0..<count).map { _ in SampleMessages.missionReport(summaryBytes: bodyBytes) }
        let signed = try messages.map { try SignedPublication.sign($0.envelope, payload: $0.payload!, with: key) }
        let toSign = messages.map { (envelope: $0.envelope, payload: $0.payload!, sealing: SealingRecipients?.none) }
        /// `items` in runs of `batchLeaves`, as a publisher queues them, the broker stores them and a node journals them.
        func batches<T>(_ items: [T]) -> [[T]] {
            stride(from: 0, to: items.count, by: batchLeaves).map { Array(items[$0..<min(items.count, $0 + batchLeaves)]) }
        }
        let signInBatches = { try batches(toSign).map { try SignedPublication.signBatch($0, with: key, maxLeaves: batchLeaves) } }
        let batchSigned = try signInBatches().flatMap { $0.map(\.signed) }
        let recipientKeys = try (1...3).map { try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Data(repeating: UInt8($0), count: 32)) }
        let sealing = SealingRecipients(all: recipientKeys.enumerated().map { ("r-\($0.offset + 1)", $0.element.publicKey) },
                                        whole: recipientKeys.enumerated().map { ("r-\($0.offset + 1)", $0.element.publicKey) })
        let sealedMessages = messages.map { message in
            var message = message
            message.envelope.handling.sealed = true
            return message
        }
        let sealed = try sealedMessages.map { try SignedPublication.sign($0.envelope, payload: $0.payload!, with: key, sealing: sealing) }
        let encoded = try messages.map { (envelope: try $0.envelope.serializedData(), payload: try $0.payload!.serialized()) }
        let nodes = [NodeProfile(id: "cted", role: .cted, clearance: .strictlyConfidential)]
            + (1...3).map { NodeProfile(id: "r-\($0)", role: .workingGroup, clearance: .confidential) }
        let publicKey = key.publicKey
        switch step {
        case .none:
            break
        case .decode:
            for (message, bytes) in zip(messages, encoded) {
                _ = try Envelope(serializedBytes: bytes.envelope)
                _ = try BusMessage.OneOf_Payload.decode(type: message.envelope.type, bytes: bytes.payload)
            }
        case .validate:
            for message in messages { try MessageValidator.validate(envelope: message.envelope, payload: message.payload!) }
        case .policy:
            for message in messages { _ = ConfidentialityPolicy.decide(message.envelope, originator: "cted", among: nodes) }
        case .sign:
            for message in messages { _ = try SignedPublication.sign(message.envelope, payload: message.payload!, with: key) }
        case .verify:
            for publication in signed { _ = try publication.verify(signingKey: { _ in publicKey }, whole: true) }
        case .signBatch:
            _ = try signInBatches()
        case .hashPath:
            for publication in batchSigned {
                let content = PublicationSignature.content(envelope: publication.signedEnvelope, payload: publication.payload,
                                                           digests: publication.proof.digests)
                _ = try BatchTree.root(of: publication.proof.batch, content: content)
            }
        case .verifyBatch:
            let roots = BatchRoots()
            for publication in batchSigned { _ = try publication.verify(signingKey: { _ in publicKey }, whole: true, roots: roots) }
        case .seal:
            for message in sealedMessages { _ = try SignedPublication.sign(message.envelope, payload: message.payload!, with: key, sealing: sealing) }
        case .open:
            for publication in sealed {
                _ = try publication.verify(signingKey: { _ in publicKey }, opening: .recipient(nodeId: "r-1", key: recipientKeys[0]))
            }
        case .store:
            let store = try BrokerStore(path: folder.appendingPathComponent("steps.store.sqlite").path)
            let recipients = (1...3).map { Publication.Recipient(nodeId: "r-\($0)") }
            for (message, publication) in zip(messages, signed) {
                _ = try store.store([Publication(envelope: message.envelope, signedEnvelope: publication.signedEnvelope,
                                                 payload: publication.payload, proof: try publication.proof.serializedData(),
                                                 recipients: recipients)])
            }
        case .journal:
            let journal = try NodeJournal(path: folder.appendingPathComponent("steps.journal.sqlite").path)
            for (index, (message, publication)) in zip(messages, signed).enumerated() {
                let record = JournalRecord(envelope: message.envelope, envelopeBytes: publication.signedEnvelope, payload: publication.payload,
                                           signedPayload: nil, proof: try publication.proof.serializedData())
                _ = try journal.recordDeliveries([IncomingDelivery(record, sequence: UInt64(index + 1))])
            }
        case .storeBatch:
            let store = try BrokerStore(path: folder.appendingPathComponent("steps.store.sqlite").path)
            let recipients = (1...3).map { Publication.Recipient(nodeId: "r-\($0)") }
            let publications = try zip(messages, batchSigned).map { message, publication in
                Publication(envelope: message.envelope, signedEnvelope: publication.signedEnvelope, payload: publication.payload,
                            proof: try publication.proof.serializedData(), recipients: recipients)
            }
            for batch in batches(publications) { _ = try store.store(batch) }
        case .journalBatch:
            let journal = try NodeJournal(path: folder.appendingPathComponent("steps.journal.sqlite").path)
            let deliveries = try zip(messages, batchSigned).enumerated().map { index, pair in
                IncomingDelivery(JournalRecord(envelope: pair.0.envelope, envelopeBytes: pair.1.signedEnvelope, payload: pair.1.payload,
                                               signedPayload: nil, proof: try pair.1.proof.serializedData()), sequence: UInt64(index + 1))
            }
            for batch in batches(deliveries) { _ = try journal.recordDeliveries(batch) }
        }
    }
}
