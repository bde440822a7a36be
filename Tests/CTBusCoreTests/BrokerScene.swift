@testable import CTBusBroker
@testable import CTBusJournal
import CTBusLocal
import CTBusPolicy
import CTBusSchema
import Crypto
import Foundation
import SwiftProtobuf
import ZeroMQ

/// A broker core with a registry of four nodes, driven the way the shell drives it, with the
/// test in the place of the store: each store operation the core asks for is answered by the
/// test (or, by default, as an empty, healthy store answers it).
struct BrokerScene {
    static let nodes: [NodeProfile] = [
        NodeProfile(id: "oct", role: .oct, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        NodeProfile(id: "cted", role: .cted, clearance: .strictlyConfidential, groups: ["un-secretariat"]),
        NodeProfile(id: "wg-border", role: .workingGroup, clearance: .confidential, groups: ["compact-wg"]),
        NodeProfile(id: "wg-rights", role: .workingGroup, clearance: .unclassified, groups: ["compact-wg"]),
    ]

    /// Fixed signing keys (one byte pattern per node), so rows can be built in static tables.
    static func signingKey(_ node: String) -> Curve25519.Signing.PrivateKey {
        let index = nodes.firstIndex { $0.id == node }!
        return try! Curve25519.Signing.PrivateKey(rawRepresentation: Data(repeating: UInt8(index + 1), count: 32))
    }

    static func sealingKey(_ node: String) -> Curve25519.KeyAgreement.PrivateKey {
        let index = nodes.firstIndex { $0.id == node }!
        return try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Data(repeating: UInt8(index + 101), count: 32))
    }

    /// Each node's CURVE public key (the User-Id the ZAP handler gives its connections).
    let curveKeys: [String: String]
    let registry: NodeRegistry
    var core: BrokerCore
    /// The moment the scene is at; `advance` moves it.
    var now = Moment(instant: .now, date: Date(timeIntervalSince1970: 1_790_000_000))
    /// Every store operation the core asked for, in order.
    var requests: [BrokerCore.Request] = []

    init(deliveryWindow: Int = 4, rejudgeThrough: [String: UInt64] = [:]) throws {
        var keys: [String: String] = [:]
        var entries: [NodeRegistry.Entry] = []
        for node in Self.nodes {
            let pair = try CurveKeyPair.generate()
            keys[node.id] = pair.publicKey
            entries.append(NodeRegistry.Entry(profile: node, publicKey: pair.publicKey,
                                              signingKey: MessageKeys.text(Self.signingKey(node.id).publicKey.rawRepresentation),
                                              sealingKey: MessageKeys.text(Self.sealingKey(node.id).publicKey.rawRepresentation)))
        }
        curveKeys = keys
        registry = try NodeRegistry(entries: entries)
        core = BrokerCore(limits: BrokerCore.Limits(deliveryWindow: deliveryWindow, maxMessageBytes: 1_048_576, sessionTimeout: .seconds(5)),
                          registry: registry, rejudgeThrough: rejudgeThrough)
    }

    mutating func advance(_ duration: Duration) { now.advance(by: duration) }

    // MARK: Driving the core

    /// What the shell sent and the core asked for while handling one input: frames per
    /// connection in order, the metrics and the log lines.
    struct Outcome {
        var sent: [(connection: BrokerCore.Connection, kind: Frame.OneOf_Kind)] = []
        var counts: [BrokerCore.Count] = []
        var logs: [LogLine] = []
        var statuses: [(String, BrokerCore.StatusChange)] = []
        var reload: Result<[RegistryChange], StoreError>?

        func frames(to connection: BrokerCore.Connection) -> [Frame.OneOf_Kind] {
            sent.filter { $0.connection == connection }.map(\.kind)
        }

        func errors(to connection: BrokerCore.Connection) -> [ErrorCode] {
            frames(to: connection).compactMap { if case .error(let report) = $0 { report.code } else { nil } }
        }

        /// The sequences delivered to a connection, in order.
        func delivered(to connection: BrokerCore.Connection) -> [UInt64] {
            frames(to: connection).compactMap { if case .deliver(let deliver) = $0 { deliver.sequence } else { nil } }
        }
    }

    /// How the test answers store operations.
    var store = Store()

    struct Store {
        /// Per node, the queue the store holds (what a read after a sequence returns).
        var queues: [String: [QueuedDelivery]] = [:]
        /// The next sequence per node for publications.
        var nextSequence: [String: UInt64] = [:]
        var failStore = false
        var failDiscard = false
        var backlog = 0
        var revokeOutcome: RevokeOutcome = .revoked(recipients: 1)
        var marks: [String: UInt64] = [:]
    }

    mutating func receive(_ kind: Frame.OneOf_Kind, from node: String, on connection: BrokerCore.Connection) -> Outcome {
        var frame = Frame()
        frame.kind = kind
        return receive(try! frame.serializedBytes(), from: node, on: connection)
    }

    mutating func receive(_ bytes: [UInt8], from node: String?, on connection: BrokerCore.Connection, extraFrames: Int = 0) -> Outcome {
        let frames = [connection, bytes] + Array(repeating: [UInt8](), count: extraFrames)
        return perform(core.received(frames, userId: node.flatMap { curveKeys[$0] } ?? (node == nil ? nil : "unknown"), at: now))
    }

    /// Frames of one read batch, then its end.
    mutating func batch(_ items: [(Frame.OneOf_Kind, String, BrokerCore.Connection)]) -> Outcome {
        var outcome = Outcome()
        for (kind, node, connection) in items { outcome.merge(receive(kind, from: node, on: connection)) }
        outcome.merge(perform(core.drained(at: now)))
        return outcome
    }

