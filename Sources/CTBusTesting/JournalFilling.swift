import CTBusJournal
import CTBusNode
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf

/// Journals filled directly, for tests of what reads a journal (listing, console, integrity):
/// the entries are signed as a node would have received them, with a key of the test's choosing.
extension NodeJournal {
    /// A key for the messages of tests that fill journals directly (no registry lists it, so
    /// `verify` with a registry says their signatures are from an unknown key).
    public static var testSigningKey: Curve25519.Signing.PrivateKey {
        try! Curve25519.Signing.PrivateKey(rawRepresentation: Data(repeating: 0x5A, count: 32))
    }

    /// Journals `message` as received (signed with `key`, whole), with `redactedPaths` recorded
    /// as withheld. Returns false for a message id already journaled.
    @discardableResult
    public func recordDelivery(_ message: BusMessage, sequence: UInt64, redactedPaths: [String] = [],
                               signedWith key: Curve25519.Signing.PrivateKey = NodeJournal.testSigningKey) throws -> Bool {
        let record = try Self.record(message, signedWith: key)
        return try recordDeliveries([IncomingDelivery(record, sequence: sequence, redactedPaths: redactedPaths)]) == 1
    }

    /// Queues `message` in the outbox as `ctbus publish` would (signed with `key`), without the checks.
    public func enqueue(_ message: BusMessage, signedWith key: Curve25519.Signing.PrivateKey = NodeJournal.testSigningKey) throws {
        try outbox.enqueue([try Self.record(message, signedWith: key)])
    }

    /// A signed record of `message`; a sealed one is sealed to a throwaway key (the record keeps
    /// the content keys, so the journal's checks work as on a real node's).
    static func record(_ message: BusMessage, signedWith key: Curve25519.Signing.PrivateKey) throws -> JournalRecord {
        let recipient = [(nodeId: "test", key: Curve25519.KeyAgreement.PrivateKey().publicKey)]
        return try Publisher.signed(message.envelope, payload: message.payload!, with: key,
                                    sealing: message.envelope.handling.sealed ? SealingRecipients(all: recipient, whole: recipient) : nil)
    }
}
