import CTBusJournal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import Logging
import SwiftProtobuf

/// What the core returns and what comes back to it.
extension BrokerCore {
    struct Step {
        var effects: [Effect] = []
        /// At most one store operation, performed after the effects.
        var request: Request?

        mutating func send(_ kind: Frame.OneOf_Kind, to connection: Connection) {
            var frame = Frame()
            frame.kind = kind
            // Encoding a Frame built here cannot fail: every field is set from valid values.
            effects.append(.send((try? frame.serializedBytes()) ?? [], to: connection))
        }

        mutating func send(error: BusError, to connection: Connection) { send(.error(error.report), to: connection) }
        mutating func count(_ count: Count) { effects.append(.count(count)) }

        mutating func log(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata = [:], throttle key: String? = nil) {
            effects.append(.log(LogLine(level: level, message: message, metadata: metadata, throttleKey: key)))
        }
    }

    enum Effect {
        case send([UInt8], to: Connection)
        /// A Deliver frame, counted against the node's credit; a send that fails is reported
        /// back with `sendFailed`, and nothing more goes to that connection in this step.
        case deliver([UInt8], to: Connection, node: String, sequence: UInt64, inFlight: Int)
        case count(Count)
        case log(LogLine)
        case status(node: String, StatusChange)
        /// A reload put this registry in force (the ZAP handler and the metrics follow it).
        case registryInForce(NodeRegistry)
        /// The answer to the reload in hand.
        case reloadFinished(Result<[RegistryChange], StoreError>)
    }

    enum Count: Equatable {
        case accepted
        case refused(ErrorCode)
        case policyRefusal(node: String, rule: PolicyRule)
        case inFlight(node: String, Int)
        case session(BrokerMetrics.SessionChange, node: String, connected: Int)
        case reload(String)
        /// Batch roots verified with Ed25519, and claims taken from roots verified before.
        case batchRoots(verified: Int, reused: Int)
    }


    enum StatusChange: Equatable {
        /// A session opened or ended; nothing is in flight either way.
        case session(connected: Bool, since: Date)
        case inFlight(Int, acknowledgedAt: Date?)
    }

    /// A store operation; its result comes back as the `Completion` of the same name.
    enum Request {
        case store([Publication], acknowledging: [String: UInt64])
        case recordAcknowledgements([String: UInt64])
        case queueBacklog(NodeProfile, at: Date)
        case readQueue(node: String, after: UInt64, limit: Int)
        /// Deliveries that leave a queue unsent (expired, or withdrawn after a registry change), each
        /// with its audit line; the shell tries each and reports each.
        case discard(node: String, [Removal])
        case revoke(messageId: String, by: String, reason: String, statement: Data)
        case clearRejudge(node: String, through: UInt64)
        case recordRegistry(RegistryRecord)
        case readRejudgeMarks
    }

    enum Completion {
        case stored(Result<[StoreOutcome], StoreError>)
        case acknowledgementsRecorded(Result<Void, StoreError>)
        case backlogQueued(Result<Int, StoreError>)
        case queueRead(Result<[QueuedDelivery], StoreError>)
        case discarded([Result<Void, StoreError>])
        case revoked(Result<RevokeOutcome, StoreError>)
        case rejudgeCleared(Result<Void, StoreError>)
        case registryRecorded(Result<Void, StoreError>)
        case rejudgeMarksRead(Result<[String: UInt64], StoreError>)
    }

    struct Removal: Equatable {
        enum Why: Equatable { case expired, withdrawn(PolicyRule) }
        let sequence: UInt64
        let messageId: String
        let why: Why
        let audit: AuditEntry
    }

    struct RegistryRecord {
        let source: String
        let outcome: RegistryAuditEntry.Outcome
        let detail: String
        let registry: Data?
        let changes: [(nodeId: String, outcome: RegistryAuditEntry.Outcome, detail: String)]
        let rejudge: [String]
        let at: Date
    }

    struct PendingPublish {
        let connection: Connection
        let nodeId: String
        let publish: Publish
        /// The frame's bytes: their SHA-256 names a refused publication whose id cannot be read.
        let frame: [UInt8]
    }

    struct PendingRevoke {
        let connection: Connection
        let nodeId: String
        let revoke: Revoke
    }

    enum Work {
        case recordAcknowledgements
        case welcome(node: String, connection: Connection, backlog: Bool)
        case pump(String)
        case revoke(PendingRevoke)
        case clearRejudge(node: String, through: UInt64)
    }

    enum Awaiting {
        case store([(PendingPublish, Publication)], acknowledging: [String: UInt64])
        case acknowledgements([String: UInt64])
        case backlog(node: String, connection: Connection)
        case queue(node: String, after: UInt64)
        case discard(node: String, [Removal])
        case revoke(PendingRevoke)
        case clearRejudge(node: String, through: UInt64)
        case registry(RegistryReload)
        case rejudgeMarks([RegistryChange])
    }

    struct RegistryReload {
        let registry: NodeRegistry
        let source: String
        let changes: [RegistryChange]
    }

}
