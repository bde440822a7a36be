import CTBusJournal
import CTBusNode
import CTBusSchema
import Crypto
import Foundation

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
        let record = try Publisher.signed(message.envelope, payload: message.payload!, with: key)
        return try recordDeliveries([IncomingDelivery(record, sequence: sequence, redactedPaths: redactedPaths)]) == 1
    }

    /// Queues `message` in the outbox as `ctbus publish` would (signed with `key`), without the checks.
    public func enqueue(_ message: BusMessage, signedWith key: Curve25519.Signing.PrivateKey = NodeJournal.testSigningKey) throws {
        try enqueue([try Publisher.signed(message.envelope, payload: message.payload!, with: key)])
    }
}