    mutating func tick(framesWaiting: Bool = false) -> Outcome { perform(core.tick(at: now, framesWaiting: framesWaiting)) }

    mutating func reload(_ registry: NodeRegistry) -> Outcome { perform(core.reload(registry, source: "test", origin: nil, at: now)) }

    /// Performs a step as the shell does, with the test's store in the place of the store.
    mutating func perform(_ first: BrokerCore.Step, failingSendsTo failing: BrokerCore.Connection? = nil) -> Outcome {
        var outcome = Outcome()
        var step = first
        while true {
            for effect in step.effects {
                switch effect {
                case .send(let bytes, let connection):
                    outcome.sent.append((connection, try! Frame(serializedBytes: bytes).kind!))
                case .deliver(let bytes, let connection, _, _, _):
                    outcome.sent.append((connection, try! Frame(serializedBytes: bytes).kind!))
                case .count(let count): outcome.counts.append(count)
                case .log(let line): outcome.logs.append(line)
                case .status(let node, let change): outcome.statuses.append((node, change))
                case .registryInForce: break
                case .reloadFinished(let result): outcome.reload = result
                }
            }
            guard let request = step.request else { return outcome }
            requests.append(request)
            step = core.completed(answer(request), at: now)
        }
    }

    private mutating func answer(_ request: BrokerCore.Request) -> BrokerCore.Completion {
        switch request {
        case .store(let publications, _):
            if store.failStore { return .stored(.failure(StoreError(.unavailable, "disk full"))) }
            return .stored(.success(publications.map { publication in
                .stored(sequences: publication.recipients.map { recipient in
                    let sequence = store.nextSequence[recipient.nodeId, default: 1]
                    store.nextSequence[recipient.nodeId] = sequence + 1
                    return sequence
                })
            }))
        case .recordAcknowledgements: return .acknowledgementsRecorded(.success(()))
        case .queueBacklog: return .backlogQueued(.success(store.backlog))
        case .readQueue(let node, let after, let limit):
            return .queueRead(.success(Array(store.queues[node, default: []].filter { $0.sequence > after }.prefix(limit))))
        case .discard(let node, let removals):
            return .discarded(removals.map { removal in
                if store.failDiscard { return .failure(StoreError(.unavailable, "disk full")) }
                store.queues[node]?.removeAll { $0.sequence == removal.sequence }
                return .success(())
            })
        case .revoke: return .revoked(.success(store.revokeOutcome))
        case .clearRejudge: return .rejudgeCleared(.success(()))
        case .recordRegistry: return .registryRecorded(.success(()))
        case .readRejudgeMarks: return .rejudgeMarksRead(.success(store.marks))
        }
    }

    // MARK: Frames and queue entries

    static func hello(version: UInt32 = BrokerCore.protocolVersion, backlog: Bool = false) -> Frame.OneOf_Kind {
        var hello = Hello()
        hello.protocolVersion = version
        hello.agent = "core-test"
        hello.requestBacklog = backlog
        return .hello(hello)
    }

    static func ack(_ through: UInt64) -> Frame.OneOf_Kind {
        var ack = DeliveryAck()
        ack.throughSequence = through
        return .deliveryAck(ack)
    }

    /// A signed Publish of `message` by its originator.
    static func publish(_ message: BusMessage, by node: String = "cted") throws -> Frame.OneOf_Kind {
        var message = message
        message.envelope.originator = node
        let signed = try SignedPublication.sign(message.envelope, payload: message.payload!, with: signingKey(node))
        let frame = try Frame(serializedBytes: FrameBytes.publish(signedEnvelope: signed.signedEnvelope, payload: signed.payload,
                                                                  proof: try signed.proof.serializedData()))
        return frame.kind!
    }

    static func revoke(_ messageId: String, by node: String = "cted", signedBy signer: String? = nil) throws -> Frame.OneOf_Kind {
        .revoke(try Revocation.signed(messageId: messageId, reason: "withdrawn by its author", by: node, with: signingKey(signer ?? node)).frame)
    }

    /// A queue entry as the store returns it: a publication of `message` signed by its originator.
    static func queued(_ sequence: UInt64, _ message: BusMessage, expiresAt: Date? = nil, redactedPaths: [String] = []) throws -> QueuedDelivery {
        let signed = try SignedPublication.sign(message.envelope, payload: message.payload!, with: signingKey(message.envelope.originator))
        return QueuedDelivery(sequence: sequence, messageId: message.envelope.messageID, envelope: signed.signedEnvelope,
                              payload: signed.payload, redactedPaths: redactedPaths, revocationReason: nil,
                              originator: message.envelope.originator, expiresAt: expiresAt,
                              proof: try signed.proof.serializedData(), revocation: nil)
    }

    /// Opens a session for `node` on `connection` with an empty queue.
    @discardableResult
    mutating func open(_ node: String, on connection: BrokerCore.Connection, backlog: Bool = false) -> Outcome {
        receive(Self.hello(backlog: backlog), from: node, on: connection)
    }
}

extension BrokerScene.Outcome {
    mutating func merge(_ other: Self) {
        sent += other.sent
        counts += other.counts
        logs += other.logs
        statuses += other.statuses
        reload = other.reload ?? reload
    }
}

extension Frame.OneOf_Kind {
    /// The command's name in PROTOCOL.md 3.1, for row names and expectations.
    var name: String {
        switch self {
        case .hello: "Hello"
        case .welcome: "Welcome"
        case .publish: "Publish"
        case .publishAck: "PublishAck"
        case .deliver: "Deliver"
        case .deliveryAck: "DeliveryAck"
        case .heartbeat: "Heartbeat"
        case .error: "ErrorReport"
        case .revoke: "Revoke"
        case .revokeAck: "RevokeAck"
        }
    }
}
